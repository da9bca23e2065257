"""Disk resolution and ``--check`` rules of ``pyvirt install`` (and ``pyvirt clone``).

``--disk path=`` of an existing file is used as is (its format read with qemu-img); a missing
file needs ``size=`` and is created at install time; ``pool=POOL,size=N`` creates a volume
``NAME.qcow2`` in the pool; ``vol=POOL/VOL`` uses an existing volume. ``--check`` rules
(``path_in_use``, ``disk_size``, ``mac_in_use``) refuse a disk another domain writes to, a
non-sparse disk bigger than the free space, and a MAC another domain has.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.errors import AlreadyExistsError, InvalidConfigError, PyvirtError
from pyvirt.storage import qemu_img

if TYPE_CHECKING:
    from pyvirt.install.spec import CheckSpec, DiskSpec, InstallSpec
    from pyvirt.model.domain import Domain
    from pyvirt.service.connection import Connection
GIB = 1024**3
RAW_SUFFIXES = (".img", ".raw", ".iso")


@dataclass
class NewDisk:
    """A disk file the install creates (removed again if the install fails)."""

    path: str
    format: str
    size: int
    sparse: bool
    pool: str | None = None  # a volume named ``path`` in this pool


def _format_of(path: str) -> str:
    try:
        fmt = qemu_img.info(path).get("format")
    except PyvirtError:
        return "raw"
    return str(fmt) if fmt else "raw"


def resolve_disks(
    conn: Connection, name: str, disks: list[DiskSpec], spec: InstallSpec, warnings: list[str]
) -> list[NewDisk]:
    """Fill in each disk's path and format; return the files/volumes to create."""
    new: list[NewDisk] = []
    for index, d in enumerate(disks):
        if d.pool or d.vol:
            new += _pool_disk(conn, name, index, d)
            continue
        assert d.path is not None or d.device == "cdrom"
        if d.path is None:
            continue  # an empty CD-ROM drive
        d.path = os.path.abspath(d.path)
        if os.path.exists(d.path):
            if d.format is None:
                d.format = "raw" if d.device == "cdrom" else _format_of(d.path)
            if d.size_gb is not None:
                warnings.append(f"disk '{d.path}' exists; size={d.size_gb:g} is ignored")
            continue
        if d.device == "cdrom":
            raise InvalidConfigError(f"--disk: CD-ROM image '{d.path}' does not exist")
        if d.size_gb is None:
            raise InvalidConfigError(
                f"--disk: '{d.path}' does not exist",
                hint="add size=GB to create it (e.g. size=10), or create it with qemu-img",
            )
        parent = os.path.dirname(d.path)
        if not os.path.isdir(parent):
            raise InvalidConfigError(f"--disk: directory '{parent}' does not exist")
        d.format = d.format or ("raw" if d.path.endswith(RAW_SUFFIXES) else "qcow2")
        size = int(d.size_gb * GIB)
        if spec.check.disk_size:
            _check_space(parent, size, d.sparse, d.path, warnings)
        new.append(NewDisk(d.path, d.format, size, d.sparse))
    return new


def _check_space(parent: str, size: int, sparse: bool, path: str, warnings: list[str]) -> None:
    st = os.statvfs(parent)
    free = st.f_bavail * st.f_frsize
    if size <= free:
        return
    message = (
        f"disk '{path}' of {size / GIB:.1f} GiB is larger than the {free / GIB:.1f} GiB free "
        f"in '{parent}'"
    )
    if not sparse:
        raise InvalidConfigError(message, hint="free space, use a smaller size or sparse=yes")
    warnings.append(message + "; the sparse file may fill the disk as the guest writes")


def _pool_disk(conn: Connection, name: str, index: int, d: DiskSpec) -> list[NewDisk]:
    pools = conn.pools
    if d.vol:
        pool_name, info = pools.volumes.lookup(d.vol, d.pool)
        d.pool, d.vol, d.format = pool_name, info.name, d.format or info.format
        return []
    assert d.pool is not None
    pool_name = pools.resolve(d.pool)
    if d.size_gb is None:
        raise InvalidConfigError(
            f"--disk pool={pool_name}: give size=GB for the new volume", hint="e.g. size=10"
        )
    d.pool = pool_name
    d.format = d.format or "qcow2"
    suffix = "" if index == 0 else f"-{index}"
    ext = "qcow2" if d.format == "qcow2" else "img"
    d.vol = f"{name}{suffix}.{ext}"
    return [NewDisk(d.vol, d.format, int(d.size_gb * GIB), d.sparse, pool=pool_name)]


def _other_definitions(conn: Connection, name: str) -> list[Domain]:
    doms = conn.domains
    out = []
    for st in doms.list_all():
        if st.name == name:
            continue
        try:
            out.append(doms.definition(st.name))
        except PyvirtError:
            continue
    return out


def check_in_use(conn: Connection, dom: Domain, check: CheckSpec) -> None:
    """Refuse disks another domain writes to and MACs another domain uses (``--check``)."""
    if not (check.path_in_use or check.mac_in_use):
        return
    others = _other_definitions(conn, dom.name)
    if check.path_in_use:
        mine = {
            os.path.realpath(d.source_path): d
            for d in dom.devices.disks
            if d.source_path and not d.readonly
        }
        for other in others:
            for disk in other.devices.disks:
                path = disk.source_path
                if path and os.path.realpath(path) in mine and not disk.readonly:
                    if disk.shareable and mine[os.path.realpath(path)].shareable:
                        continue
                    raise AlreadyExistsError(
                        f"disk '{path}' is already used by domain '{other.name}'",
                        hint="use another path, or --check path_in_use=off if this is intended",
                    )
    if check.mac_in_use:
        macs = {i.mac.lower() for i in dom.devices.interfaces if i.mac}
        for other in others:
            for iface in other.devices.interfaces:
                if iface.mac and iface.mac.lower() in macs:
                    raise AlreadyExistsError(
                        f"MAC address {iface.mac} is already used by domain '{other.name}'",
                        hint="give another --mac, or --check mac_in_use=off",
                    )
