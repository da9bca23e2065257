"""Deleting checkpoints (``checkpoint-delete``), their dirty sizes (``checkpoint-dumpxml
--size``) and a domain's checkpoints at ``undefine``.

Deleting checkpoint X merges its bitmap into its parent's (which, if X was the newest, records
writes again), then removes it, as libvirt does: the changes since any remaining checkpoint
stay known. ``--metadata`` keeps the bitmaps; ``--children`` deletes the descendants first,
``--children-only`` only them.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidStateError, MonitorError, NotFoundError
from pyvirt.service.checkpoint.bitmaps import (
    DiskImage,
    disk_images,
    image_bitmaps,
    qemu_img_bitmap,
)
from pyvirt.service.checkpoint.store import CheckpointStore, CheckpointTree

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor.backup import TxAction
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.checkpoint import DomainCheckpoint
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast.


def delete(
    mgr: DomainManager,
    ident: str,
    checkpoint: str,
    *,
    children: bool = False,
    children_only: bool = False,
    metadata: bool = False,
) -> list[str]:
    """Delete *checkpoint* of domain *ident*; returns the names deleted, in order."""
    name = mgr.resolve(ident)
    store = CheckpointStore(mgr.paths, name)
    store.read(checkpoint)  # NotFoundError
    tree = CheckpointTree(store.all())
    targets = list(reversed(tree.descendants(checkpoint))) if children or children_only else []
    if not children_only:
        targets.append(checkpoint)
    done: list[str] = []
    with mgr.locked(name):
        for target in targets:
            cps = store.all()
            tree = CheckpointTree(cps)
            cp = cps[target]
            parent_name = tree.parent(target)
            parent = cps[parent_name] if parent_name else None
            if not metadata:
                _merge_away(mgr, name, cp, parent, newest=tree.newest() == target)
            for other in cps.values():
                if other.parent == target:
                    other.parent = parent_name
                    store.write(other)
            store.remove(target)
            done.append(target)
    return done


def _merge_away(
    mgr: DomainManager,
    name: str,
    cp: DomainCheckpoint,
    parent: DomainCheckpoint | None,
    *,
    newest: bool,
) -> None:
    """Merge *cp*'s bitmaps into *parent*'s and remove them (from the images)."""
    rec = mgr.live_record(name, cleanup=True)
    running = rec is not None
    dom = mgr.live_definition(name) if running else mgr.definition(name, inactive=True)
    images = disk_images(dom)
    mine = cp.bitmaps()
    theirs = parent.bitmaps() if parent is not None else {}
    if rec is not None:
        from pyvirt.drivers.qemu.qmp import Monitor  # lazy

        with Monitor(rec.qmp_socket, name=name) as mon:
            actions = _live_actions(mon, images, mine, theirs, newest=newest)
            if actions:
                mon.transaction(actions)
        return
    for target, bitmap in mine.items():
        img = images.get(target)
        if img is None or img.fmt != "qcow2":
            continue
        have = image_bitmaps(img.path)
        mine_bm, into = have.get(bitmap), have.get(theirs.get(target, ""))
        if mine_bm is None:
            continue
        if into is not None and not into.in_use and not mine_bm.in_use:
            ops = ["--merge", bitmap] + (["--enable"] if newest else [])
            qemu_img_bitmap(img.path, into.name, *ops)
        qemu_img_bitmap(img.path, bitmap, "--remove")


def _live_actions(
    mon: Monitor,
    images: dict[str, DiskImage],
    mine: dict[str, str],
    theirs: dict[str, str],
    *,
    newest: bool,
) -> list[TxAction]:
    from pyvirt.drivers.qemu.monitor.backup import (  # lazy
        tx_bitmap_enable,
        tx_bitmap_merge,
        tx_bitmap_remove,
    )
    from pyvirt.service.snapshot.create import node_of  # lazy

    have = mon.dirty_bitmaps()
    actions: list[TxAction] = []
    for target, bitmap in mine.items():
        img = images.get(target)
        if img is None:
            continue
        try:
            node = node_of(mon, img.path)
        except InvalidStateError:
            continue
        on_node = {b.name: b for b in have.get(node, [])}
        mine_bm, into = on_node.get(bitmap), on_node.get(theirs.get(target, ""))
        if mine_bm is None:
            continue
        if into is not None and not into.inconsistent and not mine_bm.inconsistent:
            actions.append(tx_bitmap_merge(node, into.name, [bitmap]))
            if newest and not into.recording:
                actions.append(tx_bitmap_enable(node, into.name))
        actions.append(tx_bitmap_remove(node, bitmap))
    return actions


def dirty_sizes(mgr: DomainManager, ident: str, checkpoint: str) -> dict[str, int]:
    """Bytes written to each disk since *checkpoint* (``checkpoint-dumpxml --size``), as
    QEMU counts them in the bitmaps.

    :raises InvalidStateError: the domain is not running (only QEMU can tell)
    """
    from pyvirt.drivers.qemu.monitor.backup import tx_bitmap_add, tx_bitmap_merge  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.snapshot.create import node_of  # lazy

    name = mgr.resolve(ident)
    store = CheckpointStore(mgr.paths, name)
    store.read(checkpoint)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(
                f"domain '{name}' is not running; --size needs QEMU's dirty bitmaps",
                hint="start the domain, or leave out --size",
            )
        cps = store.all()
        tree = CheckpointTree(cps)
        chain = tree.since(checkpoint)
        images = disk_images(mgr.live_definition(name))
        out: dict[str, int] = {}
        with Monitor(rec.qmp_socket, name=name) as mon:
            have = mon.dirty_bitmaps()
            for target in cps[checkpoint].bitmaps():
                img = images.get(target)
                if img is None:
                    continue
                node = node_of(mon, img.path)
                on_node = {b.name: b for b in have.get(node, [])}
                sources = [cps[c].bitmaps().get(target, "") for c in chain]
                if any(s not in on_node or on_node[s].inconsistent for s in sources):
                    continue  # unknown: the bitmap was lost
                tmp = f"pyvirt-size-{target}"
                mon.transaction(
                    [
                        tx_bitmap_add(node, tmp, persistent=False, disabled=True),
                        tx_bitmap_merge(node, tmp, sources),
                    ]
                )
                try:
                    now = {b.name: b for b in mon.dirty_bitmaps().get(node, [])}
                    out[target] = now[tmp].count
                finally:
                    mon.bitmap_remove(node, tmp)
        return out


def check_undefine(mgr: DomainManager, name: str, *, checkpoints_metadata: bool) -> int:
    """How many checkpoints domain *name* has; refused unless *checkpoints_metadata*.

    :raises InvalidStateError: it has checkpoints and the flag is missing
    """
    count = len(CheckpointStore(mgr.paths, name).names())
    if count and not checkpoints_metadata:
        raise InvalidStateError(
            f"domain '{name}' has {count} checkpoint{'s' if count != 1 else ''}; undefining "
            "it would orphan them",
            hint="add --checkpoints-metadata to drop their metadata too, or delete them first",
        )
    return count


def drop(mgr: DomainManager, name: str) -> None:
    """After ``undefine``: forget every checkpoint of *name* (the bitmaps stay)."""
    with contextlib.suppress(NotFoundError, MonitorError):
        CheckpointStore(mgr.paths, name).drop_all()
