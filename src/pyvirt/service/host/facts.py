"""Host facts for front ends: versions, capabilities, host-validate, the KVM verdict, and the
node commands (nodeinfo, freecell, nodememstats, nodecpustats, node-memory-tune, allocpages).

Probe results are cached under the connection's cache dir (``CACHE/host/``), so only the
first call after a host boot pays for the KVM speed probe (~80 ms).

The node commands read ``/proc`` and ``/sys`` under :attr:`HostManager.host_root`: ``/``, or
``PYVIRT_HOST_ROOT`` when set (a captured host tree, e.g. ``tests/data/host/seed-2x8``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyvirt
from pyvirt.errors import InvalidConfigError
from pyvirt.host import hugepages, ksm, qemu_binaries
from pyvirt.host.capabilities import capabilities
from pyvirt.host.cpu import read_host_cpu
from pyvirt.host.cpustats import read_cpu_mhz, read_cpu_times, sample_percent
from pyvirt.host.kvm import default_domain_type, kvm_status
from pyvirt.host.memory import host_memstats, node_memstats
from pyvirt.host.numa import node_ids, read_cells
from pyvirt.host.validate import format_checks, host_validate
from pyvirt.service.tuning.advisor import read_host
from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.host.hugepages import HugePagePool
    from pyvirt.host.ksm import KsmState
    from pyvirt.host.kvm import KvmStatus
    from pyvirt.host.memory import MemStats
    from pyvirt.host.validate import Check
    from pyvirt.service.tuning.advisor import HostShape


@dataclass(frozen=True)
class Versions:
    """What ``version`` prints."""

    pyvirt: str
    qemu: str | None
    qemu_binary: str | None

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class NodeInfo:
    """What ``nodeinfo`` prints; ``sockets`` is per NUMA cell, as in libvirt."""

    cpu_model: str
    cpus: int
    mhz: int
    sockets: int
    cores_per_socket: int
    threads_per_core: int
    numa_cells: int
    memory_kib: int

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (what ``nodeinfo --json`` prints)."""
        return asdict(self)


