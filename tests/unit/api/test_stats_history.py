"""The statistics history behind the web console's graphs: rates from counters, bounded
rings, a new run starting a new history, columns after a time."""

from __future__ import annotations

import json

from pyvirt.api.stats import BalloonStats, BlockStats, CpuStats, DomainStats, NetStats
from pyvirt.api.stats_history import COLUMNS, StatsHistory
from pyvirt.service.domain.types import DomainStatus, Reason, State


def record(name: str, cpu_s: float, rd: int, rx: int, *, pid: int = 100,
           state: State = State.RUNNING) -> DomainStats:  # fmt: skip
    st = DomainStatus(name, "u-" + name, 1, state, Reason.BOOTED, True, False, pid)
    return DomainStats(
        st,
        cpu=CpuStats(int(cpu_s * 1e9), 0, 0),
        balloon=BalloonStats(1024, 2048, {"available": 900, "unused": 400}, 300),
        blocks=(BlockStats("vda", "/x", rd_bytes=rd, wr_bytes=2 * rd),),
        nets=(NetStats("vnet0", None, rx, 0, 0, 0, rx // 2, 0, 0, 0),),
    )


def test_rates_from_two_samples() -> None:
    h = StatsHistory(seconds=60, interval=5)
    assert h.add([record("a", 1.0, 0, 0)], 1000.0) == 1
    assert h.columns("a")["t"] == []  # the first sample only remembers the counters
    h.add([record("a", 3.5, 5000, 1000)], 1005.0)
    cols = h.columns("a")
    assert cols["t"] == [1005.0]
    assert cols["cpu"] == [50.0]  # 2.5 s of CPU in 5 s: half a host CPU
    assert cols["disk_rd_bps"] == [1000.0] and cols["disk_wr_bps"] == [2000.0]
    assert cols["net_rx_bps"] == [200.0] and cols["net_tx_bps"] == [100.0]
    assert cols["mem_current_kib"] == [1024.0] and cols["mem_used_kib"] == [500.0]
    assert cols["mem_rss_kib"] == [300.0] and cols["max_kib"] == 2048
    assert set(COLUMNS) <= set(cols)
    json.dumps(cols)


def test_ring_is_bounded_and_since_filters() -> None:
    h = StatsHistory(seconds=50, interval=5)
    for i in range(40):
        h.add([record("a", i * 0.5, i * 100, i * 10)], 1000.0 + 5 * i)
    cols = h.columns("a")
    assert len(cols["t"]) == h.capacity == 11
    assert cols["t"][-1] == 1195.0
    assert h.columns("a", since=1185.0)["t"] == [1190.0, 1195.0]
    assert h.nbytes() < 11 * (8 + 4 * len(COLUMNS)) + 1


def test_counter_reset_and_new_run() -> None:
    h = StatsHistory(seconds=60, interval=5)
    h.add([record("a", 10.0, 1000, 0)], 1000.0)
    h.add([record("a", 11.0, 500, 0)], 1005.0)  # the counter went back: unknown
    assert h.columns("a")["disk_rd_bps"] == [None]
    h.add([record("a", 0.1, 0, 0, pid=200)], 1010.0)  # restarted: no rates from this one
    assert h.columns("a")["t"] == [1005.0]
    h.add([record("a", 0.6, 0, 0, pid=200)], 1015.0)
    assert h.columns("a")["cpu"] == [20.0, 10.0]
    h.add([record("a", 0, 0, 0, state=State.SHUTOFF)], 1020.0)  # stopped: a gap
    h.add([record("a", 9.0, 0, 0, pid=300)], 1025.0)
    assert h.columns("a")["t"] == [1005.0, 1015.0]


def test_shut_off_skipped_and_pruned() -> None:
    h = StatsHistory(seconds=60, interval=5)
    h.add([record("a", 1, 0, 0), record("b", 1, 0, 0, state=State.SHUTOFF)], 1000.0)
    assert h.names() == ["a"]
    h.keep_only(["b"])
    assert h.names() == [] and h.columns("a")["t"] == []
