"""Per-process counters from ``/proc`` for ``domstats`` and ``/metrics``: a QEMU's CPU time,
its threads' run time, and the traffic counters of the network namespace it runs in.

Network counters come from ``/proc/PID/net/dev`` rather than ``/sys/class/net``: the file shows
the interfaces of the *process's* network namespace, so a caller in another namespace (a daemon
started outside the ``ip netns`` a guest's taps live in) still reads the right tap, with one
file read per domain instead of eight per interface.

Every reader takes a ``proc`` root so unit tests point it at a fake tree.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NetDevCounters", "ProcessCpu", "net_dev", "process_cpu", "thread_run_ns"]

PROC = Path("/proc")
_NS_PER_SEC = 1_000_000_000


@dataclass(frozen=True)
class ProcessCpu:
    """CPU time a process (all its threads, live and exited) used, in nanoseconds."""

    user_ns: int
    system_ns: int

    @property
    def total_ns(self) -> int:
        """User plus system time."""
        return self.user_ns + self.system_ns


@dataclass(frozen=True)
class NetDevCounters:
    """One interface's line of ``/proc/net/dev`` (as the host sees it: rx = into the host)."""

    rx_bytes: int
    rx_packets: int
    rx_errors: int
    rx_dropped: int
    tx_bytes: int
    tx_packets: int
    tx_errors: int
    tx_dropped: int


def process_cpu(pid: int, proc: Path = PROC, *, hz: int = 0) -> ProcessCpu | None:
    """User and system time of process ``pid`` from ``/proc/PID/stat`` (None: it is gone).

    :param hz: clock ticks per second (default: ``os.sysconf('SC_CLK_TCK')``)
    """
    try:
        text = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[-1].split()
    if len(fields) < 13:
        return None
    hz = hz or os.sysconf("SC_CLK_TCK")
    return ProcessCpu(
        user_ns=int(fields[11]) * _NS_PER_SEC // hz,
        system_ns=int(fields[12]) * _NS_PER_SEC // hz,
    )


def thread_run_ns(pid: int, tid: int, proc: Path = PROC) -> int | None:
    """Nanoseconds thread ``tid`` of ``pid`` spent on a CPU (``schedstat``; None: it is gone)."""
    try:
        text = (proc / str(pid) / "task" / str(tid) / "schedstat").read_text()
    except OSError:
        return None
    first = text.split()[:1]
    return int(first[0]) if first and first[0].isdigit() else None


def net_dev(pid: int, proc: Path = PROC) -> dict[str, NetDevCounters]:
    """Counters of every interface in the network namespace of process ``pid`` (empty when
    the process is gone)."""
    try:
        text = (proc / str(pid) / "net" / "dev").read_text()
    except OSError:
        return {}
    out: dict[str, NetDevCounters] = {}
    for line in text.splitlines()[2:]:
        name, sep, rest = line.partition(":")
        values = rest.split()
        if not sep or len(values) < 12 or not all(v.isdigit() for v in values[:12]):
            continue
        v = [int(x) for x in values]
        # receive: bytes packets errs drop fifo frame compressed multicast; transmit: same 4 first
        out[name.strip()] = NetDevCounters(v[0], v[1], v[2], v[3], v[8], v[9], v[10], v[11])
    return out
