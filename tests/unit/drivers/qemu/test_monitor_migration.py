"""The typed migration commands against the fake QMP server (save and restore use them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor.migration import MigrationStatus
from pyvirt.drivers.qemu.qmp import Monitor
from tests.fakeqmp import FakeQmp

ACTIVE = {"status": "active", "ram": {"transferred": 1000, "total": 4096, "remaining": 3096,
                                      "duplicate": 7}, "total-time": 12}  # fmt: skip

CASES = [
    ("params", lambda m: m.set_migration_parameters(max_bandwidth=1 << 50, downtime_limit_ms=9),
     "migrate-set-parameters", {"max-bandwidth": 1 << 50, "downtime-limit": 9}, {}, None),
    ("params-one", lambda m: m.set_migration_parameters(max_bandwidth=5),
     "migrate-set-parameters", {"max-bandwidth": 5}, {}, None),
    ("migrate", lambda m: m.migrate("fd:pyvirt-save"), "migrate", {"uri": "fd:pyvirt-save"},
     {}, None),
    ("incoming", lambda m: m.migrate_incoming("fd:x"), "migrate-incoming", {"uri": "fd:x"},
     {}, None),
    ("cancel", lambda m: m.migrate_cancel(), "migrate_cancel", {}, {}, None),
    ("closefd", lambda m: m.closefd("x"), "closefd", {"fdname": "x"}, {}, None),
    ("query-active", lambda m: m.query_migrate(), "query-migrate", {}, ACTIVE,
     MigrationStatus("active", 1000, 4096, 3096)),
    ("query-none", lambda m: m.query_migrate(), "query-migrate", {}, {},
     MigrationStatus("none")),
    ("query-failed", lambda m: m.query_migrate(), "query-migrate", {},
     {"status": "failed", "error-desc": "Unable to write to file: Broken pipe"},
     MigrationStatus("failed", error="Unable to write to file: Broken pipe")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("call", "command", "args", "reply", "result"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_wire_format(
    fake_qmp: FakeQmp,
    call: Callable[[Monitor], Any],
    command: str,
    args: dict[str, Any],
    reply: Any,
    result: Any,
) -> None:
    fake_qmp.on(command, reply)
    with Monitor(fake_qmp.path, timeout=5) as mon:
        assert call(mon) == result
    assert fake_qmp.calls(command) == [args]


def test_finished_states() -> None:
    done = {s for s in ("none", "setup", "active", "device", "completed", "failed", "cancelling",
                        "cancelled") if MigrationStatus(s).finished}  # fmt: skip
    assert done == {"completed", "failed", "cancelled"}
