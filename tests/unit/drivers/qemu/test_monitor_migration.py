"""The typed migration commands against the fake QMP server (save and restore use them)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor.migration import MigrationParameters, MigrationStatus
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
    ("resume", lambda m: m.migrate("unix:/r.sock", resume=True), "migrate",
     {"uri": "unix:/r.sock", "resume": True}, {}, None),
    ("pause", lambda m: m.migrate_pause(), "migrate-pause", {}, {}, None),
    ("recover", lambda m: m.migrate_recover("tcp:h:0"), "migrate-recover", {"uri": "tcp:h:0"},
     {}, None),
    ("postcopy-bw", lambda m: m.set_migration_parameters(max_postcopy_bandwidth=7),
     "migrate-set-parameters", {"max-postcopy-bandwidth": 7}, {}, None),
    ("caps-changed-only", lambda m: m.set_migration_capabilities(
        late_block_activate=True, current={"events": True, "xbzrle": True}),
     "migrate-set-capabilities", {"capabilities": [
         {"capability": "xbzrle", "state": False},
         {"capability": "late-block-activate", "state": True}]}, {}, None),
    ("query-caps", lambda m: m.query_migration_capabilities(), "query-migrate-capabilities", {},
     [{"capability": "xbzrle", "state": True}, {"capability": "multifd", "state": False}],
     {"xbzrle": True, "multifd": False}),
    ("query-params", lambda m: m.query_migration_parameters(), "query-migrate-parameters", {},
     {"max-bandwidth": 9, "downtime-limit": 300, "xbzrle-cache-size": 1, "multifd-channels": 2,
      "cpu-throttle-initial": 20, "cpu-throttle-increment": 10, "max-postcopy-bandwidth": 0},
     MigrationParameters(9, 300, 1, 2, 20, 10, 0)),
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


def test_capabilities_as_they_are_send_nothing(fake_qmp: FakeQmp) -> None:
    with Monitor(fake_qmp.path, timeout=5) as mon:
        mon.set_migration_capabilities(current={"events": True})
        mon.set_migration_capabilities(events=False, current={})
    assert "migrate-set-capabilities" not in fake_qmp.names()
