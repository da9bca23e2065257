"""Per-domain statistics history: a bounded in-memory ring of rates for the web console's
performance graphs (issue 13: CPU, memory, disk and network I/O over the last hour).

>>> history = StatsHistory(seconds=3600, interval=5)
>>> history.add(conn.domains.stats(running_names, history_groups()), time.time())
>>> history.columns("web1", since=0.0)["cpu"]

:meth:`StatsHistory.add` takes one collection of :class:`~pyvirt.api.stats.DomainStats`
records (the same collector as ``domstats`` and ``/metrics``) and turns the counters into
rates against the previous sample of each running domain. Every column is an
``array('f')`` (the time column ``array('d')``): 721 samples x (8 + 8 x 4) bytes, about
28 KiB per running domain for an hour at 5 s. A domain that stops keeps its history (a gap
in the graphs until it runs again) until it is undefined (:meth:`StatsHistory.keep_only`)
or its samples are older than the hour.

Columns (one value per sample, ``None`` where unknown):

- ``t``: Unix time of the sample (seconds)
- ``cpu``: CPU use of the domain's QEMU in % of one host CPU (a 2-vCPU guest can reach 200)
- ``mem_current_kib``: the balloon's size (``<currentMemory>`` without a balloon)
- ``mem_used_kib``: memory the guest uses (its balloon statistics: available - unused),
  ``None`` without guest statistics
- ``mem_rss_kib``: QEMU's resident memory
- ``disk_rd_bps``, ``disk_wr_bps``: bytes read/written per second, all disks together
- ``net_rx_bps``, ``net_tx_bps``: bytes received/sent per second by the guest, all NICs
"""

from __future__ import annotations

import bisect
import math
import threading
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyvirt.api.stats import DomainStats, StatsGroup

__all__ = ["COLUMNS", "StatsHistory", "history_groups"]

# lazy: this module is imported by pyvirtd at start-up; the statistics collector (~1 MiB of
# modules) loads with the first sample of a running domain.


def history_groups() -> frozenset[StatsGroup]:
    """The statistics groups a sample needs."""
    from pyvirt.api.stats import StatsGroup  # lazy

    return frozenset({StatsGroup.CPU, StatsGroup.BALLOON, StatsGroup.BLOCK, StatsGroup.INTERFACE})


#: the value columns, in order (``t`` comes first in every answer)
COLUMNS = (
    "cpu",
    "mem_current_kib",
    "mem_used_kib",
    "mem_rss_kib",
    "disk_rd_bps",
    "disk_wr_bps",
    "net_rx_bps",
    "net_tx_bps",
)
_NAN = math.nan


@dataclass
class _Counters:
    """The last raw counters of one domain (rates need two samples)."""

    t: float
    cpu_ns: int | None
    rd: int | None
    wr: int | None
    rx: int | None
    tx: int | None


@dataclass
class _Ring:
    """One domain's samples: parallel arrays, the oldest first."""

    t: array[float] = field(default_factory=lambda: array("d"))
    cols: list[array[float]] = field(default_factory=lambda: [array("f") for _ in COLUMNS])
    last: _Counters | None = None
    vcpus: int = 0
    max_kib: int = 0

    def trim(self, keep: int) -> None:
        extra = len(self.t) - keep
        if extra > 0:
            del self.t[:extra]
            for col in self.cols:
                del col[:extra]


def _rate(now: int | None, before: int | None, dt: float) -> float:
    if now is None or before is None or dt <= 0 or now < before:
        return _NAN  # unknown, or a counter that restarted
    return (now - before) / dt


def _sum(values: Iterable[int | None]) -> int | None:
    total, seen = 0, False
    for v in values:
        if v is not None:
            total += v
            seen = True
    return total if seen else None


