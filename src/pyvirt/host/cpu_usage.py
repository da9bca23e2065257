"""CPU time of one QEMU process per host CPU and in total (virsh ``cpu-stats``).

The total (``cpu_time``, ``user_time``, ``system_time``) is ``/proc/PID/stat``. Per host CPU:

* ``cpuacct.usage_percpu`` of the process's cgroup v1 ``cpuacct`` hierarchy, when that cgroup
  is the domain's own (not the root, no other processes): exact, source ``cgroup``;
* otherwise, from each thread's run time (``/proc/PID/task/TID/schedstat``) charged to the
  CPU the thread last ran on (field 39 of its ``stat``): source ``threads``. A thread that
  moved between CPUs is counted on its last one, so the split is approximate; the sum is the
  run time of the live threads.

Readers take the ``/proc`` root and the cgroup mount root so unit tests use fake trees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from pyvirt.host.procstats import process_cpu

__all__ = ["CpuUsage", "read_cpu_usage"]


@dataclass(frozen=True)
class CpuUsage:
    """Nanoseconds: the total split into user and system, and ``per_cpu[i]`` of host CPU i.

    :ivar vcpu_per_cpu: the vCPU threads' time per host CPU (by each one's last CPU)
    :ivar source: ``cgroup`` or ``threads`` (how ``per_cpu`` was found)
    """

    cpu_ns: int
    user_ns: int
    system_ns: int
    per_cpu: tuple[int, ...]
    vcpu_per_cpu: tuple[int, ...]
    source: str


#: QEMU names its vCPU threads ``CPU 0/KVM`` or ``CPU 0/TCG``
_VCPU_COMM = re.compile(r"CPU \d+/")


def _comm(task: Path) -> str:
    try:
        return task.joinpath("comm").read_text().strip()
    except OSError:
        return ""


def _cgroup_v1_path(pid: int, proc: Path, controller: str) -> str | None:
    try:
        text = (proc / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3 and controller in parts[1].split(","):
            return parts[2]
    return None


def _cpuacct_dir(proc: Path, cgroup_root: Path) -> Path | None:
    """The mount point of the v1 hierarchy carrying ``cpuacct``."""
    try:
        text = (proc / "self" / "mountinfo").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        pre, _, post = line.partition(" - ")
        fields, super_fields = pre.split(), post.split()
        if (
            len(super_fields) >= 3
            and super_fields[0] == "cgroup"
            and "cpuacct" in super_fields[2].split(",")
        ):
            return cgroup_root / fields[4].lstrip("/")
    return None


def _from_cgroup(pid: int, proc: Path, cgroup_root: Path) -> tuple[int, ...] | None:
    path = _cgroup_v1_path(pid, proc, "cpuacct")
    mount = _cpuacct_dir(proc, cgroup_root)
    if not path or path == "/" or mount is None:
        return None
    directory = mount / path.lstrip("/")
    try:
        procs = {int(p) for p in (directory / "cgroup.procs").read_text().split()}
        values = (directory / "cpuacct.usage_percpu").read_text().split()
    except (OSError, ValueError):
        return None
    if procs != {pid}:
        return None  # shared with other processes: it would not be this domain's time
    return tuple(int(v) for v in values)


def _from_threads(pid: int, proc: Path, ncpus: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    per = [0] * ncpus
    vper = [0] * ncpus
    try:
        tids = [int(t.name) for t in (proc / str(pid) / "task").iterdir() if t.name.isdigit()]
    except (OSError, ValueError):
        tids = []
    for tid in tids:
        try:
            base = proc / str(pid) / "task" / str(tid)
            stat = (base / "stat").read_text().rsplit(")", 1)[-1].split()
            run_ns = int((base / "schedstat").read_text().split()[0])
            cpu = int(stat[36])  # field 39 of stat; fields after ')' start at field 3
        except (OSError, ValueError, IndexError):
            continue
        if 0 <= cpu < ncpus:
            per[cpu] += run_ns
            if _VCPU_COMM.match(_comm(base)):
                vper[cpu] += run_ns
    return tuple(per), tuple(vper)


def read_cpu_usage(
    pid: int,
    ncpus: int,
    *,
    proc: Path = Path("/proc"),
    cgroup_root: Path = Path("/"),
) -> CpuUsage | None:
    """CPU time of process ``pid`` over ``ncpus`` host CPUs (``None``: the process is gone)."""
    total = process_cpu(pid, proc)
    if total is None:
        return None
    per_cpu = _from_cgroup(pid, proc, cgroup_root)
    by_threads, vcpu = _from_threads(pid, proc, ncpus)
    source = "threads" if per_cpu is None else "cgroup"
    per = by_threads if per_cpu is None else per_cpu[:ncpus]
    return CpuUsage(total.total_ns, total.user_ns, total.system_ns, per, vcpu, source)
