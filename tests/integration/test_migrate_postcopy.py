"""Post-copy recovery: a guest dirtying its memory migrates with post-copy (its background
transfer slowed down so it lasts); ``domjobabort --postcopy`` pauses it (both QEMUs wait in
``postcopy-paused``: neither side may be stopped, each holds part of the guest), ``migrate
--postcopy-resume`` goes on with it, and the guest runs on the destination, counting on."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.errors import OperationFailedError, UnsupportedError
from tests.conftest import Pyvirt
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import (
    MARKER,
    console_log,
    define,
    state,
    wait_for,
)
from tests.integration.test_migrate_live import (
    _migrating,
    _ticking,
    _uri,
    other,  # noqa: F401  (fixture)
)
from tests.integration.test_migrate_nfs import _last_tick

pytestmark = pytest.mark.qemu

UFFD = Path("/proc/sys/vm/unprivileged_userfaultfd")


@pytest.fixture
def userfaultfd() -> Iterator[None]:
    """Post-copy's destination QEMU (running as the QEMU user, without capabilities) may
    use userfaultfd while the test runs; the setting is put back afterwards."""
    try:
        before = UFFD.read_text().strip()
    except OSError:
        pytest.skip("no vm.unprivileged_userfaultfd here")
    if before != "1":
        try:
            UFFD.write_text("1")
        except OSError as err:
            pytest.skip(f"cannot allow userfaultfd: {err}")
    try:
        yield
    finally:
        if before != "1":
            UFFD.write_text(before)


def test_postcopy_refused_without_userfaultfd(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
) -> None:
    if not UFFD.exists() or UFFD.read_text().strip() != "0":
        pytest.skip("userfaultfd is allowed to every user here")
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    policy = pyvirt_api.MigrationPolicy(postcopy=True)
    with pytest.raises(UnsupportedError) as err:
        src.migrate(pyvirt_api.open(_uri(other)), policy=policy)
    assert "vm.unprivileged_userfaultfd" in (err.value.hint or "")
    assert state(pyvirt, "t1") == "running (booted)"
    assert not (other.root / "run" / "qemu" / "t1").exists()


DIRTY = "(while :; do dd if=/dev/urandom of=/dev/null bs=4M count=8 2>/dev/null; done) & echo ok"


def _into_postcopy(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
    *,
    dirty: bool = False,
) -> tuple[Any, threading.Thread, list[Any]]:
    """Boot the ticking guest (*dirty*: dirtying its memory too), migrate it to *other*
    (pre-copy at 1 MiB/s, then post-copy's background transfer at 4 MiB/s, so that it
    lasts) and switch to post-copy once the transfer began; the source domain, the
    migration's thread and its result list."""
    _ticking(pyvirt, tiny_image)
    if dirty:
        guest(pyvirt, "t1", DIRTY)
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    policy = pyvirt_api.MigrationPolicy(
        bandwidth=1 << 20, postcopy=True, postcopy_bandwidth=4 << 20
    )
    thread, out = _migrating(src, pyvirt_api.open(_uri(other)), policy=policy,
                             persistent=True, undefine_source=True)  # fmt: skip
    try:
        wait_for(lambda: src.migration_status().transferred > 0 or bool(out), 30, "the start")
        assert not out, out
        pyvirt("migrate-postcopy", "t1")
    except BaseException:
        thread.join(60)
        raise
    return src, thread, out


def test_postcopy_paused_then_resumed(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
    userfaultfd: None,
) -> None:
    src, thread, out = _into_postcopy(pyvirt, other, tiny_image, dirty=True)
    try:
        wait_for(lambda: src.migration_status().status == "postcopy-active" or bool(out), 30,
                 "post-copy")  # fmt: skip
        assert not out, out
        t0 = time.monotonic()
        pyvirt("domjobabort", "--postcopy", "t1")
        print(f"paused {time.monotonic() - t0:.2f} s after post-copy began")
    finally:
        thread.join(60)
    err = out[0]
    assert isinstance(err, OperationFailedError), out
    assert err.message == "migration of domain 't1' is paused in post-copy"
    assert "--postcopy-resume" in (err.hint or "")
    # both halves wait: nothing was stopped or cancelled
    assert src.migration_status().status == "postcopy-paused"
    assert (other.root / "run" / "qemu" / "t1").is_dir()
    res = pyvirt("domjobabort", "t1", check=False)  # a plain abort cannot cancel it
    assert res.rc == 1 and "post-copy" in res.err, res.err
    res = pyvirt("domjobabort", "--postcopy", "t1", check=False)  # paused already
    assert res.rc == 1 and "not in post-copy" in res.err, res.err
    last_src = _last_tick(console_log(pyvirt, "t1"))
    assert last_src > 0

    pyvirt("migrate", "--postcopy-resume", "--persistent", "--undefinesource", "t1",
           _uri(other))  # fmt: skip
    assert state(other, "t1") == "running (migrated)"
    assert pyvirt("list", "--all", "--name").out.strip() == ""
    wait_for(lambda: _last_tick(console_log(other, "t1")) > last_src + 20, 20, "ticks on B")
    assert MARKER not in console_log(other, "t1").read_text(errors="replace")
    # (the background ticker's lines may come between: look for the answer among them)
    assert "still-42" in guest(other, "t1", "echo still-$((6*7))").split()
    # nothing to resume any more
    res = other("migrate", "--postcopy-resume", "t1", _uri(pyvirt), check=False)
    assert res.rc == 1 and "no post-copy migration of domain 't1' is paused" in res.err, res.err


def test_postcopy_runs_the_guest_on_the_destination(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
    userfaultfd: None,
) -> None:
    """The point of post-copy: from the switch on the destination runs the guest (its
    ticker counts on there) while the rest of its memory still comes from the source."""
    src, thread, out = _into_postcopy(pyvirt, other, tiny_image)
    try:
        wait_for(lambda: _domstate(other) == "running (post-copy)" or bool(out), 30,
                 "the guest running on B")  # fmt: skip
        assert not out, out
        assert _domstate(pyvirt) == "paused (post-copy)"
        t0 = time.monotonic()
        # B's ticks go on while the source still sends the rest (the guest's first steps
        # there fetch each page they touch)
        last_a = _last_tick(console_log(pyvirt, "t1"))
        while _last_tick(console_log(other, "t1")) <= last_a + 20:
            assert src.migration_status().status == "postcopy-active", "it completed first"
            assert time.monotonic() - t0 < 60, "no ticks on B"
            time.sleep(0.1)
        print(f"20 ticks on B {time.monotonic() - t0:.1f} s after it ran there")
        assert src.migration_status().status == "postcopy-active"
        assert _domstate(pyvirt) == "paused (post-copy)"
        assert not out, out
    finally:
        thread.join(120)
    assert not isinstance(out[0], BaseException), out
    assert out[0].postcopy
    assert state(other, "t1") == "running (migrated)"
    assert pyvirt("list", "--all", "--name").out.strip() == ""
    assert MARKER not in console_log(other, "t1").read_text(errors="replace")


def _domstate(pv: Pyvirt) -> str:
    """``domstate --reason`` of t1, empty while it is not there."""
    return pv("domstate", "t1", "--reason", check=False).out.strip()
