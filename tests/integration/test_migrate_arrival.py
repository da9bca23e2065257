"""The migration's hot path: the destination runs the guest the moment its state is in (its
watcher sends ``cont``, before the finish step), and the source's parameters go back only
when the guest runs there again: a finish that fails (here: a definition the destination
refuses) resumes the guest at the source with its bandwidth and downtime as before."""

from __future__ import annotations

import json

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.errors import PyvirtError
from tests.conftest import Pyvirt
from tests.integration.migratehelp import Before, kept, source
from tests.integration.test_lifecycle import state
from tests.integration.test_migrate_live import _uri, other

__all__ = ["other", "source"]  # fixtures

pytestmark = pytest.mark.qemu

BAD_XML = (
    "<domain type='qemu'><name>t1</name><memory unit='MiB'>64</memory><vcpu>0</vcpu>"
    "<os><type>hvm</type></os></domain>"
)


def _events(pv: Pyvirt, name: str) -> list[str]:
    """The QMP events domain *name*'s watcher logged, with their data."""
    log = (pv.root / "log" / "qemu" / name / "qemu.log").read_text()
    return [line.split(": event ", 1)[1] for line in log.splitlines() if ": event " in line]


def test_failed_finish_resumes_the_source_then_the_destination_runs_it_on_arrival(
    pyvirt: Pyvirt, other: Pyvirt, source: Before
) -> None:
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    dest = pyvirt_api.open(_uri(other))
    policy = pyvirt_api.MigrationPolicy(bandwidth=200 << 20, downtime_ms=150)

    # the state moves, the destination refuses the definition: the source runs on, with
    # the parameters it had (the policy's stayed while it stood still)
    with pytest.raises(PyvirtError, match="count must be at least 1"):
        src.migrate(dest, policy=policy, persistent=True, persistent_xml=BAD_XML)
    assert state(pyvirt, "t1") == "running (booted)"
    assert pyvirt("migrate-getspeed", "t1").out == source.speed
    assert pyvirt("migrate-getmaxdowntime", "t1").out == source.downtime
    assert not (other.root / "run" / "qemu" / "t1").exists()
    assert not (pyvirt.root / "run" / "qemu" / "t1" / "migrate-before.json").exists()

    # a plain live migration: the destination's watcher resumed it on QEMU's completion
    result = src.migrate(dest, policy=policy)
    assert result is not None and result.downtime_ms is not None
    assert state(other, "t1") == "running (migrated)"
    run = other.root / "run" / "qemu" / "t1"
    # the watcher's flag went, and finish took its note that the guest runs (it then opened
    # no monitor session of its own)
    assert not (run / "run-on-arrival").exists() and not (run / "arrived").exists()
    events = _events(other, "t1")
    done = events.index('MIGRATION {"status": "completed"}')
    assert "RESUME {}" in events[done:], events
    rec = json.loads((other.root / "run" / "qemu" / "t1" / "runtime.json").read_text())
    assert rec["reason"] == "migrated"
    assert kept(other)
    assert state(pyvirt, "t1") == "shut off (migrated)"


def test_a_watcher_that_connects_after_the_state_came_still_runs_the_guest(
    pyvirt: Pyvirt, other: Pyvirt, source: Before
) -> None:
    """The source sends as soon as the destination's QEMU listens, before that QEMU's watcher
    is even spawned (a short migration can beat its start-up): a watcher that connects only
    once the whole state is in asks QEMU, and runs the guest then."""
    import os
    import signal
    import time

    from pyvirt.drivers.qemu.runtime import read_watcher
    from pyvirt.service.domain import reaper_spawn
    from pyvirt.state.paths import StatePaths

    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    dest = pyvirt_api.open(_uri(other))
    incoming = dest.domains.migration_prepare(src.xml_desc(security_info=True),
                                              run_on_arrival=True)  # fmt: skip
    run = other.root / "run" / "qemu" / "t1"
    first = read_watcher(run)
    assert first is not None
    os.kill(first.pid, signal.SIGKILL)  # no watcher while the state comes
    src.migration_perform(incoming.uri, pyvirt_api.MigrationPolicy())
    assert (run / "run-on-arrival").exists()  # nobody ran it yet

    reaper_spawn.spawn(StatePaths.from_root(other.root), "t1")  # a late watcher
    deadline = time.monotonic() + 30
    while not (run / "arrived").exists():
        assert time.monotonic() < deadline, "the late watcher did not run the guest"
        time.sleep(0.05)
    assert "RESUME {}" in _events(other, "t1")
    dest.domains.migration_finish("t1")
    src.migration_confirm()
    assert state(other, "t1") == "running (migrated)"
    assert not (run / "run-on-arrival").exists() and not (run / "arrived").exists()
    assert kept(other)
    assert state(pyvirt, "t1") == "shut off (migrated)"


def test_a_finish_that_fails_once_the_guest_runs_there_never_resumes_the_source(
    pyvirt: Pyvirt, other: Pyvirt, source: Before, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The destination's watcher ran the guest as its state came in; the finish step then
    fails (here its answer is lost, as a broken connection to the destination's daemon
    loses it): the source keeps the guest paused, never a second running copy, and the error
    says where the guest runs."""
    from pyvirt.api.domains import DomainCollection
    from pyvirt.errors import OperationFailedError

    real = DomainCollection.migration_finish

    def lost(self: DomainCollection, name: str, **kwargs: object) -> object:
        kwargs.pop("on_running", None)  # a daemon's finish says so with its answer only
        real(self, name, **kwargs)  # type: ignore[arg-type]
        raise OperationFailedError("the connection to the destination broke")

    monkeypatch.setattr(DomainCollection, "migration_finish", lost)
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    with pytest.raises(OperationFailedError, match="may run on the destination") as err:
        src.migrate(pyvirt_api.open(_uri(other)))
    assert "destroy the paused source" in str(err.value.hint)
    assert state(other, "t1") == "running (migrated)"
    assert state(pyvirt, "t1") == "paused (migrating)"
    assert kept(other)
    pyvirt("destroy", "t1")


def test_a_finish_that_fails_after_it_said_the_guest_runs_there_stops_the_source(
    pyvirt: Pyvirt, other: Pyvirt, source: Before, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The source's confirm runs beside the destination's finish and stops its QEMU once
    finish says the guest runs there; finish failing after that (its records) leaves the
    guest running there and none here, and the error says so."""
    from pyvirt.api.domains import DomainCollection
    from pyvirt.errors import OperationFailedError

    real = DomainCollection.migration_finish

    def late(self: DomainCollection, name: str, **kwargs: object) -> object:
        real(self, name, **kwargs)  # type: ignore[arg-type]
        raise OperationFailedError("its records could not be written")

    monkeypatch.setattr(DomainCollection, "migration_finish", late)
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    with pytest.raises(OperationFailedError, match="runs on the destination, but its finish"):
        src.migrate(pyvirt_api.open(_uri(other)))
    assert state(other, "t1") == "running (migrated)"
    assert state(pyvirt, "t1") == "shut off (migrated)"
    assert kept(other)
