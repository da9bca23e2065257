"""Looking at a domain's disks: ``domblklist``, ``domblkinfo``, ``domblkstat``, ``blockresize``.

A running domain is asked through its monitor: the block nodes for sizes (the format node
``ALIAS-format`` the argv builder names), the block statistics for I/O counters, and a block
resize to grow a disk (the guest is told: virtio-blk raises a config interrupt, SCSI a
capacity-change unit attention). A shut-off domain's images are read with
``qemu-img info`` (without taking their lock).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.qemu.argv.devices.disk import disk_bus, sorted_disks
from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError
from pyvirt.model.limits import check_volume_bytes
from pyvirt.service.disk.attach import disk_alias, find_disk
from pyvirt.service.disk.hooks import resolve_volume
from pyvirt.storage import qemu_img

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor import BlockNode
    from pyvirt.model import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

#: QEMU's block statistics field -> virsh domblkstat name
STAT_FIELDS = (
    ("rd_operations", "rd_req"),
    ("rd_bytes", "rd_bytes"),
    ("wr_operations", "wr_req"),
    ("wr_bytes", "wr_bytes"),
    ("flush_operations", "flush_operations"),
    ("rd_total_time_ns", "rd_total_times"),
    ("wr_total_time_ns", "wr_total_times"),
    ("flush_total_time_ns", "flush_total_times"),
)


@dataclass
class BlkEntry:
    """One line of ``domblklist``."""

    target: str
    source: str
    type: str
    device: str
    bus: str
    format: str | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class BlkInfo:
    """``domblkinfo`` of one disk, in bytes."""

    target: str
    capacity: int
    allocation: int
    physical: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def source_text(disk: Disk) -> str:
    """What ``domblklist`` shows as a disk's source (virsh: file, dev, name or volume)."""
    if disk.type == "volume":
        return disk.source_volume or "-"
    if disk.type == "network":
        return disk.source_name or "-"
    return disk.source_path or "-"


def blklist(mgr: DomainManager, ident: str, *, inactive: bool = False) -> list[BlkEntry]:
    """The disks of a domain (the live ones while it runs, unless *inactive*)."""
    dom = mgr.definition(ident, inactive=inactive)
    out = []
    for d in sorted_disks(dom.devices.disks):
        try:
            bus = disk_bus(d)
        except InvalidConfigError:
            bus = "-"
        out.append(
            BlkEntry(
                d.target_dev or "",
                source_text(d),
                d.type or "file",
                d.device or "disk",
                bus,
                d.format,
            )
        )
    return out


def _disk(dom: Domain, ident: str) -> Disk:
    disk = find_disk(dom, ident)
    if disk is None:
        raise NotFoundError(
            f"domain '{dom.name}' has no disk '{ident}'", hint="list its disks with 'domblklist'"
        )
    return disk


def _nodes(mgr: DomainManager, name: str) -> dict[str, BlockNode]:
    _, rec = mgr.running(name)
    with Monitor(rec.qmp_socket, name=name) as mon:
        nodes = mon.query_named_block_nodes()
    return {n.node_name: n for n in nodes}


def _physical(path: str | None, fallback: int) -> int:
    if not path or not os.path.exists(path):
        return fallback
    try:
        with open(path, "rb") as f:
            return f.seek(0, os.SEEK_END)
    except OSError:
        return fallback


def blkinfo(mgr: DomainManager, ident: str, target: str | None = None) -> list[BlkInfo]:
    """Capacity, allocation and physical size of one disk (or all with *target* None).

    :raises NotFoundError: no such disk
    """
    name = mgr.resolve(ident)
    dom = mgr.definition(name)
    disks = [_disk(dom, target)] if target else [d for d in dom.devices.disks]
    running = mgr.live_record(name, cleanup=False) is not None
    nodes = _nodes(mgr, name) if running else {}
    out = []
    for d in disks:
        if target is None and d.device in ("cdrom", "floppy") and not d.source_path:
            continue
        if running:
            node = nodes.get(f"{disk_alias(mgr, dom, d)}-format")
            if node is None:
                out.append(BlkInfo(d.target_dev or "", 0, 0, 0))
                continue
            cap = node.virtual_size
            below = nodes.get(node.file)
            alloc = below.actual_size if below is not None else None
            if alloc is None:
                alloc = node.actual_size or 0
            path = d.source_path if d.type in ("file", "block") else None
            out.append(BlkInfo(d.target_dev or "", cap, alloc, _physical(path, cap)))
        else:
            out.append(_offline_info(mgr, d))
    return out


def _offline_info(mgr: DomainManager, d: Disk) -> BlkInfo:
    path = d.source_path
    if d.type == "volume":
        src = resolve_volume(mgr, d)
        if src.kind == "network" or src.path is None:
            return BlkInfo(d.target_dev or "", src.size or 0, src.size or 0, src.size or 0)
        path = src.path
    if not path or d.type == "network":
        raise InvalidStateError(
            f"disk '{d.target_dev}': a shut-off domain's network disk cannot be inspected",
            hint="start the domain first",
        )
    if not os.path.exists(path):
        raise NotFoundError(f"disk source '{path}' does not exist")
    info = qemu_img.info(path, d.format or "raw")
    cap = int(info.get("virtual-size", 0))
    alloc = int(info.get("actual-size", 0))
    return BlkInfo(d.target_dev or "", cap, alloc, _physical(path, cap))


def blkstat(mgr: DomainManager, ident: str, target: str | None = None) -> dict[str, dict[str, int]]:
    """I/O counters per disk target (virsh's names: rd_req, rd_bytes, wr_req...).

    :raises InvalidStateError: the domain is not running
    """

    name, rec = mgr.running(ident)
    dom = mgr.definition(name)
    disks = [_disk(dom, target)] if target else list(dom.devices.disks)
    with Monitor(rec.qmp_socket, name=name) as mon:
        stats = mon.query_blockstats()
    by_qdev: dict[str, dict[str, int]] = {}
    for entry in stats:
        by_qdev[entry.device_id] = entry.stats
    out: dict[str, dict[str, int]] = {}
    for d in disks:
        raw = by_qdev.get(disk_alias(mgr, dom, d))
        if raw is None:
            continue
        out[d.target_dev or ""] = {virsh: raw.get(qmp, 0) for qmp, virsh in STAT_FIELDS}
    return out


def blockresize(mgr: DomainManager, ident: str, path: str, size: int) -> int:
    """Grow a running domain's disk to *size* bytes (rounded up to 512); returns the size.

    :raises InvalidConfigError: the size would shrink the disk
    """

    name = mgr.resolve(ident)
    with mgr.locked(name):
        name, rec = mgr.running(name)
        dom = mgr.definition(name)
        disk = _disk(dom, path)
        node = f"{disk_alias(mgr, dom, disk)}-format"
        size = (size + 511) // 512 * 512
        check_volume_bytes(size, what=f"disk '{path}' size")
        with Monitor(rec.qmp_socket, name=name) as mon:
            nodes = {n.node_name: n for n in mon.query_named_block_nodes()}
            current = nodes[node].virtual_size if node in nodes else 0
            if size < current:
                raise InvalidConfigError(
                    f"disk '{disk.target_dev}': {size} bytes is smaller than its current size "
                    f"{current}; shrinking would destroy data",
                    hint="give a size at least as large as the current one",
                )
            if disk.readonly:
                raise InvalidStateError(f"disk '{disk.target_dev}' is read-only")
            mon.block_resize(node, size)
    return size
