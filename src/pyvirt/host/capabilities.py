"""A libvirt-style ``<capabilities>`` document for this host (``pyvirt capabilities``).

The ``<host>`` part carries the host UUID, the CPU (arch, a guessed model, vendor, microcode,
topology, features; ``ept``/``npt`` from ``/proc/cpuinfo``'s ``vmx flags`` line too), the page
sizes, IOMMU support and the NUMA ``<topology><cells>`` (memory, free memory as the pyvirt
extension ``<freememory>``, pages per size, distances and CPUs per cell, from sysfs); power
management, security models and migration transports are omitted for now. There is one
``<guest>`` per installed ``qemu-system-ARCH`` with its emulator path and machine list
(aliases carry ``canonical='...'``), ``<domain type='qemu'/>`` always and
``<domain type='kvm'/>`` when KVM runs guests and the guest arch is the host's own.

:func:`build_capabilities` is pure (facts in, XML string out) and is what unit tests check;
:func:`capabilities` gathers the facts from the host first. lxml builds the tree.

The KVM domain type is listed when KVM is *usable* (a guest ran), as libvirt does, even when
the probe found it slow: choosing KVM by default is :func:`pyvirt.host.kvm.default_domain_type`'s
job, and ``host-validate`` explains a slow KVM.
"""

from __future__ import annotations

import contextlib
import re
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from pyvirt.host.cpu import HostCpu, guess_model, read_host_cpu
from pyvirt.host.kvm import KvmStatus, kvm_status
from pyvirt.host.numa import NumaCell, read_cells
from pyvirt.host.qemu_binaries import (
    QemuBinary,
    find_qemu_binaries,
    libvirt_arch,
    probe_binary,
    wordsize,
)
from pyvirt.model.xmltree import to_string

# QEMU targets a host of a given arch can run under KVM.
_KVM_TARGETS = {
    "x86_64": frozenset({"x86_64", "i386"}),
    "i686": frozenset({"i386"}),
    "aarch64": frozenset({"aarch64"}),
    "ppc64le": frozenset({"ppc64"}),
    "s390x": frozenset({"s390x"}),
}
_PLACEHOLDER_UUIDS = frozenset(
    {"00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"}
)
_UUID_NAMESPACE = uuid.UUID("8a4f0d76-29f5-4a3c-9d70-1f2b3c4d5e6f")


def read_host_uuid(root: Path = Path("/")) -> str:
    """The host UUID: SMBIOS (DMI) ``product_uuid`` when real, else ``/etc/machine-id``.

    Falls back to a UUID derived from the host name so the answer is always stable.

    :param root: filesystem root holding ``sys/class/dmi`` and ``etc/machine-id``
    """
    try:
        dmi = (root / "sys/class/dmi/id/product_uuid").read_text().strip().lower()
        if str(uuid.UUID(dmi)) not in _PLACEHOLDER_UUIDS:
            return str(uuid.UUID(dmi))
    except (OSError, ValueError):
        pass
    for name in ("etc/machine-id", "var/lib/dbus/machine-id"):
        try:
            text = (root / name).read_text().strip()
        except OSError:
            continue
        if re.fullmatch(r"[0-9a-fA-F]{32}", text):
            return str(uuid.UUID(hex=text))
    return str(uuid.uuid5(_UUID_NAMESPACE, socket.gethostname()))


def read_page_sizes_kib(root: Path = Path("/")) -> list[int]:
    """Base page size (4 KiB on x86) followed by the hugepage sizes the kernel offers."""
    sizes = [4]
    try:
        for entry in (root / "sys/kernel/mm/hugepages").iterdir():
            match = re.fullmatch(r"hugepages-(\d+)kB", entry.name)
            if match:
                sizes.append(int(match.group(1)))
    except OSError:
        pass
    return sorted(set(sizes))


def has_iommu(root: Path = Path("/")) -> bool:
    """Whether the kernel created IOMMU groups (needed for VFIO device assignment)."""
    try:
        return any((root / "sys/kernel/iommu_groups").iterdir())
    except OSError:
        return False


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _host_element(
    root_el: etree._Element,
    host_uuid: str,
    cpu: HostCpu,
    page_sizes_kib: Sequence[int],
    iommu: bool,
) -> None:
    host = _sub(root_el, "host")
    _sub(host, "uuid", host_uuid)
    cpu_el = _sub(host, "cpu")
    _sub(cpu_el, "arch", cpu.arch)
    model = guess_model(cpu)
    if model:
        _sub(cpu_el, "model", model)
    if cpu.vendor:
        _sub(cpu_el, "vendor", cpu.vendor)
    if cpu.microcode:
        with contextlib.suppress(ValueError):
            _sub(cpu_el, "microcode", version=str(int(cpu.microcode, 0)))
    topo = cpu.topology
    _sub(
        cpu_el,
        "topology",
        sockets=str(topo.sockets),
        dies=str(topo.dies),
        cores=str(topo.cores),
        threads=str(topo.threads),
    )
    for name in sorted({*cpu.feature_names(), *([cpu.mmu_virt] if cpu.mmu_virt else [])}):
        _sub(cpu_el, "feature", name=name)
    for size in page_sizes_kib:
        _sub(cpu_el, "pages", unit="KiB", size=str(size))
    _sub(host, "iommu", support="yes" if iommu else "no")


