"""``domstats --iothread --dirtyrate`` (and the empty ``--perf``/``--memory``): virsh's names,
the JSON round trip, what the monitor answers, and ``domdirtyrate-calc``'s checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.api.domains import DomainStatus, Reason, State
from pyvirt.api.stats import (
    DirtyRateStats,
    DomainStats,
    IOThreadStats,
    StatsGroup,
    params,
)
from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import InvalidConfigError
from pyvirt.service import stats
from tests.fakeqmp import FakeQmp


def record(measured: bool = True) -> DomainStats:
    status = DomainStatus("web1", "u-1", 3, State.RUNNING, Reason.BOOTED, True, False, pid=99)
    return DomainStats(
        status,
        iothreads=(IOThreadStats(1, 32768, 0, 0), IOThreadStats(2, None, None, None)),
        dirtyrate=DirtyRateStats(
            2 if measured else 0, 100, 1, "page-sampling", 12 if measured else None
        ),
    )


def test_params_use_virshs_names() -> None:
    groups = [StatsGroup.IOTHREAD, StatsGroup.DIRTYRATE, StatsGroup.PERF, StatsGroup.MEMORY]
    assert params(record(), groups) == [
        ("iothread.count", 2),
        ("iothread.1.poll-max-ns", 32768), ("iothread.1.poll-grow", 0),
        ("iothread.1.poll-shrink", 0),
        ("dirtyrate.calc_status", 2), ("dirtyrate.calc_start_time", 100),
        ("dirtyrate.calc_period", 1), ("dirtyrate.calc_mode", "page-sampling"),
        ("dirtyrate.megabytes_per_second", 12),
    ]  # fmt: skip
    unmeasured = dict(params(record(measured=False), [StatsGroup.DIRTYRATE]))
    assert unmeasured["dirtyrate.calc_status"] == 0
    assert "dirtyrate.megabytes_per_second" not in unmeasured
    assert params(record(), [StatsGroup.PERF, StatsGroup.MEMORY]) == []


def test_json_round_trip() -> None:
    rec = record()
    assert DomainStats.from_json(rec.to_json()) == rec


def test_the_monitor_answers_iothreads_and_the_dirty_rate(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-iothreads", [
        {"id": "iothread2", "thread-id": 8, "poll-max-ns": 0, "poll-grow": 2, "poll-shrink": 1},
        {"id": "iothread1", "thread-id": 7, "poll-max-ns": 32768, "poll-grow": 0,
         "poll-shrink": 0},
    ])  # fmt: skip
    fake_qmp.on("query-dirty-rate", {"status": "measured", "start-time": 5, "calc-time": 1,
                                     "mode": "page-sampling", "dirty-rate": 3})  # fmt: skip
    with Monitor(fake_qmp.path) as mon:
        threads = stats._iothreads(mon)
        rate = stats._dirtyrate(mon)
    assert threads == (IOThreadStats(1, 32768, 0, 0), IOThreadStats(2, 0, 2, 1))
    assert rate == DirtyRateStats(2, 5, 1, "page-sampling", 3)


def test_an_old_qemu_without_dirty_rate_reports_none(fake_qmp: FakeQmp) -> None:
    with Monitor(fake_qmp.path) as mon:
        assert stats._dirtyrate(mon) is None  # CommandNotFound


@pytest.mark.parametrize(
    ("seconds", "mode", "message"),
    [(0, None, "out of range"), (61, None, "out of range"), (1, "fast", "unknown dirty rate")],
)
def test_calc_dirty_rate_checks_its_arguments(
    seconds: int, mode: str | None, message: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        stats.calc_dirty_rate(None, "web1", seconds, mode=mode)  # type: ignore[arg-type]
