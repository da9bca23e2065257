"""Domain and host statistics: the one collector behind ``pyvirt domstats`` and pyvirtd's
``/metrics``.

>>> for rec in conn.domains.stats(["web1"]):
...     print(rec.name, rec.cpu.time_ns if rec.cpu else None)
>>> for key, value in params(rec):        # virsh domstats' flat names
...     print(f"{key}={value}")
>>> host_stats().memory_bytes["available"]

``conn.domains.stats()`` returns one :class:`DomainStats` per domain (state, CPU time, balloon,
vCPU times, disk and NIC counters); :func:`params` flattens one into virsh's
``state.state=1``, ``cpu.time=...``, ``block.0.rd.bytes=...`` pairs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING

from pyvirt.service.host.stats import HostStats
from pyvirt.service.host.stats import host_stats as _host_stats
from pyvirt.service.stats import (
    BalloonStats,
    BlockStats,
    CpuStats,
    DirtyRateStats,
    DomainStats,
    Groups,
    IOThreadStats,
    NetStats,
    VcpuStats,
    collect,
    reason_code,
    state_code,
)

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = [
    "ALL_GROUPS",
    "BalloonStats",
    "BlockStats",
    "CpuStats",
    "DirtyRateStats",
    "DomainStats",
    "HostStats",
    "IOThreadStats",
    "NetStats",
    "StatsGroup",
    "VcpuStats",
    "host_stats",
    "params",
    "reason_code",
    "state_code",
]


class StatsGroup(StrEnum):
    """The groups of ``domstats``, named as virsh's options."""

    STATE = "state"
    CPU = "cpu-total"
    BALLOON = "balloon"
    VCPU = "vcpu"
    INTERFACE = "interface"
    BLOCK = "block"
    PERF = "perf"
    IOTHREAD = "iothread"
    MEMORY = "memory"
    DIRTYRATE = "dirtyrate"


#: every group
ALL_GROUPS: frozenset[StatsGroup] = frozenset(StatsGroup)

#: guest balloon statistics in virsh's order (``balloon.NAME``)
_BALLOON_ORDER = (
    "swap_in", "swap_out", "major_fault", "minor_fault", "unused", "available", "usable",
    "last-update", "disk_caches", "hugetlb_pgalloc", "hugetlb_pgfail",
)  # fmt: skip

Param = tuple[str, int | str]


def domain_stats(
    service: ServiceConnection,
    names: Sequence[str] | None = None,
    groups: Iterable[StatsGroup] = ALL_GROUPS,
    *,
    inactive_details: bool = True,
    monitor_wait: bool = True,
) -> list[DomainStats]:
    """The implementation of :meth:`pyvirt.api.domains.DomainCollection.stats` (call that):
    statistics of the domains ``names`` (None: every domain)."""
    wanted = set(groups)
    flags = Groups(
        cpu=StatsGroup.CPU in wanted,
        balloon=StatsGroup.BALLOON in wanted,
        vcpu=StatsGroup.VCPU in wanted,
        interface=StatsGroup.INTERFACE in wanted,
        block=StatsGroup.BLOCK in wanted,
        iothread=StatsGroup.IOTHREAD in wanted,
        perf=StatsGroup.PERF in wanted,
        dirtyrate=StatsGroup.DIRTYRATE in wanted,
        monitor_wait=monitor_wait,
    )
    return collect(service.domains, names, flags, inactive_details=inactive_details)


def host_stats() -> HostStats:
    """CPU time by mode and memory by kind of the host this process runs on (pyvirtd serves
    them for its host in ``/metrics``)."""
    return _host_stats()


