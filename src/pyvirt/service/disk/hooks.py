"""Disks at domain start: ``<disk type='volume'>`` resolution and the image-sharing check.

The lifecycle hook registered here (name ``disks``) does, per start:

``compile``
    turns every ``<disk type='volume'><source pool='P' volume='V'/>`` into the concrete source
    the storage pool reports (:meth:`PoolManager.volume_source`: a file, a block device, a
    network source such as ``iscsi``/``nfs``, possibly a byte range of a raw source) so that
    the argv builder lowers it like any other disk, and records the *inventory* of the
    domain's disk sources (what each disk opens, read-only or not, shareable or not). A
    definition with volume disks is re-resolved on every start (the plan is not cached), as
    the pool decides where the volume lives.
``before_launch``
    restores the volume disks in the live XML (``RUN_DIR/domain.xml`` keeps
    ``type='volume'``) and refuses to start when another running domain writes to a source
    this one opens (or reads one this one writes) unless both declare ``<shareable/>``.

The inventory is the hook's data, so it lives in ``RUN_DIR/hooks.json`` of every running
domain; ``attach-disk``/``detach-disk`` keep it current (:func:`save_inventory`). Checking it
needs no XML parsing. QEMU's own image locking stays on and remains the backstop.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidStateError, NotFoundError, PyvirtError
from pyvirt.service.hooks import HookResult, register_hook
from pyvirt.storage.qemu_modules import require_block_drivers

if TYPE_CHECKING:
    from pyvirt.model import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.storage.base import DiskSource

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the disk hook runs at
# every start and in the reaper; lxml/pyvirt.model, the argv builder and storage pools load only
# when a start compiles its plan (a cached start does without them).

HOOK_NAME = "disks"


# -- sources -------------------------------------------------------------------------------
def apply_source(disk: Disk, src: DiskSource) -> None:
    """Rewrite a volume *disk* in place into the concrete source *src* describes."""
    from lxml import etree  # lazy

    source = disk.element.find("source")
    if source is not None:
        disk.element.remove(source)
    disk.type = src.kind
    if src.kind == "file":
        disk.source_file = src.path
    elif src.kind == "block":
        disk.source_dev = src.path
    else:
        disk.source_protocol = src.protocol
        disk.source_name = src.name
        disk.source_hosts = [(src.host or "localhost", src.port)]
        el = disk.element.find("source")
        assert el is not None
        uid, gid = src.options.get("uid"), src.options.get("gid")
        if uid is not None or gid is not None:
            ident = etree.SubElement(el, "identity")
            if uid is not None:
                ident.set("user", str(uid))
            if gid is not None:
                ident.set("group", str(gid))
        initiator = src.options.get("initiator-name")
        if initiator:
            etree.SubElement(etree.SubElement(el, "initiator"), "iqn").set("name", initiator)
    if src.offset is not None or src.size is not None:
        el = disk.element.find("source")
        assert el is not None
        sl = etree.SubElement(etree.SubElement(el, "slices"), "slice")
        sl.set("type", "storage")
        sl.set("offset", str(src.offset or 0))
        if src.size is not None:
            sl.set("size", str(src.size))
    if disk.format is None:
        disk.driver_name = disk.driver_name or "qemu"
        disk.format = src.format
    if src.readonly:
        disk.readonly = True


def resolve_volume(mgr: DomainManager, disk: Disk) -> DiskSource:
    """The concrete source of a ``<disk type='volume'>`` from its pool.

    :raises NotFoundError: the pool or volume does not exist
    :raises InvalidStateError: the pool is not active
    """
    from pyvirt.service.storage.pools import PoolManager  # lazy

    pool, vol = disk.source_pool, disk.source_volume
    if not pool or not vol:
        raise NotFoundError(
            f"disk '{disk.target_dev}': a volume disk needs <source pool='...' volume='...'/>"
        )
    return PoolManager(mgr.paths).volume_source(pool, vol)


def source_key(disk: Disk) -> str | None:
    """What a (resolved) disk opens, as a comparable string; ``None`` for an empty drive."""
    if disk.type == "network":
        hosts = disk.source_hosts
        host = f"{hosts[0][0]}:{hosts[0][1] or ''}" if hosts else ""
        return f"{disk.source_protocol}://{host}/{(disk.source_name or '').lstrip('/')}"
    path = disk.source_path
    if not path:
        return None
    return "path:" + os.path.realpath(path)


def inventory_entry(disk: Disk) -> dict[str, Any] | None:
    """One inventory line of a resolved disk (``None`` for an empty CD-ROM or floppy)."""
    from pyvirt.drivers.qemu.argv.devices.disk import source_slice  # lazy

    key = source_key(disk)
    if key is None:
        return None
    return {
        "target": disk.target_dev,
        "key": key,
        "range": list(source_slice(disk) or ()) or None,
        "readonly": bool(disk.readonly),
        "shareable": bool(disk.shareable),
    }


def _overlap(a: list[int] | None, b: list[int] | None) -> bool:
    if a is None or b is None:
        return True
    a_end = a[0] + a[1] if a[1] is not None else None
    b_end = b[0] + b[1] if b[1] is not None else None
    return (b_end is None or a[0] < b_end) and (a_end is None or b[0] < a_end)


def conflicts(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether two inventory entries may not be open at the same time.

    They clash when they reach the same bytes, at least one writes, and not both are
    shareable (QEMU's ``share-rw``).
    """
    if new["key"] != old["key"] or not _overlap(new.get("range"), old.get("range")):
        return False
    if new["readonly"] and old["readonly"]:
        return False
    return not (new["shareable"] and old["shareable"])


