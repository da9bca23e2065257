"""The host (``conn.host``): versions, capabilities, ``host-validate``, the KVM verdict, the
node commands (``nodeinfo``, ``freecell``, ``nodememstats``, ``nodecpustats``,
``node-memory-tune``, ``allocpages``), NUMA advice, the capacity planner (``pyvirt plan``),
guest images (``pyvirt image``) and benchmarks (``pyvirt bench``).

>>> conn.host.nodeinfo().cpus
8
>>> conn.host.default_domain_type()
'qemu'

``/proc`` and ``/sys`` are read under ``$PYVIRT_HOST_ROOT`` when set (a captured host tree).
Results are typed values with ``to_json()``; some are re-exported from the layers below.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.api.host_cpu import HostCpuMixin
from pyvirt.service.host.facts import NodeInfo, Versions

if TYPE_CHECKING:
    from pyvirt.host.hugepages import HugePagePool
    from pyvirt.host.ksm import KsmState
    from pyvirt.host.memory import MemStats
    from pyvirt.host.validate import Check
    from pyvirt.netbench.scenarios import Result as NetBenchResult
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.disk.bench import Cell as DiskBenchCell
    from pyvirt.service.host.facts import HostManager
    from pyvirt.service.tuning.advisor import Advice, HostShape
    from pyvirt.service.tuning.planner import Plan

__all__ = [
    "BuiltImage",
    "CellMemory",
    "DiskBenchReport",
    "Host",
    "ImageInfo",
    "KvmVerdict",
    "NetBenchReport",
    "NodeInfo",
    "NumaAdvice",
    "Versions",
    "format_page_size",
]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: host probes, planners,
# image builders and benchmarks load only for the verb that uses them.


def format_page_size(size_kib: int) -> str:
    """A hugepage size for humans: ``2048`` -> ``2M``, ``1048576`` -> ``1G``."""
    from pyvirt.host.hugepages import format_page_size as fmt  # lazy

    return fmt(size_kib)


@dataclass(frozen=True)
class CellMemory:
    """Free memory of one NUMA cell (``freecell``)."""

    cell: int
    free_kib: int

    def to_json(self) -> dict[str, int]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class KvmVerdict:
    """Whether new domains should use KVM here, and why (``host-validate``'s KVM lines).

    :ivar verdict: ``fast`` (use KVM), ``slow`` (runs guests, but too slowly) or ``absent``
    :ivar usable: a guest actually ran under KVM
    :ivar slowdown: how many times slower than typical hardware, when measured
    """

    verdict: str
    usable: bool
    reason: str
    slowdown: float | None = None

    @property
    def fast(self) -> bool:
        """True when new domains should be ``type='kvm'``."""
        return self.verdict == "fast"

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {**asdict(self), "fast": self.fast}


@dataclass(frozen=True)
class NumaAdvice:
    """``numa-advise``: the findings about one domain (empty: nothing to fix)."""

    domain: str
    advice: tuple[Advice, ...]

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"domain": self.domain, "advice": [a.to_json() for a in self.advice]}


@dataclass(frozen=True)
class BuiltImage:
    """A guest image ``pyvirt image build`` made (``disk``/``domain_xml``: debian only)."""

    kind: str
    kernel: Path
    initrd: Path
    disk: Path | None = None
    domain_xml: Path | None = None

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (paths as strings)."""
        return {k: None if v is None else str(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class ImageInfo:
    """A built image found in the caches (``pyvirt image list``).

    :ivar disk_size: the virtual disk size in bytes (``None``: no disk, a kernel + initramfs)
    :ivar used: bytes the image's files take
    """

    kind: str
    directory: str
    disk_size: int | None
    used: int

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class DiskBenchReport:
    """``pyvirt bench disk``: one measurement per cache mode x image format.

    :ivar seconds: wall time of the whole run
    """

    method: str
    directory: Path
    filesystem: str
    seconds: float
    cells: tuple[DiskBenchCell, ...] = field(default=())

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (``bench disk --json``)."""
        return {
            "method": self.method,
            "directory": str(self.directory),
            "filesystem": self.filesystem,
            "seconds": round(self.seconds, 1),
            "cells": [asdict(c) for c in self.cells],
        }


@dataclass(frozen=True)
class NetBenchReport:
    """``pyvirt bench net``: throughput of the seed's scenarios and the host baseline.

    :ivar seconds: length of each iperf3 run
    :ivar baseline_mbits: host-to-host throughput (``None`` when skipped)
    """

    seconds: int
    baseline_mbits: float | None
    results: tuple[NetBenchResult, ...]

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (``bench net --json``)."""
        from pyvirt.netbench.report import rows  # lazy

        return {
            "seconds": self.seconds,
            "baseline_mbits": self.baseline_mbits,
            "scenarios": rows(list(self.results), self.baseline_mbits),
        }

    def table(self) -> str:
        """The human-readable comparison table."""
        from pyvirt.netbench.report import table  # lazy

        return table(list(self.results), self.baseline_mbits, self.seconds)


class Host(HostCpuMixin):
    """``conn.host``: facts and tuning of the host the connection manages (the CPU model
    methods come from :class:`~pyvirt.api.host_cpu.HostCpuMixin`)."""

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    @property
    def _mgr(self) -> HostManager:
        return self._service.host

    # -- facts ------------------------------------------------------------------------------
    def versions(self) -> Versions:
        """``version``: pyvirt's version and QEMU's (``None`` when QEMU is not installed)."""
        return self._mgr.versions()

    def capabilities(self) -> str:
        """``capabilities``: the host's capabilities as libvirt's XML."""
        return self._mgr.capabilities()

    def validate(self) -> list[Check]:
        """``host-validate``: can this host run virtual machines? One check per line."""
        return self._mgr.validate()

    @staticmethod
    def format_checks(checks: Sequence[Check]) -> str:
        """The checks laid out like virt-host-validate's output."""
        from pyvirt.host.validate import format_checks  # lazy

        return format_checks(checks)

    def kvm_verdict(self) -> KvmVerdict:
        """Whether KVM is present and fast (the speed probe runs once per host boot)."""
        st = self._mgr.kvm_status()
        return KvmVerdict(st.verdict, st.usable, st.reason, st.slowdown)

    def default_domain_type(self) -> str:
        """``'kvm'`` when KVM works and is hardware-fast here, else ``'qemu'`` (TCG)."""
        return self._mgr.default_domain_type()

    # -- node commands ---------------------------------------------------------------------
    def nodeinfo(self) -> NodeInfo:
        """``nodeinfo``: CPUs, sockets, NUMA cells and memory."""
        return self._mgr.nodeinfo()

    def freecell(self, cell: int | None = None) -> list[CellMemory]:
        """``freecell``: free memory of one NUMA cell, or of each when ``cell`` is ``None``.

        :raises InvalidConfigError: no such cell
        """
        return [CellMemory(c, free) for c, free in self._mgr.freecell(cell)]

    def memstats(self, cell: int | None = None) -> MemStats:
        """``nodememstats``: memory of the host or of one NUMA cell, in KiB.

        :raises InvalidConfigError: no such cell
        """
        return self._mgr.memstats(cell)

    def cpustats(self, cpu: int | None = None, *, percent: bool = False) -> dict[str, float]:
        """``nodecpustats``: CPU times in ns, or percentages over one second.

        :raises InvalidConfigError: no such CPU
        """
        return self._mgr.cpustats(cpu, percent=percent)

    def memory_tune(
        self,
        *,
        pages_to_scan: int | None = None,
        sleep_millisecs: int | None = None,
        merge_across_nodes: int | None = None,
        run: int | None = None,
    ) -> KsmState:
        """``node-memory-tune``: the KSM settings and counters, after setting those given.

        :param run: 0 stop, 1 run, 2 stop and unmerge every page
        :raises UnsupportedError: the kernel has no KSM
        :raises OperationFailedError: the kernel refused a value
        """
        wanted = {
            "pages_to_scan": pages_to_scan,
            "sleep_millisecs": sleep_millisecs,
            "merge_across_nodes": merge_across_nodes,
            "run": run,
        }
        return self._mgr.memory_tune({k: v for k, v in wanted.items() if v is not None})

    def allocpages(
        self,
        count: int,
        page_size: str | None = None,
        *,
        cell: int | None = None,
        all_cells: bool = False,
        add: bool = False,
    ) -> list[HugePagePool]:
        """``allocpages``: reserve ``count`` hugepages (``add``: ``count`` more), checked by
        reading back; on one cell, on each cell (``all_cells``) or host-wide.

        :param page_size: ``2M``, ``1G``, ``2048`` (KiB)...; ``None`` the kernel's default
        :raises InvalidConfigError: bad size, count or cell
        :raises UnsupportedError: a page size the host lacks
        :raises OperationFailedError: the kernel reserved fewer pages than asked
        """
        if page_size is None:
            from pyvirt.host.hugepages import default_page_size  # lazy

            page_size = f"{default_page_size(self._mgr.host_root) or 2048}K"
        return self._mgr.allocpages(page_size, count, cell=cell, all_cells=all_cells, add=add)

    def shape(self) -> HostShape:
        """Sockets, cores, threads and NUMA nodes (what the advisor and the planner use)."""
        return self._mgr.shape()

    def numa_advice(self, domain: str) -> NumaAdvice:
        """``numa-advise``: a domain's vCPUs, memory and topology against the host's NUMA
        layout.

        :raises NotFoundError: no such domain
        """
        from pyvirt.service.tuning.advisor import advise_domain  # lazy

        name, found = advise_domain(self._service.domains, domain, self.shape())
        return NumaAdvice(name, tuple(found))

    def plan(
        self,
        workloads: Sequence[str] = (),
        *,
        workloads_text: str | None = None,
        host_description: str | None = None,
        reserve: str | None = None,
    ) -> Plan:
        """``pyvirt plan``: VM sizes, NUMA placement and disk choices for a set of workloads.

        :param workloads: ``name=mail,count=4[,vcpus=4,memory=32G],disk=mail`` each
        :param workloads_text: a workloads file's text (JSON list, or one spec per line)
        :param host_description: a host description (JSON or ``key=value``) instead of this
            host
        :param reserve: memory kept for the host on each node (``4G``)
        :raises InvalidConfigError: a bad workload, host description or size
        """
        from pyvirt.service.tuning import planner  # lazy

        host = planner.parse_host(host_description) if host_description else self.shape()
        wanted = [planner.parse_workload(w) for w in workloads]
        if workloads_text:
            wanted += planner.parse_workloads_file(workloads_text)
        reserve_kib = planner.parse_size_kib(reserve, "reserve") if reserve else 0
        return planner.make_plan(host, wanted, reserve_kib=reserve_kib)

    # -- images --------------------------------------------------------------------------
    def build_tiny_image(self, output: Path | None = None, *, force: bool = False) -> BuiltImage:
        """``image build tiny``: a kernel + busybox initramfs from Debian packages (cached;
        built into ``output`` when given)."""
        from pyvirt.images import tiny  # lazy

        img = tiny.build(output, force=force) if output else tiny.default_image()
        return BuiltImage("tiny", img.kernel, img.initrd)

    def build_net_image(self, output: Path | None = None) -> BuiltImage:
        """``image build tiny-net``: the tiny image plus iperf3."""
        from pyvirt.images import net, tiny  # lazy

        base = tiny.default_image()
        img = net.build(base, output) if output else net.default_image(base=base)
        return BuiltImage("tiny-net", img.kernel, img.initrd)

    def build_debian_image(
        self,
        output: Path | None = None,
        *,
        force: bool = False,
        size: int | None = None,
        suite: str | None = None,
        mirror: str | None = None,
        hostname: str | None = None,
        root_password: str | None = None,
        ssh_key: str | None = None,
        extra_packages: Sequence[str] = (),
    ) -> BuiltImage:
        """``image build debian``: debootstrapped Debian with systemd and qemu-guest-agent
        in a qcow2 (``ssh_key``: a public key for root; ``None`` values: the defaults).

        :raises InvalidConfigError: a bad suite, host name, size or package name
        """
        from pyvirt.images import debian_image as deb  # lazy

        recipe = deb.Recipe(
            suite=suite if suite is not None else deb.DEFAULT_SUITE,
            mirror=mirror or deb.DEFAULT_MIRROR,
            size=size if size is not None else deb.DEFAULT_SIZE,
            hostname=hostname or deb.DEFAULT_HOSTNAME,
            root_password=root_password,
            ssh_key=ssh_key,
            extra_packages=tuple(extra_packages),
        )
        img = deb.build(recipe, output, force=force)
        return BuiltImage("debian", img.kernel, img.initrd, img.disk, img.domain_xml)

    def images(self) -> list[ImageInfo]:
        """``image list``: the tiny and Debian images built so far."""
        from pyvirt.images import debian_image, tiny  # lazy

        out: list[ImageInfo] = []
        cache = tiny.default_cache_dir()
        found = sorted(p.parent for p in cache.glob("*/manifest.json")) if cache.is_dir() else []
        for directory in found:
            used = sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
            out.append(ImageInfo("tiny", str(directory), None, used))
        for img in debian_image.built_images():
            size = int(str(img.manifest.get("size", 0)))
            used = sum(f.stat().st_blocks * 512 for f in img.directory.iterdir() if f.is_file())
            out.append(ImageInfo("debian", str(img.directory), size, used))
        return out

    # -- benchmarks ------------------------------------------------------------------------
    def bench_disk(
        self,
        target: str,
        *,
        caches: Sequence[str] = (),
        formats: Sequence[str] = (),
        aio: str = "threads",
        block: int = 4096,
        depth: int = 8,
        seconds: float = 1.0,
    ) -> DiskBenchReport:
        """``bench disk``: ``qemu-img bench`` of each cache mode x format in the directory of
        ``target`` (a domain's first file disk, an image, or a directory).

        :param caches: cache modes (all when empty); ``formats``: raw, qcow2, qcow2-prealloc
        :param seconds: target time of each measurement
        :raises NotFoundError: ``target`` is neither a path nor a domain with a file disk
        :raises InvalidConfigError: unknown cache mode or format, bad block size
        """
        from pyvirt.service.disk import bench as disk_bench  # lazy

        directory = disk_bench.bench_dir(self._service.domains, target)
        t0 = time.monotonic()
        cells = disk_bench.run(
            directory,
            caches=tuple(caches) or disk_bench.CACHE_MODES,
            formats=tuple(formats) or tuple(disk_bench.FORMATS),
            aio=aio,
            block=block,
            depth=depth,
            target=seconds,
        )
        took = time.monotonic() - t0
        return DiskBenchReport(
            disk_bench.METHOD, directory, disk_bench.filesystem(directory), took, tuple(cells)
        )

    def bench_net(
        self,
        *,
        seconds: int = 3,
        scenarios: Sequence[int] = (1, 2, 3, 4),
        baseline: bool = True,
        cache_dir: Path | None = None,
    ) -> NetBenchReport:
        """``bench net``: guest-to-guest iperf3 throughput in the seed's four scenarios, in
        network namespaces (root).

        :raises UnsupportedError: not root, or ip/iperf3 missing
        :raises OperationFailedError: a scenario did not finish
        """
        from pyvirt.service.network import bench as netbench  # lazy

        results, base = netbench.run(
            seconds=seconds, numbers=tuple(scenarios), baseline=baseline, cache_dir=cache_dir
        )
        return NetBenchReport(seconds, base, tuple(results))