class StatsHistory:
    """The rings of every running domain; thread-safe (the sampler writes from a worker
    thread while request handlers read)."""

    def __init__(self, seconds: float = 3600.0, interval: float = 5.0) -> None:
        self.seconds = seconds
        self.interval = interval
        #: samples kept per domain
        self.capacity = max(2, math.ceil(seconds / interval) + 1)
        self._rings: dict[str, _Ring] = {}
        self._lock = threading.Lock()

    def add(self, records: Iterable[DomainStats], now: float) -> int:
        """Record one collection taken at Unix time ``now``; returns the domains sampled.

        Records of shut-off domains are skipped; the first sample of a run only remembers
        the counters (its rates are unknown, so no point is added)."""
        count = 0
        now = round(now, 3)  # as answered: ``since`` = the last time seen skips it exactly
        with self._lock:
            for rec in records:
                ring = self._rings.get(rec.name)
                if not rec.active:
                    if ring is not None:
                        ring.last = None  # the next run's first sample has no rates
                    continue
                if ring is None:
                    ring = self._rings[rec.name] = _Ring()
                self._sample(ring, rec, now)
                count += 1
        return count

    def _sample(self, ring: _Ring, rec: DomainStats, now: float) -> None:
        blocks = rec.blocks or ()
        nets = rec.nets or ()
        counters = _Counters(
            now,
            rec.cpu.time_ns if rec.cpu is not None else None,
            _sum(b.rd_bytes for b in blocks),
            _sum(b.wr_bytes for b in blocks),
            _sum(n.rx_bytes for n in nets),
            _sum(n.tx_bytes for n in nets),
        )
        before, ring.last = ring.last, counters
        if before is None:
            return
        if (counters.cpu_ns or 0) < (before.cpu_ns or 0):  # QEMU restarted in between
            return
        dt = now - before.t
        if dt <= 0:
            return
        cpu = _rate(counters.cpu_ns, before.cpu_ns, dt)
        b = rec.balloon
        current = float(b.current_kib) if b is not None else _NAN
        used = _NAN
        if b is not None and "available" in b.guest and "unused" in b.guest:
            used = float(b.guest["available"] - b.guest["unused"])
        rss = float(b.rss_kib) if b is not None and b.rss_kib is not None else _NAN
        if b is not None:
            ring.max_kib = b.maximum_kib
        values = (
            cpu / 1e7,  # ns per s -> % of one CPU
            current,
            used,
            rss,
            _rate(counters.rd, before.rd, dt),
            _rate(counters.wr, before.wr, dt),
            _rate(counters.rx, before.rx, dt),
            _rate(counters.tx, before.tx, dt),
        )
        ring.t.append(now)
        for col, value in zip(ring.cols, values, strict=True):
            col.append(value)
        ring.trim(self.capacity)

    def stopped(self, running: Iterable[str]) -> None:
        """Every domain not in ``running`` stopped: its next run starts without rates."""
        keep = set(running)
        with self._lock:
            for name, ring in self._rings.items():
                if name not in keep:
                    ring.last = None

    def forget(self, name: str) -> None:
        """Drop a domain's history (it was undefined or renamed)."""
        with self._lock:
            self._rings.pop(name, None)

    def keep_only(self, names: Iterable[str]) -> None:
        """Drop the history of every domain not in ``names`` (the defined ones)."""
        wanted = set(names)
        with self._lock:
            for name in [n for n in self._rings if n not in wanted]:
                del self._rings[name]

    def columns(self, name: str, since: float = 0.0) -> dict[str, Any]:
        """The samples of ``name`` taken after Unix time ``since``, as columns:
        ``{"interval", "max_kib", "t": [...], "cpu": [...], ...}`` (empty lists: none)."""
        with self._lock:
            ring = self._rings.get(name)
            out: dict[str, Any] = {
                "interval": self.interval,
                "max_kib": ring.max_kib if ring else None,
            }
            if ring is None:
                out["t"] = []
                out.update((c, []) for c in COLUMNS)
                return out
            start = bisect.bisect_right(ring.t, since)
            out["t"] = ring.t[start:].tolist()
            for col_name, col in zip(COLUMNS, ring.cols, strict=True):
                out[col_name] = [None if math.isnan(v) else round(v, 2) for v in col[start:]]
            return out

    def names(self) -> list[str]:
        """The domains with a history."""
        with self._lock:
            return sorted(self._rings)

    def nbytes(self) -> int:
        """Bytes held by the sample arrays (for the memory budget)."""
        with self._lock:
            return sum(
                r.t.itemsize * len(r.t) + sum(c.itemsize * len(c) for c in r.cols)
                for r in self._rings.values()
            )
