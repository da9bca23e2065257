"""Domain tuning verbs: vCPUs, pinning, scheduler, NUMA and memory (virsh's ``setvcpus``,
``vcpupin``, ``schedinfo``, ``numatune``, ``setmem``, ``memtune``, ...).

Verbs that change something take keyword-only ``live`` and ``config``; both False is
libvirt's "current" (the running domain if it runs, else the definition). Sizes are KiB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    from pyvirt.api.domain_values import IOThreadInfo, MemTune, NumaTune, VcpuCount, VcpuInfo
    from pyvirt.service.domain.manager import DomainManager

__all__ = [
    "DomainTuning",
    "IOThreadInfo",
    "MemTune",
    "NumaTune",
    "VcpuCount",
    "VcpuInfo",
    "format_cpulist",
    "host_cpu_count",
]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the tuning code loads
# host probes, cgroups and QMP (~45 ms) that non-tuning commands do not need.


def __getattr__(name: str) -> Any:
    """Re-export the value types of :mod:`pyvirt.api.domain_values` (created on first use)."""
    if name in ("VcpuCount", "VcpuInfo", "IOThreadInfo", "NumaTune", "MemTune"):
        from pyvirt.api import domain_values  # lazy

        return getattr(domain_values, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def host_cpu_count() -> int:
    """Host CPU slots (the highest online CPU number + 1), the width of an affinity map."""
    from pyvirt.host.threads import host_cpus  # lazy

    return max(host_cpus()) + 1


def format_cpulist(cpus: Iterable[int]) -> str:
    """``{0, 1, 2, 5}`` -> ``0-2,5`` (virsh's way of writing an affinity)."""
    from pyvirt.model.cpuset import format_cpuset  # lazy

    return format_cpuset(cpus)


class DomainTuning(DomainHandle):
    """vCPU, scheduler, NUMA and memory verbs of :class:`~pyvirt.api.domains.Domain`."""

    # -- vCPUs --------------------------------------------------------------------------
    def set_vcpus(
        self, count: int, *, maximum: bool = False, live: bool = False, config: bool = False
    ) -> None:
        """Change the vCPU count (``setvcpus``; live: CPU hotplug).

        :param maximum: change the most vCPUs it may get (definition only)
        :raises InvalidConfigError: a count out of range
        :raises UnsupportedError: ``maximum`` live, or unplugging vCPUs present at boot
        """
        from pyvirt.service.tuning import cpu  # lazy

        cpu.set_vcpus(self._domains, self._name, count, maximum=maximum, live=live, config=config)

    def vcpu_count(self) -> VcpuCount:
        """Maximum and current vCPU counts of the definition and the running domain."""
        from pyvirt.api.domain_values import VcpuCount  # lazy
        from pyvirt.service.tuning import cpu  # lazy

        counts = cpu.vcpu_count(self._domains, self._name)
        mx, cur = counts["maximum"], counts["current"]
        return VcpuCount(mx.get("config"), mx.get("live"), cur.get("config"), cur.get("live"))

    def vcpu_info(self) -> list[VcpuInfo]:
        """Per vCPU of the running domain: host CPU, state, CPU time, affinity."""
        from pyvirt.api.domain_values import VcpuInfo  # lazy
        from pyvirt.service.tuning import cpu  # lazy

        return [
            VcpuInfo(
                vcpu=int(i["vcpu"]),
                thread=int(i["thread"]),
                cpu=int(i["cpu"]),
                state=str(i["state"]),
                cpu_time=float(i["cpu_time"]),
                affinity=frozenset(i["affinity"]),
            )
            for i in cpu.vcpu_info(self._domains, self._name)
        ]

    def pin_vcpu(
        self, vcpu: int, cpulist: str, *, live: bool = False, config: bool = False
    ) -> dict[int, frozenset[int]]:
        """Let vCPU ``vcpu`` run only on the host CPUs ``cpulist`` (``vcpupin``).

        :returns: every vCPU's affinity after the change
        """
        from pyvirt.service.tuning import cpu  # lazy

        pins = cpu.vcpu_pin(self._domains, self._name, vcpu, cpulist, live=live, config=config)
        return {v: frozenset(c) for v, c in pins.items()}

    def vcpu_pins(
        self, vcpu: int | None = None, *, live: bool = False, config: bool = False
    ) -> dict[int, frozenset[int]]:
        """The host CPUs each vCPU (or just ``vcpu``) may run on."""
        from pyvirt.service.tuning import cpu  # lazy

        pins = cpu.vcpu_pin(self._domains, self._name, vcpu, None, live=live, config=config)
        return {v: frozenset(c) for v, c in pins.items()}

    def pin_emulator(
        self, cpulist: str, *, live: bool = False, config: bool = False
    ) -> frozenset[int]:
        """Let the emulator threads (all but the vCPUs) run only on ``cpulist`` (``emulatorpin``).

        :returns: their affinity after the change
        """
        from pyvirt.service.tuning import cpu  # lazy

        return frozenset(
            cpu.emulator_pin(self._domains, self._name, cpulist, live=live, config=config)
        )

    def emulator_affinity(self, *, live: bool = False, config: bool = False) -> frozenset[int]:
        """The host CPUs the emulator threads may run on."""
        from pyvirt.service.tuning import cpu  # lazy

        return frozenset(
            cpu.emulator_pin(self._domains, self._name, None, live=live, config=config)
        )

    def iothread_info(self) -> list[IOThreadInfo]:
        """The running domain's I/O threads and their affinity (``iothreadinfo``)."""
        from pyvirt.api.domain_values import IOThreadInfo  # lazy
        from pyvirt.service.tuning import cpu  # lazy

        return [
            IOThreadInfo(id=i["id"], thread=int(i["thread"]), affinity=frozenset(i["affinity"]))
            for i in cpu.iothread_info(self._domains, self._name)
        ]

    # -- scheduler and NUMA -------------------------------------------------------------
    def sched_info(self, *, live: bool = False, config: bool = False) -> dict[str, int]:
        """``cpu_shares``, ``vcpu_period``/``vcpu_quota`` and ``global_period``/
        ``global_quota`` (µs; quota -1: no limit) (``schedinfo``)."""
        from pyvirt.service.tuning import cpu  # lazy

        return cpu.sched_info(self._domains, self._name, None, live=live, config=config)

    def set_sched_params(
        self, params: Mapping[str, int], *, live: bool = False, config: bool = False
    ) -> dict[str, int]:
        """Set scheduler parameters (names as :meth:`sched_info`); returns the new values.

        :raises InvalidConfigError: an unknown parameter
        """
        from pyvirt.service.tuning import cpu  # lazy

        return cpu.sched_info(self._domains, self._name, dict(params), live=live, config=config)

    def numa_tune(self, *, live: bool = False, config: bool = False) -> NumaTune:
        """The NUMA memory policy (``numatune``)."""
        return self.set_numa_tune(live=live, config=config)

    def set_numa_tune(
        self,
        mode: str | None = None,
        nodeset: str | None = None,
        *,
        live: bool = False,
        config: bool = False,
    ) -> NumaTune:
        """Set the NUMA mode and/or host nodes; returns the policy after the change.

        :raises UnsupportedError: a new mode while it runs (only the nodeset changes live)
        """
        from pyvirt.api.domain_values import NumaTune  # lazy
        from pyvirt.service.tuning import cpu  # lazy

        values = cpu.numa_tune(self._domains, self._name, mode, nodeset, live=live, config=config)
        return NumaTune(values["numa_mode"], values["numa_nodeset"])

    # -- memory -------------------------------------------------------------------------
    def set_memory(self, kib: int, *, live: bool = False, config: bool = False) -> None:
        """Set the current memory (``setmem``; live: through the balloon).

        :raises InvalidConfigError: zero or above the maximum memory
        """
        from pyvirt.service.tuning import memory  # lazy

        memory.set_mem(self._domains, self._name, kib, live=live, config=config)

    def set_max_memory(self, kib: int, *, live: bool = False, config: bool = False) -> None:
        """Set the maximum memory (``setmaxmem``; definition only).

        :raises UnsupportedError: live
        """
        from pyvirt.service.tuning import memory  # lazy

        memory.set_max_mem(self._domains, self._name, kib, live=live, config=config)

    def memory_stats(self) -> dict[str, int]:
        """Balloon statistics of the running domain in KiB (``dommemstat``)."""
        from pyvirt.service.tuning import memory  # lazy

        return memory.mem_stats(self._domains, self._name)

    def set_memory_stats_period(
        self, seconds: int, *, live: bool = False, config: bool = False
    ) -> None:
        """How often the guest reports balloon statistics (0: never)."""
        from pyvirt.service.tuning import memory  # lazy

        memory.set_stats_period(self._domains, self._name, seconds, live=live, config=config)

    def memory_tune(self, *, live: bool = False, config: bool = False) -> MemTune:
        """The memory limits (``memtune``)."""
        return self.set_memory_tune(live=live, config=config)

    def set_memory_tune(
        self,
        *,
        hard_limit: int | None = None,
        soft_limit: int | None = None,
        swap_hard_limit: int | None = None,
        live: bool = False,
        config: bool = False,
    ) -> MemTune:
        """Set memory limits in KiB (-1 removes one; None leaves it); returns the limits.

        :raises InvalidConfigError: a zero limit, or swap below the hard limit
        """
        from pyvirt.api.domain_values import MemTune  # lazy
        from pyvirt.service.tuning import memory  # lazy

        values = memory.mem_tune(
            self._domains,
            self._name,
            hard_kib=hard_limit,
            soft_kib=soft_limit,
            swap_kib=swap_hard_limit,
            live=live,
            config=config,
        )
        return MemTune(values["hard_limit"], values["soft_limit"], values["swap_hard_limit"])

    # -- disks --------------------------------------------------------------------------
    def resize_disk(self, target: str, size: int) -> int:
        """Grow disk ``target`` to ``size`` bytes: ``block_resize`` while the domain runs (the
        guest sees the new size at once), ``qemu-img resize`` of its image while it is shut
        off. Returns the new size (rounded up to 512).

        :raises InvalidConfigError: the size would shrink the disk
        :raises UnsupportedError: a shut-off domain's disk that is not an image file
        :raises NotFoundError: no such disk
        """
        from pyvirt.service.disk import info  # lazy

        mgr = self._domains
        name = mgr.resolve(self._name)
        if mgr.live_record(name, cleanup=False) is not None:
            return info.blockresize(mgr, name, target, size)
        with mgr.locked(name):
            if mgr.live_record(name, cleanup=False) is not None:  # it started meanwhile
                raise _started(name)
            return _resize_offline(mgr, name, target, size)


def _started(name: str) -> Exception:
    from pyvirt.errors import InvalidStateError  # lazy

    return InvalidStateError(f"domain '{name}' started during the resize", hint="try again")


def _resize_offline(mgr: DomainManager, name: str, target: str, size: int) -> int:
    """``qemu-img resize`` of a shut-off domain's disk image (file or pool volume)."""
    from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError  # lazy
    from pyvirt.model.limits import check_volume_bytes  # lazy
    from pyvirt.service.disk.attach import find_disk  # lazy
    from pyvirt.service.disk.hooks import resolve_volume  # lazy
    from pyvirt.storage import qemu_img  # lazy

    dom = mgr.definition(name, inactive=True)
    disk = find_disk(dom, target)
    if disk is None:
        raise NotFoundError(
            f"domain '{name}' has no disk '{target}'", hint="list its disks with 'domblklist'"
        )
    path = disk.source_path if disk.type == "file" else None
    if disk.type == "volume":
        src = resolve_volume(mgr, disk)
        path = src.path if src.kind == "file" else None
    if not path or disk.device != "disk":
        raise UnsupportedError(
            f"disk '{disk.target_dev}' is not an image file: it cannot be resized here",
            hint="resize its volume with 'vol-resize', or start the domain and use 'blockresize'",
        )
    if disk.readonly:
        raise InvalidConfigError(f"disk '{disk.target_dev}' is read-only")
    size = (size + 511) // 512 * 512
    check_volume_bytes(size, what=f"disk '{disk.target_dev}' size")
    fmt = disk.format or "raw"
    current = int(qemu_img.info(path, fmt).get("virtual-size", 0))
    if size < current:
        raise InvalidConfigError(
            f"disk '{disk.target_dev}': {size} bytes is smaller than its current size "
            f"{current}; shrinking would destroy data",
            hint="give a size at least as large as the current one",
        )
    if size > current:
        qemu_img.resize(path, fmt, size)
    return size
