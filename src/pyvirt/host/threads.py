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

PROC = Path("/proc")
SYS = Path("/sys")


def parse_set(text: str, what: str = "CPU list") -> set[int]:
    """Parse ``0-3,8,^2`` (libvirt's set syntax) into a set of numbers.

    :raises InvalidConfigError: malformed text or an empty result
    """
    keep: set[int] = set()
    drop: set[int] = set()
    try:
        for part in text.replace(" ", "").split(","):
            if not part:
                continue
            target = drop if part.startswith("^") else keep
            lo, _, hi = part.lstrip("^").partition("-")
            first, last = int(lo), int(hi or lo)
            if first < 0 or last < first:
                raise ValueError(part)
            target.update(range(first, last + 1))
    except ValueError:
        raise InvalidConfigError(
            f"{what} '{text}' is malformed", hint="use a list like 0-3,6 or 0,2"
        ) from None
    result = keep - drop
    if not result:
        raise InvalidConfigError(f"{what} '{text}' is empty")
    return result


def format_set(values: set[int] | list[int]) -> str:
    """``{0,1,2,5}`` -> ``0-2,5``."""
    out: list[str] = []
    items = sorted(values)
    i = 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[j] + 1:
            j += 1
        out.append(str(items[i]) if i == j else f"{items[i]}-{items[j]}")
        i = j + 1
    return ",".join(out)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def host_cpus(sys_root: Path = SYS) -> set[int]:
    """Online host CPUs."""
    text = _read(sys_root / "devices/system/cpu/online")
    return parse_set(text) if text else set(range(os.cpu_count() or 1))


def host_nodes(sys_root: Path = SYS) -> set[int]:
    """Online host NUMA nodes (``{0}`` on a host without NUMA information)."""
    text = _read(sys_root / "devices/system/node/online")
    return parse_set(text) if text else {0}


def check_cpus(text: str, sys_root: Path = SYS) -> set[int]:
    """Parse a CPU list and refuse CPUs the host does not have.

    :raises InvalidConfigError: malformed, or naming missing CPUs
    """
    cpus = parse_set(text, "CPU list")
    have = host_cpus(sys_root)
    missing = cpus - have
    if missing:
        raise InvalidConfigError(
            f"CPU list '{text}' names CPUs {format_set(missing)} the host does not have",
            hint=f"the host's CPUs are {format_set(have)}",
        )
    return cpus


def check_nodes(text: str, sys_root: Path = SYS) -> set[int]:
    """Parse a NUMA node set and refuse nodes the host does not have.

    :raises InvalidConfigError: malformed, or naming missing nodes
    """
    nodes = parse_set(text, "nodeset")
    have = host_nodes(sys_root)
    missing = nodes - have
    if missing:
        raise InvalidConfigError(
            f"nodeset '{text}' names NUMA nodes {format_set(missing)} the host does not have",
            hint=f"the host's nodes are {format_set(have)}",
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
        affinity=frozenset(parse_set(allowed) if allowed else ()),
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
            f"cannot pin thread {tid} to CPUs {format_set(cpus)}: {err.strerror}"
        ) from err
    return thread_info(pid, tid, proc).affinity


def rss_kib(pid: int, proc: Path = PROC) -> int | None:
    """Resident memory of a process (``VmRSS``) in KiB."""
    for line in _read(proc / str(pid) / "status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None
