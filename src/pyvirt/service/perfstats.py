"""``domstats --perf``: libvirt's ``perf.*`` figures of a running domain's QEMU process.

As in libvirt, a figure is reported only for an event the definition enables
(``<perf><event name='task_clock' enabled='yes'/></perf>``), and only when the kernel lets this
process open perf events on QEMU (``perf_event_open``: not in a container that filters it,
``kernel.perf_event_paranoid`` and the caller's privileges permitting); otherwise the group is
empty, which is what virsh prints when perf events are disabled.

pyvirt keeps no process per guest that could hold perf counters open from the guest's start,
so it reports the software events from the kernel's own per-task accounting, which is what
the kernel's software perf events count, summed over QEMU's threads, since QEMU started:

- ``task_clock``, ``cpu_clock``: nanoseconds on a CPU (each thread's ``schedstat``);
- ``page_faults``, ``page_faults_min``, ``page_faults_maj``: ``/proc/PID/stat``;
- ``context_switches``: voluntary + involuntary switches (each thread's ``status``);
- ``cpu_migrations``: each thread's ``se.nr_migrations`` (``sched``, when the kernel has it).

Not reported: the hardware events (``cpu_cycles``, ``instructions``, ``cache_*``,
``branch_*``, ``bus_cycles``, ``stalled_cycles_*``, ``ref_cpu_cycles``; they need a PMU and
counters opened when QEMU starts), ``alignment_faults`` and ``emulation_faults`` (the kernel
counts them only in perf events) and ``cmt``/``mbmt``/``mbml`` (removed from Linux; resctrl
replaced them).
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain

__all__ = ["EVENTS", "SOFTWARE", "enabled_events", "perf_allowed", "read"]

#: libvirt's perf events in its order (``perf.NAME``)
EVENTS = (
    "cmt", "mbmt", "mbml", "cpu_cycles", "instructions", "cache_references", "cache_misses",
    "branch_instructions", "branch_misses", "bus_cycles", "stalled_cycles_frontend",
    "stalled_cycles_backend", "ref_cpu_cycles", "cpu_clock", "task_clock", "page_faults",
    "context_switches", "cpu_migrations", "page_faults_min", "page_faults_maj",
    "alignment_faults", "emulation_faults",
)  # fmt: skip
#: the events pyvirt reports (see the module doc)
SOFTWARE = (
    "cpu_clock", "task_clock", "page_faults", "context_switches", "cpu_migrations",
    "page_faults_min", "page_faults_maj",
)  # fmt: skip
#: perf_event_open's system call number per machine
_SYSCALL = {"x86_64": 298, "aarch64": 241, "ppc64le": 319, "s390x": 331, "riscv64": 241}
_PERF_TYPE_SOFTWARE = 1
_PERF_COUNT_SW_TASK_CLOCK = 1
_PERF_FLAG_FD_CLOEXEC = 8
_ATTR_SIZE = 112  # PERF_ATTR_SIZE_VER5; every kernel since 4.1 takes it
PROC = Path("/proc")


def enabled_events(dom: Domain) -> list[str]:
    """The events the definition's ``<perf>`` enables, in libvirt's order."""
    perf = dom.element.find("perf")
    if perf is None:
        return []
    on = {e.get("name") for e in perf.findall("event") if e.get("enabled") == "yes"}
    return [name for name in EVENTS if name in on]


def perf_allowed(pid: int) -> bool:
    """Whether the kernel lets this process open a (disabled) software perf event on ``pid``."""
    number = _SYSCALL.get(platform.machine())
    if number is None:
        return False
    attr = (ctypes.c_uint8 * _ATTR_SIZE)()
    ctypes.memmove(attr, _PERF_TYPE_SOFTWARE.to_bytes(4, "little"), 4)
    ctypes.memmove(ctypes.byref(attr, 4), _ATTR_SIZE.to_bytes(4, "little"), 4)
    ctypes.memmove(ctypes.byref(attr, 8), _PERF_COUNT_SW_TASK_CLOCK.to_bytes(8, "little"), 8)
    flags = 1 | 1 << 5 | 1 << 6  # disabled, exclude_kernel, exclude_hv: the least privilege
    ctypes.memmove(ctypes.byref(attr, 40), flags.to_bytes(8, "little"), 8)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.syscall(number, attr, pid, -1, -1, _PERF_FLAG_FD_CLOEXEC)
    except (OSError, AttributeError):
        return False
    if fd < 0:
        return False
    os.close(fd)
    return True


def read(pid: int, events: list[str], proc: Path = PROC) -> dict[str, int]:
    """``perf.NAME`` figures of QEMU process ``pid`` for ``events`` (those of :data:`SOFTWARE`
    it can read; empty when the process is gone)."""
    wanted = [e for e in events if e in SOFTWARE]
    if not wanted:
        return {}
    base = proc / str(pid)
    try:
        stat = (base / "stat").read_text().rsplit(")", 1)[-1].split()
        tids = os.listdir(base / "task")
    except OSError:
        return {}
    minflt, majflt = int(stat[7]), int(stat[9])
    run_ns = switches = 0
    migrations: int | None = 0
    for tid in tids:
        task = base / "task" / tid
        try:
            run_ns += int((task / "schedstat").read_text().split()[0])
            for line in (task / "status").read_text().splitlines():
                if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                    switches += int(line.split()[1])
            if migrations is not None:
                migrations = _migrations(task, migrations)
        except (OSError, ValueError, IndexError):
            continue  # the thread ended meanwhile
    figures: dict[str, int | None] = {
        "cpu_clock": run_ns, "task_clock": run_ns, "page_faults": minflt + majflt,
        "context_switches": switches, "cpu_migrations": migrations,
        "page_faults_min": minflt, "page_faults_maj": majflt,
    }  # fmt: skip
    return {e: v for e in wanted if (v := figures[e]) is not None}


def _migrations(task: Path, total: int) -> int | None:
    """``total`` plus the thread's ``se.nr_migrations`` (None: the kernel does not show it)."""
    try:
        text = (task / "sched").read_text()
    except FileNotFoundError:
        return None
    for line in text.splitlines():
        if line.startswith("se.nr_migrations"):
            return total + int(line.rsplit(":", 1)[1])
    return None
