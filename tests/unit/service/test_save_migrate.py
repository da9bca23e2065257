"""The save's migration loop against the fake QMP server: completion with progress, a cancel,
and a migration blocker; the guest's end of the pipe is always released."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import OperationFailedError
from pyvirt.progress import CancelledError, CancelToken
from pyvirt.service.domain import save
from tests.fakeqmp import FakeQmp, QmpError


@pytest.fixture
def image(tmp_path: Path) -> Iterator[int]:
    fd = os.open(tmp_path / "img", os.O_RDWR | os.O_CREAT, 0o600)
    yield fd
    os.close(fd)


def statuses(*replies: dict[str, Any]) -> Any:
    it = iter(replies)
    last: list[dict[str, Any]] = [{}]

    def next_status(_args: dict[str, Any]) -> dict[str, Any]:
        last[0] = next(it, last[0])
        return last[0]

    return next_status


def ram(status: str, done: int) -> dict[str, Any]:
    return {"status": status, "ram": {"total": 100, "remaining": 100 - done, "transferred": done}}


def prepare(fake_qmp: FakeQmp) -> None:
    for cmd in ("migrate-set-parameters", "getfd", "migrate", "migrate_cancel", "closefd"):
        fake_qmp.on(cmd, {})


def test_completes_with_progress(fake_qmp: FakeQmp, image: int) -> None:
    prepare(fake_qmp)
    fake_qmp.on_call("query-migrate", statuses(ram("active", 40), ram("completed", 100)))
    seen: list[tuple[int, int]] = []
    with Monitor(fake_qmp.path, timeout=5) as mon:
        save._migrate(mon, "d", image, lambda d, t: seen.append((d, t)), None)
    assert seen == [(40, 100), (100, 100)]
    assert fake_qmp.calls("migrate-set-parameters") == [
        {"max-bandwidth": save.UNLIMITED_BANDWIDTH, "downtime-limit": save.MAX_DOWNTIME_MS}
    ]
    assert fake_qmp.calls("getfd") == [{"fdname": "pyvirt-save"}]
    assert fake_qmp.calls("migrate") == [{"uri": "fd:pyvirt-save"}]


def test_cancel_cancels_the_migration(fake_qmp: FakeQmp, image: int) -> None:
    prepare(fake_qmp)
    fake_qmp.on_call(
        "query-migrate", statuses(ram("active", 10), ram("active", 20), ram("cancelled", 20))
    )
    token = CancelToken()
    with (
        Monitor(fake_qmp.path, timeout=5) as mon,
        pytest.raises(CancelledError, match="saving domain 'd' cancelled; it runs on"),
    ):
        save._migrate(mon, "d", image, lambda d, t: token.cancel(), token)
    assert "migrate_cancel" in fake_qmp.names()


def test_failed_migration(fake_qmp: FakeQmp, image: int) -> None:
    prepare(fake_qmp)
    fake_qmp.on_call("query-migrate", statuses({"status": "failed", "error-desc": "boom"}))
    with (
        Monitor(fake_qmp.path, timeout=5) as mon,
        pytest.raises(OperationFailedError, match="saving domain 'd' failed: boom"),
    ):
        save._migrate(mon, "d", image, None, None)


def test_migration_blocker_releases_the_pipe(fake_qmp: FakeQmp, image: int) -> None:
    prepare(fake_qmp)

    def blocked(_args: dict[str, Any]) -> None:
        raise QmpError("GenericError", "State blocked by non-migratable device 'x'")

    fake_qmp.on_call("migrate", blocked)
    with (
        Monitor(fake_qmp.path, timeout=5) as mon,
        pytest.raises(
            OperationFailedError, match="failed: State blocked by non-migratable device 'x'"
        ),
    ):
        save._migrate(mon, "d", image, None, None)
    assert fake_qmp.calls("closefd") == [{"fdname": "pyvirt-save"}]
