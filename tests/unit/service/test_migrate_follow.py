"""The convergence policy's decisions of one step of the loop that follows a migration
(:class:`pyvirt.service.domain.migrate._Follow`), against a recording monitor: when
``--postcopy-after-precopy`` switches, when ``--timeout`` acts, what ``--abort-on-error``
does (tests/integration/test_migrate*.py run them with QEMU)."""

from __future__ import annotations

from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor.migration import MigrationParameters, MigrationStatus
from pyvirt.errors import OperationFailedError
from pyvirt.service.domain.migrate import Policy, _Follow, starting_parameters
from pyvirt.service.domain.types import Reason


class Mon:
    def __init__(self, status: str = "running") -> None:
        self.calls: list[str] = []
        self.status = status

    def migrate_start_postcopy(self) -> None:
        self.calls.append("postcopy")

    def stop(self) -> None:
        self.calls.append("stop")

    def query_status(self) -> tuple[str, bool]:
        return self.status, self.status == "running"


def follow(**policy: Any) -> _Follow:
    return _Follow("/nonexistent.sock", "t1", Policy(**policy), 300, None, None)


def active(passes: int) -> MigrationStatus:
    return MigrationStatus("active", transferred=1, total=100, remaining=99, passes=passes)


def test_postcopy_after_precopy_waits_for_the_first_pass_to_end() -> None:
    f, mon = follow(postcopy=True, postcopy_after_passes=1), Mon()
    f._step(mon, active(1))  # type: ignore[arg-type]  # QEMU counts the first pass at once
    assert mon.calls == [] and not f.in_postcopy
    f._step(mon, active(2))  # type: ignore[arg-type]  # the second began: one is complete
    assert mon.calls == ["postcopy"] and f.in_postcopy


def test_timeout_suspends_once_and_says_why() -> None:
    f, mon = follow(timeout=0.001), Mon()
    paused: list[Reason] = []
    f.on_pause = paused.append
    f.started -= 1
    f._step(mon, active(1))  # type: ignore[arg-type]
    f._step(mon, active(1))  # type: ignore[arg-type]
    assert mon.calls == ["stop"] and paused == [Reason.MIGRATING]


def test_timeout_postcopy_switches_when_postcopy_is_allowed() -> None:
    f, mon = follow(timeout=0.001, timeout_action="postcopy", postcopy=True), Mon()
    f.started -= 1
    f._step(mon, active(1))  # type: ignore[arg-type]
    assert mon.calls == ["postcopy"] and f.in_postcopy


def test_abort_on_error() -> None:
    f, mon = follow(abort_on_error=True), Mon()
    f._step(mon, active(1))  # type: ignore[arg-type]  # running: nothing happens
    mon.status = "io-error"
    paused: list[Reason] = []
    f.on_pause = paused.append
    with pytest.raises(OperationFailedError, match="I/O error of a disk"):
        f._step(mon, active(1))  # type: ignore[arg-type]
    assert paused == [Reason.IOERROR]
    # without the option the guest paused on the error migrates as it is
    f, mon = follow(), Mon("io-error")
    f._step(mon, active(1))  # type: ignore[arg-type]
    assert mon.calls == []


def _before(downtime_ms: int) -> MigrationParameters:
    return MigrationParameters(max_bandwidth=128 << 20, downtime_limit_ms=downtime_ms,
                               xbzrle_cache_size=64 << 20)  # fmt: skip


def test_the_policy_starts_from_a_low_downtime_limit() -> None:
    """QEMU's default limit (300 ms) is replaced by the policy's starting one (50 ms)."""
    assert starting_parameters(Policy(), _before(300)) == {"downtime_limit_ms": 50}
    assert starting_parameters(Policy(initial_downtime_ms=100), _before(300)) == {
        "downtime_limit_ms": 100
    }


def test_a_downtime_limit_someone_set_stays() -> None:
    """One given to the migration wins; one set before it (migrate-setmaxdowntime) stays."""
    assert starting_parameters(Policy(downtime_ms=700), _before(300)) == {"downtime_limit_ms": 700}
    assert starting_parameters(Policy(bandwidth=1 << 20), _before(40)) == {"max_bandwidth": 1 << 20}


def test_the_loop_keeps_the_monitor_while_the_migration_may_end() -> None:
    """No gap between two monitor sessions while the end may come within the next hold."""
    f = follow()  # downtime limit 300 ms; a hold is 250 ms
    mib = 1 << 20
    rate = 128 * mib * 8 / 1e6  # QEMU's default bandwidth, in its mbps
    assert f.may_end_soon(MigrationStatus("device", remaining=0))
    assert f.may_end_soon(MigrationStatus("pre-switchover", remaining=500 * mib))
    assert f.may_end_soon(MigrationStatus("active", remaining=60 * mib, mbps=rate))
    assert not f.may_end_soon(MigrationStatus("active", remaining=80 * mib, mbps=rate))
    assert not f.may_end_soon(MigrationStatus("active", remaining=mib))  # no rate yet
    assert not f.may_end_soon(MigrationStatus("postcopy-active", remaining=0, mbps=rate))
