"""Deleting snapshots (``snapshot-delete``) and a domain's snapshots at ``undefine``.

* internal: ``qemu-img snapshot -d`` on each image holding it, or QMP ``snapshot-delete``
  while the domain runs;
* external: the snapshot's overlay is merged into the file it froze (that point in time is
  what is deleted; the data written since stays): ``qemu-img commit`` for a shut-off domain,
  then anything built on the overlay is rebased onto the base and the overlay is removed; a
  running domain needs a block commit job (:mod:`pyvirt.service.disk.blockjobs`).
  Refused when another branch also builds on the frozen file (a revert made one), or when
  an internal snapshot lives in the overlay;
* ``--metadata``: only pyvirt's record goes, the images stay as they are.

Children of a deleted snapshot get its parent; ``--children`` deletes them too (leaves
first), ``--children-only`` only them.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidStateError
from pyvirt.service.snapshot.disks import base_of, known_files
from pyvirt.service.snapshot.store import SnapshotStore, SnapshotTree

if TYPE_CHECKING:
    from pyvirt.model.snapshot import DomainSnapshot
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the snapshot verbs that need them.


def delete(
    mgr: DomainManager,
    ident: str,
    snapshot: str | None,
    *,
    children: bool = False,
    children_only: bool = False,
    metadata: bool = False,
) -> list[str]:
    """Delete *snapshot* (None: the current one) of domain *ident*; returns the names
    deleted, in order."""
    name = mgr.resolve(ident)
    store = SnapshotStore(mgr.paths, name)
    if snapshot is None:
        snapshot = store.current()
        if snapshot is None:
            raise InvalidStateError(f"domain '{name}' has no current snapshot")
    store.read(snapshot)  # NotFoundError
    tree = SnapshotTree(store.all())
    targets = list(reversed(tree.descendants(snapshot))) if children or children_only else []
    if not children_only:
        targets.append(snapshot)
    done: list[str] = []
    with mgr.locked(name):
        for target in targets:
            snaps = store.all()
            snap = snaps[target]
            if not metadata:
                _delete_data(mgr, name, snaps, snap)
            _forget(store, snaps, snap)
            done.append(target)
    return done


def _forget(store: SnapshotStore, snaps: dict[str, DomainSnapshot], snap: DomainSnapshot) -> None:
    """Remove *snap*'s record; its children get its parent (and become current if it was)."""
    assert snap.name
    was_current = store.current() == snap.name
    for other in snaps.values():
        if other.parent == snap.name:
            other.parent = snap.parent
            store.write(other)
    store.remove(snap.name)
    if was_current and snap.parent:
        store.set_current(snap.parent)


def _delete_data(
    mgr: DomainManager, name: str, snaps: dict[str, DomainSnapshot], snap: DomainSnapshot
) -> None:
    if snap.is_internal:
        _delete_internal(mgr, name, snap)
    if snap.is_external:
        for disk in snap.disks:
            if disk.snapshot == "external" and disk.name and disk.source_file:
                _merge(mgr, name, snaps, snap, disk.name, disk.source_file)
    if snap.memory == "external" and snap.memory_file:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(snap.memory_file)  # the state belongs to the point in time given up


def _delete_internal(mgr: DomainManager, name: str, snap: DomainSnapshot) -> None:
    from pyvirt.storage import qemu_img  # lazy

    files = [d.source_file for d in snap.disks if d.snapshot == "internal" and d.source_file]
    rec = mgr.live_record(name, cleanup=True)
    if rec is not None:
        from pyvirt.drivers.qemu.qmp import Monitor  # lazy
        from pyvirt.service.snapshot.create import node_of  # lazy

        with Monitor(rec.qmp_socket, name=name) as mon:
            nodes = [node_of(mon, f) for f in files]
            mon.snapshot_delete(str(snap.name), nodes)
        return
    for path in files:
        if os.path.exists(path) and str(snap.name) in qemu_img.snapshot_tags(path):
            qemu_img.snapshot("delete", path, str(snap.name))


def _users_of(path: str, candidates: set[str]) -> list[str]:
    """The images among *candidates* whose backing file is *path*."""
    from pyvirt.service.snapshot.disks import backing_of  # lazy

    return sorted(
        c for c in candidates if c != path and os.path.exists(c) and backing_of(c) == path
    )