def _cells_element(host: etree._Element, cells: Sequence[NumaCell]) -> None:
    """``<topology><cells>``: one ``<cell>`` per host NUMA node, as libvirt lays it out."""
    topo = _sub(host, "topology")
    cells_el = _sub(topo, "cells", num=str(len(cells)))
    for cell in cells:
        cell_el = _sub(cells_el, "cell", id=str(cell.id))
        _sub(cell_el, "memory", str(cell.memory_kib), unit="KiB")
        _sub(cell_el, "freememory", str(cell.free_kib), unit="KiB")
        huge_kib = sum(p.size_kib * p.total for p in cell.pages)
        _sub(cell_el, "pages", str(max(0, cell.memory_kib - huge_kib) // 4), unit="KiB", size="4")
        for pool in cell.pages:
            _sub(cell_el, "pages", str(pool.total), unit="KiB", size=str(pool.size_kib))
        if cell.distances:
            dist = _sub(cell_el, "distances")
            for other, value in sorted(cell.distances.items()):
                _sub(dist, "sibling", id=str(other), value=str(value))
        cpus_el = _sub(cell_el, "cpus", num=str(len(cell.cpus)))
        for c in cell.cpus:
            attrs = {"id": str(c.id)}
            ids: tuple[tuple[str, int | None], ...] = (
                ("socket_id", c.socket_id),
                ("die_id", c.die_id),
                ("core_id", c.core_id),
            )
            for key, ident in ids:
                if ident is not None:
                    attrs[key] = str(ident)
            attrs["siblings"] = ",".join(str(s) for s in c.siblings) or str(c.id)
            _sub(cpus_el, "cpu", **attrs)


def _guest_element(
    root_el: etree._Element, binary: QemuBinary, host_arch: str, kvm_usable: bool
) -> None:
    guest = _sub(root_el, "guest")
    _sub(guest, "os_type", "hvm")
    arch = _sub(guest, "arch", name=libvirt_arch(binary.arch))
    _sub(arch, "wordsize", str(wordsize(binary.arch)))
    _sub(arch, "emulator", binary.path)
    for machine in binary.machines:
        attrs: dict[str, str] = {}
        if machine.alias_of:
            attrs["canonical"] = machine.alias_of
        if machine.deprecated:
            attrs["deprecated"] = "yes"
        _sub(arch, "machine", machine.name, **attrs)
    _sub(arch, "domain", type="qemu")
    native = binary.arch in _KVM_TARGETS.get(host_arch, frozenset())
    if kvm_usable and native and "kvm" in binary.accelerators:
        _sub(arch, "domain", type="kvm")
    features = _sub(guest, "features")
    if binary.arch in ("x86_64", "i386"):
        _sub(features, "acpi", default="on", toggle="yes")
        _sub(features, "apic", default="on", toggle="no")
        if binary.arch == "i386":
            _sub(features, "pae")
            _sub(features, "nonpae")
    _sub(features, "cpuselection")
    _sub(features, "deviceboot")
    _sub(features, "disksnapshot", default="on", toggle="no")


def build_capabilities(
    *,
    host_uuid: str,
    cpu: HostCpu,
    binaries: Sequence[QemuBinary],
    kvm_usable: bool,
    page_sizes_kib: Sequence[int] = (4,),
    iommu: bool = False,
    cells: Sequence[NumaCell] = (),
) -> str:
    """Serialize host facts as a ``<capabilities>`` XML document (pure).

    :param host_uuid: the host UUID
    :param cpu: the host CPU
    :param binaries: probed QEMU system emulators, one ``<guest>`` each
    :param kvm_usable: KVM can run guests on this host
    :param page_sizes_kib: memory page sizes in KiB
    :param iommu: the host has IOMMU groups
    :param cells: host NUMA cells (``<topology><cells>``; omitted when empty)
    :returns: the document, pretty-printed, without an XML declaration
    """
    root_el = etree.Element("capabilities")
    _host_element(root_el, host_uuid, cpu, page_sizes_kib, iommu)
    if cells:
        host_el = root_el.find("host")
        assert host_el is not None
        _cells_element(host_el, cells)
    for binary in binaries:
        _guest_element(root_el, binary, cpu.arch, kvm_usable)
    return to_string(root_el) + "\n"


def capabilities(
    *,
    root: Path = Path("/"),
    search_path: Sequence[Path] | None = None,
    kvm: KvmStatus | None = None,
    cache_dir: Path | None = None,
    kvm_cache_path: Path | None = None,
) -> str:
    """Gather this host's facts and return its ``<capabilities>`` XML.

    :param root: filesystem root for ``/proc``, ``/sys`` and ``/etc`` reads
    :param search_path: where to look for QEMU binaries (``$PATH`` + /usr/libexec by default)
    :param kvm: a KVM status already computed; otherwise :func:`~pyvirt.host.kvm.kvm_status`
        runs (with the probe, using ``kvm_cache_path``)
    :param cache_dir: on-disk cache for QEMU binary probing
    :param kvm_cache_path: the KVM probe cache file
    :raises HostCommandError: a QEMU binary could not be queried
    """
    if kvm is None:
        kvm = kvm_status(root=root, cache_path=kvm_cache_path)
    binaries = [
        probe_binary(path, arch=arch, cache_dir=cache_dir)
        for arch, path in find_qemu_binaries(search_path).items()
    ]
    return build_capabilities(
        host_uuid=read_host_uuid(root),
        cpu=read_host_cpu(root),
        binaries=binaries,
        kvm_usable=kvm.usable,
        page_sizes_kib=read_page_sizes_kib(root),
        iommu=has_iommu(root),
        cells=read_cells(root),
    )
