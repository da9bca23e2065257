"""The convergence policy's decisions of one step of the loop that follows a migration
(:class:`pyvirt.service.domain.migrate._Follow`), against a recording monitor: when
``--postcopy-after-precopy`` switches, when ``--timeout`` acts, what ``--abort-on-error``
does (tests/integration/test_migrate*.py run them with QEMU)."""

from __future__ import annotations

from typing import Any

import pytest

from pyvirt.drivers.qemu.monitor.migration import MigrationStatus
from pyvirt.errors import OperationFailedError
from pyvirt.service.domain.migrate import Policy, _Follow
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
