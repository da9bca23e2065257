"""The monitor's lock file (one session at a time, across processes), its waiting and its
errors; the migration monitor's live figures and tunable parameters; against the fake QMP
server."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor.migration import MigrationStatus
from pyvirt.drivers.qemu.qmp import Monitor, MonitorBusyError, QmpCommandError
from pyvirt.drivers.qemu.qmp_sync import SyncMonitor
from tests.fakeqmp import FakeQmp


def _locked_by(fake_qmp: FakeQmp, text: bytes) -> int:
    """Hold the lock file as another process would (an fd of our own), *text* inside."""
    fd = os.open(f"{fake_qmp.path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.ftruncate(fd, 0)
    os.write(fd, text)
    return fd


def test_a_session_holds_the_lock_and_names_itself(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-status", {"status": "running", "running": True})
    with Monitor(fake_qmp.path, name="d1", purpose="migration") as mon:
        mon.query_status()
        lock = fake_qmp.path.with_name(fake_qmp.path.name + ".lock")
        assert lock.read_text() == f"{os.getpid()} migration\n"
        with pytest.raises(MonitorBusyError) as err:
            Monitor(fake_qmp.path, name="d1", wait=False).connect()
        assert err.value.message == (
            f"the monitor of domain 'd1' is busy: a migration session (pid {os.getpid()}) holds it"
        )
        assert err.value.hint == "try again when it is done"
    # released on close: the next one gets it at once
    with Monitor(fake_qmp.path, wait=False) as mon:
        assert mon.query_status() == ("running", True)


def test_a_held_lock_delays_then_times_out(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-status", {"status": "running", "running": True})
    fd = _locked_by(fake_qmp, b"4242 statistics\n")
    try:
        t0 = time.monotonic()
        with pytest.raises(MonitorBusyError) as err:
            Monitor(fake_qmp.path, 0.2, name="d1").connect()
        assert time.monotonic() - t0 >= 0.15
        assert err.value.message == (
            "the monitor of domain 'd1' is busy: a statistics session (pid 4242) held it for 0.2 s"
        )
        assert err.value.holder == "4242 statistics"
        threading.Timer(0.3, os.close, (fd,)).start()
        t0 = time.monotonic()
        with Monitor(fake_qmp.path, 5.0) as mon:
            assert mon.query_status() == ("running", True)
        assert time.monotonic() - t0 >= 0.25
    finally:
        with pytest.raises(OSError):
            os.close(fd)  # closed by the timer


def test_no_lock_where_the_directory_is_read_only(fake_qmp: FakeQmp, monkeypatch: Any) -> None:
    fake_qmp.on("query-status", {"status": "running", "running": True})
    real_open = os.open

    def refuse(path: Any, flags: int, *a: Any) -> int:
        if str(path).endswith(".lock"):
            raise PermissionError(13, "denied")
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", refuse)
    with Monitor(fake_qmp.path) as mon:
        assert mon.query_status() == ("running", True)


def test_live_figures_and_parameters(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-migrate", {
        "status": "active", "total-time": 1500, "expected-downtime": 120,
        "ram": {"transferred": 10, "total": 100, "remaining": 90, "dirty-pages-rate": 50,
                "page-size": 4096, "mbps": 80.0, "dirty-sync-count": 2},
    })  # fmt: skip
    fake_qmp.on(
        "query-migrate-parameters",
        {"max-bandwidth": 1 << 20, "downtime-limit": 300, "xbzrle-cache-size": 1 << 26},
    )
    fake_qmp.on("migrate-set-parameters", {})
    with Monitor(fake_qmp.path) as mon:
        st = mon.query_migrate()
        p = mon.query_migration_parameters()
        mon.set_migration_parameters(downtime_limit_ms=500, xbzrle_cache_size=1 << 25)
    assert st == MigrationStatus("active", transferred=10, total=100, remaining=90)
    assert (st.dirty_rate, st.page_size, st.expected_downtime_ms, st.mbps, st.passes) == (
        50, 4096, 120, 80.0, 2)  # fmt: skip
    assert (p.max_bandwidth, p.downtime_limit_ms, p.xbzrle_cache_size) == (1 << 20, 300, 1 << 26)
    assert fake_qmp.calls("migrate-set-parameters") == [
        {"downtime-limit": 500, "xbzrle-cache-size": 1 << 25}
    ]


@pytest.mark.parametrize("cls", [Monitor, SyncMonitor], ids=["qemu.qmp", "sync"])
def test_wait_event_returns_the_named_event(fake_qmp: FakeQmp, cls: type[Monitor]) -> None:
    def status() -> dict[str, Any]:
        fake_qmp.event("MIGRATION_PASS", {"pass": 2})
        fake_qmp.event("MIGRATION", {"status": "completed"})
        return {"status": "running", "running": True}

    fake_qmp.on_call("query-status", lambda _args: status())
    with cls(fake_qmp.path) as mon:
        mon.query_status()
        ev = mon.wait_event(("MIGRATION",), 2.0)
        assert ev is not None and ev["data"] == {"status": "completed"}
        assert mon.wait_event(("MIGRATION",), 0.05) is None


def test_a_pipelined_block_goes_out_with_the_connection(fake_qmp: FakeQmp) -> None:
    """The block's commands are queued until it ends (the connection too), then sent with
    ``qmp_capabilities`` and run in order; a refused one raises once every reply is in (the
    ones after it ran)."""
    fake_qmp.on("migrate-set-capabilities", {})
    fake_qmp.on("migrate-incoming", {})
    fake_qmp.on("query-status", {"status": "inmigrate", "running": False})
    mon = SyncMonitor(fake_qmp.path, name="d1")
    try:
        with mon.pipelined():
            assert mon.execute("migrate-set-capabilities", capabilities=[]) is None
            mon.migrate_incoming("unix:/x.sock")
            assert fake_qmp.names() == []  # nothing sent yet, not even the connection
        assert fake_qmp.names() == ["migrate-set-capabilities", "migrate-incoming"]
        assert mon.query_status() == ("inmigrate", False)  # the session goes on as usual
        fake_qmp.on("migrate-set-parameters", error=("GenericError", "no such parameter"))
        with pytest.raises(QmpCommandError, match="no such parameter") as err, mon.pipelined():
            mon.set_migration_parameters(downtime_limit_ms=10)
            mon.migrate_incoming("unix:/y.sock")
        assert err.value.command == "migrate-set-parameters"
        assert fake_qmp.calls("migrate-incoming")[-1] == {"uri": "unix:/y.sock"}
    finally:
        mon.close()
