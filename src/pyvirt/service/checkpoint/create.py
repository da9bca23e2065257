"""Creating checkpoints (``checkpoint-create``, ``checkpoint-create-as``).

Each covered disk gets a persistent dirty bitmap named after the checkpoint and the previous
newest checkpoint's bitmap stops recording: one QMP ``transaction`` on a running guest,
``qemu-img bitmap --add``/``--disable`` on a shut-off one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pyvirt.errors import AlreadyExistsError, InvalidConfigError
from pyvirt.service.checkpoint.bitmaps import DiskImage, plan, qemu_img_bitmap
from pyvirt.service.checkpoint.store import CheckpointStore, CheckpointTree

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor.backup import TxAction
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.checkpoint import DomainCheckpoint
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the checkpoint verbs that need them.


def prepare(
    mgr: DomainManager, name: str, cp: DomainCheckpoint, *, running: bool
) -> tuple[list[DiskImage], DomainCheckpoint | None]:
    """Name, time, parent and disks of new checkpoint *cp* of domain *name* (locked);
    returns its disks and the current newest checkpoint (its parent).

    :raises AlreadyExistsError: the name is taken
    """
    from pyvirt.state.names import check_new_name  # lazy

    store = CheckpointStore(mgr.paths, name)
    if not cp.name:
        cp.name = str(int(time.time()))
    check_new_name(cp.name, kind="checkpoint")
    if store.exists(cp.name):
        raise AlreadyExistsError(
            f"checkpoint '{cp.name}' of domain '{name}' already exists",
            hint="choose another name, or delete the old checkpoint first",
        )
    if cp.creation_time is None:
        cp.creation_time = int(time.time())
    dom = mgr.live_definition(name) if running else mgr.definition(name, inactive=True)
    images = plan(dom, cp)
    newest = CheckpointTree(store.all()).newest()
    prev = store.read(newest) if newest else None
    cp.parent = newest
    cp.domain_xml = dom.to_xml()
    return images, prev


def live_actions(
    mon: Monitor, cp: DomainCheckpoint, images: list[DiskImage], prev: DomainCheckpoint | None
) -> list[TxAction]:
    """The transaction actions that start *cp*'s bitmaps and freeze *prev*'s."""
    from pyvirt.drivers.qemu.monitor.backup import tx_bitmap_add, tx_bitmap_disable  # lazy
    from pyvirt.service.snapshot.create import node_of  # lazy

    have = mon.dirty_bitmaps()
    bitmaps = cp.bitmaps()
    old = prev.bitmaps() if prev is not None else {}
    actions: list[TxAction] = []
    for img in images:
        node = node_of(mon, img.path)
        actions.append(tx_bitmap_add(node, bitmaps[img.target]))
        prev_bm = old.get(img.target)
        cur = {b.name: b for b in have.get(node, [])}.get(prev_bm or "")
        if prev_bm and cur is not None and cur.recording and not cur.inconsistent:
            actions.append(tx_bitmap_disable(node, prev_bm))
    return actions


def create(
    mgr: DomainManager, ident: str, cp: DomainCheckpoint, *, redefine: bool = False
) -> DomainCheckpoint:
    """Create (or with *redefine* only record) checkpoint *cp* of domain *ident*.

    :returns: the checkpoint's metadata as stored
    """
    name = mgr.resolve(ident)
    store = CheckpointStore(mgr.paths, name)
    if redefine:
        if not cp.name:
            raise InvalidConfigError("a redefined checkpoint needs a <name>")
        if cp.parent and not store.exists(cp.parent):
            raise InvalidConfigError(
                f"checkpoint '{cp.name}': its parent '{cp.parent}' does not exist",
                hint="redefine the parent first",
            )
        if cp.creation_time is None:
            cp.creation_time = int(time.time())
        store.write(cp)
        return cp
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        images, prev = prepare(mgr, name, cp, running=rec is not None)
        if rec is not None:
            from pyvirt.drivers.qemu.qmp import Monitor  # lazy

            with Monitor(rec.qmp_socket, name=name) as mon:
                mon.transaction(live_actions(mon, cp, images, prev))
        else:
            _offline(cp, images, prev)
        store.write(cp, new=True)
    return cp


def _offline(cp: DomainCheckpoint, images: list[DiskImage], prev: DomainCheckpoint | None) -> None:
    from pyvirt.service.checkpoint.bitmaps import image_bitmaps  # lazy

    bitmaps = cp.bitmaps()
    old = prev.bitmaps() if prev is not None else {}
    done: list[DiskImage] = []
    try:
        for img in images:
            qemu_img_bitmap(img.path, bitmaps[img.target], "--add")
            done.append(img)
    except BaseException:
        for img in done:  # all or nothing
            qemu_img_bitmap(img.path, bitmaps[img.target], "--remove")
        raise
    for img in images:
        prev_bm = old.get(img.target)
        cur = image_bitmaps(img.path).get(prev_bm or "")
        if prev_bm and cur is not None and cur.enabled and not cur.in_use:
            qemu_img_bitmap(img.path, prev_bm, "--disable")
