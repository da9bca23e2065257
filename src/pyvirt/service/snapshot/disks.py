"""Which disks a snapshot covers and where their data lives: shared by create, revert and
delete (pure functions over the models, plus ``qemu-img info`` of overlay candidates)."""

from __future__ import annotations

import glob
import os
from typing import TYPE_CHECKING

from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    PyvirtError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from pyvirt.model.devices.disk import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.model.snapshot import DomainSnapshot
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the snapshot verbs that need them.


def live_domain(mgr: DomainManager, name: str) -> Domain:
    """The live definition of running domain ``name``, parsed without validating it again:
    pyvirt wrote it, validated, at start (the validation costs ~50x the parse, a few ms of a
    ~100 ms revert).

    :raises InvalidStateError: it is not running
    """
    return live_domain_and_xml(mgr, name)[0]


def live_domain_and_xml(mgr: DomainManager, name: str) -> tuple[Domain, str]:
    """:func:`live_domain` and its text as pyvirt wrote it (a snapshot embeds it: no
    serialising of the parsed one again).

    :raises InvalidStateError: it is not running
    """
    from pyvirt.model.domain import Domain  # lazy
    from pyvirt.model.xmltree import parse_xml  # lazy

    try:
        data = mgr.rundir(name).live_xml()
    except NotFoundError:
        raise InvalidStateError(f"domain '{name}' is not running") from None
    return Domain(parse_xml(data, what=Domain.WHAT)), data.decode()


def snapshottable(dom: Domain) -> list[Disk]:
    """The disks a snapshot may cover: writable ``device='disk'`` disks with a source."""
    return [
        d
        for d in dom.devices.disks
        if d.device in (None, "disk") and not d.readonly and not d.shareable and d.target_dev
    ]


def file_of(disk: Disk, what: str) -> str:
    """The local image path of *disk*.

    :raises UnsupportedError: a network or pool-volume disk that pyvirt cannot snapshot
    """
    path = disk.source_path
    if disk.type not in (None, "file", "block") or not path:
        raise UnsupportedError(
            f"disk '{disk.target_dev}' is a {disk.type} disk; {what} needs a local image file",
            hint=f"exclude it with --diskspec {disk.target_dev},snapshot=no",
        )
    return path


def default_overlay(path: str, snapshot: str) -> str:
    """libvirt's default overlay name: the image's name with its suffix replaced by the
    snapshot's name (``/img/vm.qcow2`` -> ``/img/vm.s1``)."""
    stem, ext = os.path.splitext(path)
    return f"{stem if ext and '/' not in ext else path}.{snapshot}"


def base_of(snap: DomainSnapshot, target: str) -> tuple[str, str]:
    """The file (and format) disk *target* wrote to before external snapshot *snap*: its
    source in the snapshot's embedded definition.

    :raises InvalidConfigError: the snapshot has no definition to tell
    """
    from pyvirt.model.domain import Domain  # lazy

    xml = snap.domain_xml
    if xml is None:
        raise InvalidConfigError(
            f"snapshot '{snap.name}' has no <domain> definition; the file it froze is unknown",
            hint="redefine it with the full XML of 'snapshot-dumpxml'",
        )
    for disk in Domain.from_xml(xml).devices.disks:
        if disk.target_dev == target and disk.source_path:
            return disk.source_path, disk.format or "raw"
    raise InvalidConfigError(f"snapshot '{snap.name}' does not define disk '{target}'")


def revert_overlays(overlay: str) -> list[str]:
    """The overlays made when reverting to the snapshot with *overlay* (``OVERLAY-rN``)."""
    return sorted(glob.glob(glob.escape(overlay) + "-r[0-9]*"))


def needed_files(snaps: dict[str, DomainSnapshot], *, but: str | None = None) -> set[str]:
    """Files some snapshot (except *but*) needs unchanged: the files its external disks
    froze, and the images holding its internal snapshots."""
    out: set[str] = set()
    for name, snap in snaps.items():
        if name == but:
            continue
        for disk in snap.disks:
            if disk.snapshot == "internal" and disk.source_file:
                out.add(disk.source_file)
            elif disk.snapshot == "external" and disk.name:
                try:
                    out.add(base_of(snap, disk.name)[0])
                except InvalidConfigError:
                    continue
    return out


def known_files(snaps: dict[str, DomainSnapshot]) -> set[str]:
    """Every image file the snapshots name: frozen files, overlays and revert overlays."""
    out = needed_files(snaps)
    for snap in snaps.values():
        for disk in snap.disks:
            if disk.snapshot == "external" and disk.source_file:
                out.add(disk.source_file)
                out.update(revert_overlays(disk.source_file))
    return out


def backing_of(path: str) -> str | None:
    """The backing file of image *path* as written in it (None: none, or unreadable)."""
    from pyvirt.storage import qemu_img  # lazy

    try:
        info = qemu_img.info(path)
    except PyvirtError:
        return None
    raw = info.get("full-backing-filename") or info.get("backing-filename")
    return str(raw) if raw else None
