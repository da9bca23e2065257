"""Threads of a running process: CPU placement, CPU time, affinity; host CPU and node sets.

Reads ``/proc/PID/task/TID/{stat,status,comm}`` and ``/sys/devices/system/{cpu,node}``;
every reader takes the ``/proc`` or ``/sys`` root, so unit tests can use fake trees. Affinity
is set with :func:`os.sched_setaffinity` and read back from ``Cpus_allowed_list`` (what the
kernel really applied, after cpuset restrictions).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pyvirt.errors import InvalidConfigError, OperationFailedError
from pyvirt.model.cpuset import format_cpuset, parse_cpuset

PROC = Path("/proc")
SYS = Path("/sys")


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def host_cpus(sys_root: Path = SYS) -> set[int]:
    """Online host CPUs."""
    text = _read(sys_root / "devices/system/cpu/online")
    return parse_cpuset(text, allow_empty=True) if text else set(range(os.cpu_count() or 1))


def host_nodes(sys_root: Path = SYS) -> set[int]:
    """Online host NUMA nodes (``{0}`` on a host without NUMA information)."""
    text = _read(sys_root / "devices/system/node/online")
    return parse_cpuset(text, allow_empty=True) if text else {0}


def check_cpus(text: str, sys_root: Path = SYS) -> set[int]:
    """Parse a CPU list and refuse CPUs the host does not have.

    :raises InvalidConfigError: malformed, or naming missing CPUs
    """
    cpus = parse_cpuset(text, what="CPU list")
    have = host_cpus(sys_root)
    missing = cpus - have
    if missing:
        raise InvalidConfigError(
            f"CPU list '{text}' names CPUs {format_cpuset(missing)} the host does not have",
            hint=f"the host's CPUs are {format_cpuset(have)}",
        )
    return cpus


def check_nodes(text: str, sys_root: Path = SYS) -> set[int]:
    """Parse a NUMA node set and refuse nodes the host does not have.

    :raises InvalidConfigError: malformed, or naming missing nodes
    """
    nodes = parse_cpuset(text, what="nodeset")
    have = host_nodes(sys_root)
    missing = nodes - have
    if missing:
        raise InvalidConfigError(
            f"nodeset '{text}' names NUMA nodes {format_cpuset(missing)} the host does not have",
            hint=f"the host's nodes are {format_cpuset(have)}",
        )
    return nodes


@dataclass(frozen=True)
class ThreadInfo:
    """One thread: its id, name, the CPU it last ran on, CPU seconds and allowed CPUs."""

    tid: int
    name: str
    cpu: int
    cpu_time: float
    affinity: frozenset[int]
    state: str


def thread_ids(pid: int, proc: Path = PROC) -> list[int]:
    """Every thread of process ``pid``."""
    try:
        return sorted(int(t) for t in os.listdir(proc / str(pid) / "task"))
    except OSError:
        return []


def thread_info(pid: int, tid: int, proc: Path = PROC) -> ThreadInfo:
    """Read one thread's ``stat`` and ``status``.

    :raises OperationFailedError: the thread is gone
    """
    task = proc / str(pid) / "task" / str(tid)
    stat = _read(task / "stat")
    if not stat:
        raise OperationFailedError(f"thread {tid} of process {pid} is gone")
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat.rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    allowed = ""
    for line in _read(task / "status").splitlines():
        if line.startswith("Cpus_allowed_list:"):
            allowed = line.split(":", 1)[1].strip()
    return ThreadInfo(
        tid=tid,
        name=name,
        cpu=int(fields[36]),
        cpu_time=(int(fields[11]) + int(fields[12])) / ticks,
        affinity=frozenset(parse_cpuset(allowed, what="Cpus_allowed_list") if allowed else ()),
        state=fields[0],
    )


def set_affinity(pid: int, tid: int, cpus: set[int], proc: Path = PROC) -> frozenset[int]:
    """Pin thread ``tid`` to ``cpus`` and return the affinity the kernel reports afterwards.

    :raises OperationFailedError: the kernel refused (e.g. CPUs outside the cgroup's cpuset)
    """
    try:
        os.sched_setaffinity(tid, cpus)
    except OSError as err:
        raise OperationFailedError(
            f"cannot pin thread {tid} to CPUs {format_cpuset(cpus)}: {err.strerror}"
        ) from err
    return thread_info(pid, tid, proc).affinity


def rss_kib(pid: int, proc: Path = PROC) -> int | None:
    """Resident memory of a process (``VmRSS``) in KiB."""
    for line in _read(proc / str(pid) / "status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None