# -- inventories of running domains ----------------------------------------------------------
def load_inventory(mgr: DomainManager, name: str) -> list[dict[str, Any]]:
    """The disk inventory of running domain *name* (from its hook data, else its live XML)."""
    run = mgr.rundir(name)
    disks = run.hooks().sections.get(HOOK_NAME, {}).get("disks")
    if isinstance(disks, list):
        return disks
    try:
        from pyvirt.model.domain import Domain  # lazy

        dom = Domain.from_xml(run.live_xml())
    except (OSError, PyvirtError):  # a domain that is just going away
        return []
    return [e for d in dom.devices.disks if d.type != "volume" for e in [inventory_entry(d)] if e]


def save_inventory(mgr: DomainManager, name: str, disks: list[dict[str, Any]]) -> None:
    """Replace the disk inventory in running domain *name*'s hook data."""

    def change(section: dict[str, Any]) -> dict[str, Any]:
        return {**section, "disks": disks}

    mgr.rundir(name).update_hooks(HOOK_NAME, change)


def check_conflicts(
    mgr: DomainManager, name: str, entries: list[dict[str, Any]], *, check_self: bool = False
) -> None:
    """Refuse *entries* that clash with a disk of another running domain (or of *name*
    itself, for ``attach-disk``).

    :raises InvalidStateError: naming the domain and its disk
    """
    others = [n for n in mgr.running_names() if n != name or check_self]
    for other in others:
        if other != name and mgr.live_record(other, cleanup=False) is None:
            continue
        for old in load_inventory(mgr, other):
            for new in entries:
                if not conflicts(new, old):
                    continue
                src = new["key"].removeprefix("path:")
                how = "read-only" if old["readonly"] else "read-write"
                if other == name:
                    raise InvalidStateError(
                        f"disk source '{src}' is already attached to domain '{name}' as "
                        f"'{old['target']}'",
                        hint="detach it first, or mark both disks shareable",
                    )
                raise InvalidStateError(
                    f"disk source '{src}' is in use by running domain '{other}' "
                    f"(disk '{old['target']}', {how})",
                    hint=f"detach it from '{other}' first, or declare <shareable/> on both "
                    "disks (attach-disk --mode shareable)",
                )


# -- the hook ----------------------------------------------------------------------------
class DiskHook:
    """The ``disks`` lifecycle hook (see the module docstring)."""

    name = HOOK_NAME

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None:
        """Resolve volume disks in place; record the inventory and the original volume XML."""
        from lxml import etree  # lazy

        volumes: dict[str, str] = {}
        for disk in dom.devices.disks:
            if disk.type == "volume":
                original = etree.tostring(disk.element, encoding="unicode", with_tail=False)
                apply_source(disk, resolve_volume(mgr, disk))
                volumes[disk.target_dev or ""] = original
        for disk in dom.devices.disks:
            _check_modes(disk)
        entries = [e for d in dom.devices.disks for e in [inventory_entry(d)] if e]
        return HookResult(data={"disks": entries, "volumes": volumes}, cacheable=not volumes)

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Refuse clashing disks and missing QEMU block drivers; put volume disks back."""
        require_block_drivers(f"domain '{name}'", [d["key"] for d in data.get("disks", [])])
        check_conflicts(mgr, name, list(data.get("disks", [])))
        volumes: dict[str, str] = data.get("volumes") or {}
        if volumes:
            run = mgr.rundir(name)
            run.write_live_xml(restore_volumes(run.live_xml(), volumes))

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do once QEMU runs."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Nothing to undo: QEMU releases its images (and their locks) when it exits."""


def _check_modes(disk: Disk) -> None:
    """Refuse io_uring on a kernel without it and direct cache modes where the file system
    has no O_DIRECT, with a message naming the feature (instead of QEMU's)."""
    from pyvirt.service.disk.options import DIRECT_CACHES, check_direct_io, check_io_uring  # lazy

    if disk.io == "io_uring":
        check_io_uring()
    path = disk.source_path
    direct = disk.cache in DIRECT_CACHES or disk.io == "native"
    if direct and disk.type in ("file", "block") and path and os.path.exists(path):
        check_direct_io(path, disk.cache or "none")


def restore_volumes(live_xml: bytes, volumes: dict[str, str]) -> str:
    """*live_xml* with its resolved disks put back in their original ``type='volume'`` form."""
    from lxml import etree  # lazy

    from pyvirt.model.xmlmap import parse_xml  # lazy

    root = parse_xml(live_xml, what="live domain XML")
    for disk in root.iterfind("devices/disk"):
        original = volumes.get(_target(disk))
        if original is None:
            continue
        new = parse_xml(original, what="volume disk XML")
        new.tail = disk.tail
        parent = disk.getparent()
        assert parent is not None
        parent.replace(disk, new)
    return etree.tostring(root, encoding="unicode") + "\n"


def _target(el: Any) -> str:
    target = el.find("target")
    return str(target.get("dev")) if target is not None and target.get("dev") else ""


register_hook(DiskHook())
