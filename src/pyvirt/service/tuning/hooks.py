"""The tuning lifecycle hook: what ``<memoryBacking>``, ``<memtune>``, ``<cputune>``,
``<numatune>`` and ``<vcpu cpuset>`` mean at start and stop.

``compile`` (once per start plan) checks the definition against the host (CPU lists, NUMA
nodes, hugepage sizes) and reduces it to JSON data. ``before_launch`` (every start) mounts
hugetlbfs where the argv expects it and refuses the start when too few free hugepages are
reserved, before QEMU runs. ``after_launch`` puts QEMU (all its threads) into the domain's
own cgroup, applies the memory and CPU limits and ``cpuset.mems``, and pins vCPU, emulator
and I/O threads. ``after_stop`` removes the cgroup.

Every domain gets a cgroup when the host allows it; when it does not (no root, controller
missing) a domain that needs none still starts, one that does is refused with the reason.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidStateError, UnsupportedError
from pyvirt.model.cpuset import parse_cpuset
from pyvirt.service.hooks import HookResult, register_hook
from pyvirt.service.tuning.cgroup import HOOK_NAME, place_in_cgroup

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the tuning hook runs at
# every start and in the reaper; cgroups, thread pinning, host commands (shutil) and QMP load only
# for domains with tuning.

log = logging.getLogger(__name__)

HUGEPAGES_SYSFS = Path("/sys/kernel/mm/hugepages")
#: where the argv builder expects hugetlbfs per page size (ArgvContext's default)
HUGETLBFS_DIRS = {2048: "/dev/hugepages", 1048576: "/dev/hugepages1G"}
#: where pyvirt before the versioned hook data recorded the cgroup (read for old domains)
CGROUP_FILE = "cgroup.json"


def _round_mib(kib: int) -> int:
    return (kib + 1023) // 1024 * 1024


def hugepage_needs(dom: Domain) -> dict[int, int]:
    """Page size (KiB) -> KiB of guest RAM backed by pages of that size."""
    mb = dom.memory_backing
    if mb is None or not (mb.hugepages_enabled or mb.hugepages):
        return {}
    default = next((p.size_kib or 2048 for p in mb.hugepages if p.nodeset is None), None)
    cells = list(dom.cpu.numa_cells) if dom.cpu is not None else []
    needs: dict[int, int] = {}
    if not cells:
        main = default or (mb.hugepages[0].size_kib if mb.hugepages else None) or 2048
        needs[main] = _round_mib(dom.memory_kib)
        return needs
    for pos, cell in enumerate(cells):
        node = cell.id if cell.id is not None else pos
        size: int | None = default if (default or not mb.hugepages) else None
        for p in mb.hugepages:
            if p.nodeset is not None and node in parse_cpuset(p.nodeset, what="nodeset"):
                size = p.size_kib or 2048
                break
        if size is None and not mb.hugepages:
            size = 2048
        if size is not None:
            needs[size] = needs.get(size, 0) + _round_mib(cell.memory_kib or 0)
    return needs


def host_page_sizes(sysfs: Path = HUGEPAGES_SYSFS) -> list[int]:
    """Hugepage sizes the kernel offers (KiB)."""
    try:
        names = [p.name for p in sysfs.iterdir()]
    except OSError:
        return []
    return sorted(int(n[len("hugepages-") : -2]) for n in names if n.startswith("hugepages-"))


def free_pages(size_kib: int, sysfs: Path = HUGEPAGES_SYSFS) -> int:
    """Free hugepages of ``size_kib`` (reserved and not in use)."""
    try:
        return int((sysfs / f"hugepages-{size_kib}kB" / "free_hugepages").read_text())
    except (OSError, ValueError):
        return 0


def check_hugepages(name: str, needs: dict[int, int], sysfs: Path = HUGEPAGES_SYSFS) -> None:
    """Refuse sizes the host lacks, and too few free pages.

    :raises UnsupportedError: page size not offered by the kernel
    :raises InvalidStateError: not enough free pages of a size
    """
    sizes = host_page_sizes(sysfs)
    for size, kib in sorted(needs.items()):
        if size not in sizes:
            raise UnsupportedError(
                f"domain '{name}' wants {size} KiB hugepages, which this host does not support",
                hint="supported sizes (KiB): " + (", ".join(map(str, sizes)) or "none"),
            )
        pages = -(-kib // size)
        free = free_pages(size, sysfs)
        if free < pages:
            raise InvalidStateError(
                f"domain '{name}' needs {pages} free {size} KiB hugepages, the host has {free}",
                hint=f"reserve more with 'allocpages {size}KiB {pages}' "
                "(or write nr_hugepages in sysfs)",
            )


def ensure_hugetlbfs(size_kib: int, mounts: Path = Path("/proc/mounts")) -> None:
    """Mount hugetlbfs with ``pagesize=size_kib`` where the argv expects it, if absent."""
    target = HUGETLBFS_DIRS.get(size_kib)
    if target is None:
        raise UnsupportedError(f"no hugetlbfs mount point known for {size_kib} KiB pages")
    for line in mounts.read_text().splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == target and parts[2] == "hugetlbfs":
            return
    Path(target).mkdir(parents=True, exist_ok=True)
    argv = ["mount", "-t", "hugetlbfs", "-o", f"pagesize={size_kib}K", "hugetlbfs", target]
    from pyvirt import hostcmd  # lazy

    hostcmd.run(argv, what=f"cannot mount hugetlbfs at {target}", timeout=10)


class TuningHook:
    """The lifecycle hook (see the module docstring)."""

    name = HOOK_NAME

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult:
        """Validate against the host and reduce the tuning elements to JSON data."""
        from pyvirt.host import threads  # lazy

        data: dict[str, Any] = {}
        needs = hugepage_needs(dom)
        if needs:
            check_hugepages(dom.name, {s: 0 for s in needs})  # sizes only; counts at launch
            data["hugepages"] = {str(s): kib for s, kib in needs.items()}
        mt = dom.memtune
        if mt is not None:
            values = {"hard": mt.hard_limit_kib, "soft": mt.soft_limit_kib,
                      "swap": mt.swap_hard_limit_kib}  # fmt: skip
            data["memtune"] = {k: v for k, v in values.items() if v is not None}
        ct = dom.cputune
        nvcpu = dom.vcpu.current or dom.vcpu.count
        if ct is not None:
            quota = ct.quota
            if quota is not None:
                quota = -1 if quota < 0 else quota * nvcpu
            cpu = {"shares": ct.shares, "period": ct.period, "quota": quota}
            data["cpu"] = {k: v for k, v in cpu.items() if v is not None}
            pins = {str(p.vcpu): p.cpuset for p in ct.vcpupins if p.cpuset}
            for cpuset in [*pins.values(), ct.emulatorpin or "0"]:
                threads.check_cpus(cpuset)
            data["vcpupin"] = pins
            if ct.emulatorpin:
                data["emulatorpin"] = ct.emulatorpin
            data["iothreadpin"] = {str(p.iothread): p.cpuset for p in ct.iothreadpins if p.cpuset}
        if dom.vcpu.cpuset:
            threads.check_cpus(dom.vcpu.cpuset)
            data["cpuset"] = dom.vcpu.cpuset
        nt = dom.numatune
        if nt is not None and nt.nodeset:
            threads.check_nodes(nt.nodeset)
            if (nt.mode or "strict") in ("strict", "restrictive"):
                data["mems"] = nt.nodeset
        return HookResult(data=data)

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Mount hugetlbfs and check free hugepages."""
        needs = {int(s): kib for s, kib in data.get("hugepages", {}).items()}
        if needs:
            check_hugepages(name, needs)
            for size in needs:
                ensure_hugetlbfs(size)

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Cgroup placement and limits, then thread pinning.

        A domain whose definition asks for no limits is not moved into a cgroup here: that
        costs ~20 ms of cgroup writes on every start. Its cgroup is made on demand by the
        first live tuning command (:func:`pyvirt.service.tuning.cpu.domain_cgroup`).
        """
        if data.get("memtune") or data.get("cpu") or data.get("mems"):
            cg = place_in_cgroup(mgr, name, pid)
            mt = data.get("memtune") or {}
            if mt:
                cg.set_memory(
                    hard_kib=mt.get("hard"), soft_kib=mt.get("soft"), swap_kib=mt.get("swap")
                )
            cpu = data.get("cpu") or {}
            if cpu:
                cg.set_cpu(
                    shares=cpu.get("shares"), period=cpu.get("period"), quota=cpu.get("quota")
                )
            if data.get("mems"):
                cg.set_mems(data["mems"])
        if any(data.get(k) for k in ("vcpupin", "emulatorpin", "cpuset", "iothreadpin")):
            _pin(mgr, name, pid, data)

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Remove the domain's cgroup (nothing to do when it is already gone)."""
        text = data.get("cgroup")
        if not isinstance(text, str):  # a domain started by an older pyvirt
            try:
                text = (mgr.paths.domain_run_dir(name) / CGROUP_FILE).read_text()
            except OSError:
                return
        from pyvirt.host.cgroups import CgroupLayout, DomainCgroup  # lazy

        DomainCgroup.from_json(CgroupLayout.detect(), text).remove()


def _pin(mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
    from pyvirt.host import threads  # lazy
    from pyvirt.service.tuning.cpu import emulator_threads, vcpu_threads  # lazy

    rec = mgr.record(name)
    if rec is None:
        return
    vcpus = vcpu_threads(rec)
    base = parse_cpuset(data["cpuset"]) if data.get("cpuset") else None
    emu = parse_cpuset(data["emulatorpin"]) if data.get("emulatorpin") else base
    if emu is not None:
        for tid in emulator_threads(rec, vcpus):
            threads.set_affinity(pid, tid, emu)
    for vcpu, tid in vcpus.items():
        pin = data.get("vcpupin", {}).get(str(vcpu))
        cpus = parse_cpuset(pin) if pin else base
        if cpus is not None:
            threads.set_affinity(pid, tid, cpus)
    if data.get("iothreadpin"):
        from pyvirt.service.tuning.cpu import monitor  # lazy

        with monitor(rec) as mon:
            for item in mon.query_iothreads():
                pin = data["iothreadpin"].get(item.id.removeprefix("iothread"))
                if pin:
                    threads.set_affinity(pid, item.thread_id, parse_cpuset(pin))


HOOK = register_hook(TuningHook())