class HostManager:
    """Read-only host information of one connection."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    @property
    def _kvm_cache(self) -> Path:
        return self.paths.cache / "host" / "kvm-probe.json"

    @property
    def _binary_cache(self) -> Path:
        return self.paths.cache / "host" / "qemu"

    def versions(self) -> Versions:
        binary = qemu_binaries.find_qemu_binaries().get("x86_64")
        if binary is None:
            return Versions(pyvirt.__version__, None, None)
        v = qemu_binaries.qemu_version(binary)
        return Versions(pyvirt.__version__, f"{v.major}.{v.minor}.{v.micro}", str(binary))

    def capabilities(self) -> str:
        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return capabilities(cache_dir=self._binary_cache, kvm_cache_path=self._kvm_cache)

    def validate(self) -> list[Check]:
        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return host_validate(kvm_cache_path=self._kvm_cache)

    @staticmethod
    def format_checks(checks: list[Check]) -> str:
        """The checks laid out like virt-host-validate's output."""
        return format_checks(checks)

    def kvm_status(self) -> KvmStatus:
        """What pyvirt knows about KVM here (the speed probe runs once per boot)."""
        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return kvm_status(cache_path=self._kvm_cache)

    def default_domain_type(self) -> str:
        """'kvm' only when /dev/kvm works and the probe measured it hardware-fast."""
        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return default_domain_type(cache_path=self._kvm_cache)

    # -- node commands (issue 5) -------------------------------------------------------
    @property
    def host_root(self) -> Path:
        """Where ``/proc`` and ``/sys`` are read: ``PYVIRT_HOST_ROOT`` or ``/``."""
        return Path(os.environ.get("PYVIRT_HOST_ROOT") or "/")

    def nodeinfo(self) -> NodeInfo:
        """CPU and memory summary of the host (virsh ``nodeinfo``)."""

        root = self.host_root
        cpu = read_host_cpu(root)
        cells = max(1, len(node_ids(root)))
        topo = cpu.topology
        return NodeInfo(
            cpu_model=cpu.arch,
            cpus=cpu.count,
            mhz=read_cpu_mhz(root),
            sockets=max(1, topo.sockets // cells),
            cores_per_socket=topo.cores * topo.dies,
            threads_per_core=topo.threads,
            numa_cells=cells,
            memory_kib=host_memstats(root).total,
        )

    def freecell(self, cell: int | None = None) -> list[tuple[int, int]]:
        """``(cell id, free KiB)`` of one cell, or of every cell when ``cell`` is ``None``.

        :raises InvalidConfigError: the cell does not exist
        """

        cells = read_cells(self.host_root)
        if cell is None:
            return [(c.id, c.free_kib) for c in cells]
        for c in cells:
            if c.id == cell:
                return [(c.id, c.free_kib)]
        raise InvalidConfigError(
            f"NUMA cell {cell} does not exist on this host",
            hint=f"use a cell between 0 and {cells[-1].id} ('freecell --all' lists them)",
        )

    def memstats(self, cell: int | None = None) -> MemStats:
        """Memory of the host or of one NUMA cell (virsh ``nodememstats``).

        :raises InvalidConfigError: the cell does not exist
        """

        if cell is None:
            return host_memstats(self.host_root)
        stats = node_memstats(self.host_root, cell)
        if stats is None:
            raise InvalidConfigError(
                f"NUMA cell {cell} does not exist on this host",
                hint="list the cells with 'freecell --all'",
            )
        return stats

    def cpustats(self, cpu: int | None = None, *, percent: bool = False) -> dict[str, float]:
        """CPU times in ns, or percentages over one second (virsh ``nodecpustats``).

        :raises InvalidConfigError: the CPU does not exist
        """
        if percent:
            return sample_percent(self.host_root, cpu)
        return {k: float(v) for k, v in asdict(read_cpu_times(self.host_root, cpu)).items()}

    def memory_tune(self, params: Mapping[str, int] | None = None) -> KsmState:
        """Read, and with ``params`` set, the KSM settings (virsh ``node-memory-tune``).

        :param params: sysfs names (``pages_to_scan``, ``sleep_millisecs``,
            ``merge_across_nodes``, ``run``) to values
        :raises UnsupportedError: the kernel has no KSM
        :raises OperationFailedError: the kernel refused a value
        """
        if params:
            return ksm.set_params(self.host_root, params)
        return ksm.read_state(self.host_root)

    def allocpages(
        self,
        page_size: str,
        count: int,
        *,
        cell: int | None = None,
        all_cells: bool = False,
        add: bool = False,
    ) -> list[HugePagePool]:
        """Reserve hugepages of ``page_size`` (virsh ``allocpages``), verified by reading back.

        ``cell`` targets one NUMA node, ``all_cells`` each node; otherwise the system-wide
        pool (the kernel spreads pages over nodes). ``add`` grows the pool by ``count``.

        :raises InvalidConfigError: bad size, count or cell
        :raises UnsupportedError: page size the host lacks
        :raises OperationFailedError: the kernel reserved fewer pages than asked
        """

        if count < 0:
            raise InvalidConfigError(f"page count {count} is negative")
        size = hugepages.parse_page_size(page_size)
        root = self.host_root
        hugepages.check_size(root, size)
        nodes = node_ids(root)
        if cell is not None and cell not in nodes:
            raise InvalidConfigError(
                f"NUMA cell {cell} does not exist on this host",
                hint="list the cells with 'freecell --all'",
            )
        targets: list[int | None] = [cell] if cell is not None else [None]
        if all_cells:
            targets = list(nodes) or [None]
        return [hugepages.allocate(root, size, count, node=n, add=add) for n in targets]

    def shape(self) -> HostShape:
        """The host's sockets, cores and NUMA nodes, for the advisor and the planner."""
        return read_host(self.host_root)