def _merge(
    mgr: DomainManager,
    name: str,
    snaps: dict[str, DomainSnapshot],
    snap: DomainSnapshot,
    target: str,
    overlay: str,
) -> None:
    """Merge external snapshot *snap*'s *overlay* of disk *target* into the file it froze."""
    from pyvirt.storage import qemu_img  # lazy

    base, base_fmt = base_of(snap, target)
    rec = mgr.live_record(name, cleanup=True)
    dom = mgr.live_definition(name) if rec else mgr.definition(name, inactive=True)
    top = next((d.source_path for d in dom.devices.disks if d.target_dev == target), None)
    candidates = known_files(snaps) | ({top} if top else set())
    others = [u for u in _users_of(base, candidates) if u != overlay]
    if others:
        raise InvalidStateError(
            f"snapshot '{snap.name}': '{base}' is also the base of '{others[0]}'; merging "
            f"'{overlay}' into it would corrupt that branch",
            hint="delete the snapshots of the other branch first (or use --metadata)",
        )
    if os.path.exists(overlay) and qemu_img.snapshot_tags(overlay):
        raise InvalidStateError(
            f"snapshot '{snap.name}': overlay '{overlay}' holds internal snapshots "
            f"({', '.join(qemu_img.snapshot_tags(overlay))}); merging would lose them",
            hint="delete those snapshots first",
        )
    if rec is not None:
        from pyvirt.service.disk import blockjobs  # lazy

        blockjobs.commit(
            mgr, name, target, top=overlay, base=base, active=top == overlay, pivot=True
        )
    else:
        if os.path.exists(overlay):
            qemu_img.commit(overlay)
            for user in _users_of(overlay, candidates):
                qemu_img.rebase_unsafe(user, base, base_fmt)
    _relink(mgr, name, snaps, snap, target, overlay, base, base_fmt, live=rec is not None)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(overlay)


def _relink(
    mgr: DomainManager,
    name: str,
    snaps: dict[str, DomainSnapshot],
    snap: DomainSnapshot,
    target: str,
    overlay: str,
    base: str,
    base_fmt: str,
    *,
    live: bool,
) -> None:
    """After a merge, whatever named *overlay* names *base*: the definitions and the
    other snapshots' embedded definitions."""
    from pyvirt.model.domain import Domain  # lazy

    def repoint(dom: Domain) -> bool:
        changed = False
        for disk in dom.devices.disks:
            if disk.target_dev == target and disk.source_path == overlay:
                disk.source_path = base
                disk.format = base_fmt
                changed = True
        return changed

    if live:
        cur = mgr.live_definition(name)
        if repoint(cur):
            mgr.save_live(name, cur)
    if mgr.store.exists(name):
        dom, rev = mgr.read_config(name)
        if repoint(dom):
            mgr.write_config(name, dom, rev)
    store = SnapshotStore(mgr.paths, name)
    for other in snaps.values():
        if other.name == snap.name or other.domain_xml is None:
            continue
        embedded = Domain.from_xml(other.domain_xml)
        if repoint(embedded):
            other.domain_xml = embedded.to_xml()
            store.write(other)


def files_to_remove(mgr: DomainManager, name: str) -> list[str]:
    """The image files the domain's snapshots made or froze that still exist (for
    ``undefine --remove-all-storage``)."""
    snaps = SnapshotStore(mgr.paths, name).all()
    memory = {s.memory_file for s in snaps.values() if s.memory == "external" and s.memory_file}
    return sorted(f for f in known_files(snaps) | memory if os.path.isfile(f))


def check_undefine(mgr: DomainManager, name: str, *, snapshots_metadata: bool) -> int:
    """How many snapshots domain *name* has; refused unless *snapshots_metadata*.

    :raises InvalidStateError: it has snapshots and the flag is missing
    """
    count = len(SnapshotStore(mgr.paths, name).names())
    if count and not snapshots_metadata:
        raise InvalidStateError(
            f"domain '{name}' has {count} snapshot{'s' if count != 1 else ''}; undefining "
            "it would orphan them",
            hint="add --snapshots-metadata to drop their metadata too, or delete them first",
        )
    return count


def drop(mgr: DomainManager, name: str, files: list[str]) -> list[str]:
    """After ``undefine``: delete *files* (from :func:`files_to_remove`) that still exist and
    forget every snapshot of *name*; returns the files deleted."""
    removed = []
    for path in files:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
            removed.append(path)
    SnapshotStore(mgr.paths, name).drop_all()
    return removed