def params(rec: DomainStats, groups: Iterable[StatsGroup] = ALL_GROUPS) -> list[Param]:
    """``rec`` as virsh ``domstats`` prints it: ``(key, value)`` pairs such as
    ``("state.state", 1)`` or ``("block.0.rd.bytes", 4096)``, group by group in virsh's order
    (state, cpu, balloon, vcpu, net, block, iothread, dirtyrate); groups not in ``groups`` or
    not collected are left out (``perf`` and ``memory`` never have values here)."""
    wanted = set(groups)
    st = rec.status
    out: list[Param] = []
    if StatsGroup.STATE in wanted:
        out.append(("state.state", state_code(st.state)))
        out.append(("state.reason", reason_code(st.state, st.reason)))
    if StatsGroup.CPU in wanted and rec.cpu is not None:
        c = rec.cpu
        out += [("cpu.time", c.time_ns), ("cpu.user", c.user_ns), ("cpu.system", c.system_ns)]
    if StatsGroup.BALLOON in wanted and rec.balloon is not None:
        out += _balloon(rec.balloon)
    if StatsGroup.VCPU in wanted and rec.vcpu_count is not None:
        out += [("vcpu.current", rec.vcpu_count[0]), ("vcpu.maximum", rec.vcpu_count[1])]
        for v in rec.vcpus or ():
            out += [(f"vcpu.{v.vcpu}.state", v.state), (f"vcpu.{v.vcpu}.time", v.time_ns)]
    if StatsGroup.INTERFACE in wanted and rec.nets is not None:
        out += _nets(rec.nets)
    if StatsGroup.BLOCK in wanted and rec.blocks is not None:
        out += _blocks(rec.blocks)
    if StatsGroup.PERF in wanted and rec.perf:
        out += [(f"perf.{name}", value) for name, value in rec.perf.items()]
    if StatsGroup.IOTHREAD in wanted and rec.iothreads is not None:
        out.append(("iothread.count", len(rec.iothreads)))
        for t in rec.iothreads:
            for key in ("poll-max-ns", "poll-grow", "poll-shrink"):
                value = getattr(t, key.replace("-", "_"))
                if value is not None:
                    out.append((f"iothread.{t.id}.{key}", value))
    if StatsGroup.DIRTYRATE in wanted and rec.dirtyrate is not None:
        d = rec.dirtyrate
        out += [
            ("dirtyrate.calc_status", d.calc_status),
            ("dirtyrate.calc_start_time", d.calc_start_time),
            ("dirtyrate.calc_period", d.calc_period),
            ("dirtyrate.calc_mode", d.calc_mode),
        ]
        if d.mb_per_s is not None:
            out.append(("dirtyrate.megabytes_per_second", d.mb_per_s))
    return out


def _balloon(b: BalloonStats) -> list[Param]:
    out: list[Param] = [("balloon.current", b.current_kib), ("balloon.maximum", b.maximum_kib)]
    out += [(f"balloon.{k}", b.guest[k]) for k in _BALLOON_ORDER if k in b.guest]
    if b.rss_kib is not None:
        out.append(("balloon.rss", b.rss_kib))
    return out


def _nets(nets: Sequence[NetStats]) -> list[Param]:
    out: list[Param] = [("net.count", len(nets))]
    for i, n in enumerate(nets):
        p = f"net.{i}."
        out += [
            (p + "name", n.name),
            (p + "rx.bytes", n.rx_bytes), (p + "rx.pkts", n.rx_pkts),
            (p + "rx.errs", n.rx_errs), (p + "rx.drop", n.rx_drop),
            (p + "tx.bytes", n.tx_bytes), (p + "tx.pkts", n.tx_pkts),
            (p + "tx.errs", n.tx_errs), (p + "tx.drop", n.tx_drop),
        ]  # fmt: skip
    return out


def _blocks(blocks: Sequence[BlockStats]) -> list[Param]:
    out: list[Param] = [("block.count", len(blocks))]
    for i, b in enumerate(blocks):
        p = f"block.{i}."
        out.append((p + "name", b.name))
        if b.path:
            out.append((p + "path", b.path))
        for key in ("rd.reqs", "rd.bytes", "rd.times", "wr.reqs", "wr.bytes", "wr.times",
                    "fl.reqs", "fl.times"):  # fmt: skip
            value = getattr(b, key.replace(".", "_"))
            if value is not None:
                out.append((p + key, value))
    return out
