"""Taking a snapshot (``snapshot-create``, ``snapshot-create-as``).

* running guest, no ``--disk-only``: an internal snapshot of every writable qcow2 disk with
  the VM state in the first one (QMP ``snapshot-save`` job; QEMU pauses the guest meanwhile);
* shut-off guest: an internal snapshot of every qcow2 disk (``qemu-img snapshot -c``), or
  external overlays with ``--disk-only`` (``qemu-img create -b``);
* running guest with ``--disk-only``: external overlays, all disks at once (one QMP
  ``transaction``, so it is always atomic), optionally with the file systems frozen by the
  guest agent (``--quiesce``).

The definition (live and persistent) then names the overlays as the disks' sources.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    UnsupportedError,
)
from pyvirt.service.snapshot.disks import (
    default_overlay,
    file_of,
    live_domain_and_xml,
    snapshottable,
)
from pyvirt.service.snapshot.store import SnapshotStore

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor.snapshots import OverlaySpec
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.domain import Domain
    from pyvirt.model.snapshot import DomainSnapshot
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the snapshot verbs that need them.


@dataclass(frozen=True)
class CreateFlags:
    """virsh's ``snapshot-create`` options."""

    disk_only: bool = False
    atomic: bool = False
    quiesce: bool = False
    live: bool = False
    no_metadata: bool = False
    redefine: bool = False
    current: bool = False


@dataclass
class DiskPlan:
    """What happens to one disk: ``internal``, ``external`` (to *overlay*) or ``no``."""

    target: str
    location: str
    path: str
    fmt: str
    overlay: str | None = None


def plan(dom: Domain, snap: DomainSnapshot, *, running: bool, disk_only: bool) -> list[DiskPlan]:
    """Decide each disk's fate from the snapshot XML's ``<disks>`` and the flags; fill in
    ``snap``'s ``<memory>`` and ``<disks>`` accordingly.

    :raises InvalidConfigError: contradicting requests
    :raises UnsupportedError: what pyvirt cannot snapshot (raw disks internally, external
        memory)
    """
    name = snap.name
    disks = {d.target_dev: d for d in snapshottable(dom)}
    for entry in snap.disks:
        if entry.name not in disks and entry.snapshot != "no":
            raise InvalidConfigError(
                f"domain '{dom.name}' has no writable disk '{entry.name}' to snapshot",
                hint="name disks by target (vda), as 'domblklist' shows them",
            )
    if snap.memory == "external":
        _check_memory_file(snap, running=running, disk_only=disk_only)
    elif disk_only or not running:
        snap.memory = "no"
    elif snap.memory is None:
        snap.memory = "internal"
    default = "external" if disk_only or snap.memory == "external" else "internal"
    plans: list[DiskPlan] = []
    for target, disk in disks.items():
        assert target is not None
        spec = snap.disk(target)
        where = (spec.snapshot if spec is not None else None) or default
        if where == "no":
            continue
        path = file_of(disk, "a snapshot")
        fmt = disk.format or "raw"
        if where == "internal" and fmt != "qcow2":
            raise UnsupportedError(
                f"disk '{target}' is {fmt}; internal snapshots need qcow2 images",
                hint=f"take an external one (--disk-only) or leave it out with "
                f"--diskspec {target},snapshot=no",
            )
        if where == "internal" and snap.memory == "external":
            raise UnsupportedError(
                f"disk '{target}': an internal disk snapshot cannot go with an external "
                "memory state",
                hint=f"drop snapshot='internal' (disks go external with --memspec), or leave "
                f"it out with --diskspec {target},snapshot=no",
            )
        if where == "internal" and running and snap.memory != "internal":
            raise UnsupportedError(
                f"disk '{target}': a disk-only snapshot of a running guest is external",
                hint="drop snapshot='internal' or take the snapshot with the memory state",
            )
        if where == "external" and snap.memory == "internal":
            raise UnsupportedError(
                f"disk '{target}': an external disk snapshot cannot go with an internal "
                "memory state",
                hint="use --disk-only for external snapshots",
            )
        overlay = None
        if where == "external":
            overlay = (spec.source_file if spec is not None else None) or default_overlay(
                path, str(name)
            )
            if os.path.exists(overlay):
                raise InvalidConfigError(
                    f"disk '{target}': the overlay '{overlay}' exists already",
                    hint=f"name another file with --diskspec {target},file=PATH",
                )
        plans.append(DiskPlan(target, where, path, fmt, overlay))
    if not plans:
        raise InvalidConfigError(f"domain '{dom.name}' has no disk to snapshot")
    if len({p.location for p in plans}) > 1:
        raise UnsupportedError(
            "one snapshot cannot mix internal and external disks",
            hint="take two snapshots, or leave disks out with --diskspec DISK,snapshot=no",
        )
    snap.disks = []
    for p in plans:
        snap.add_disk(
            name=p.target,
            snapshot=p.location,
            type="file",
            driver_type="qcow2",
            source_file=p.overlay if p.location == "external" else p.path,
        )
    return plans


def _check_memory_file(snap: DomainSnapshot, *, running: bool, disk_only: bool) -> None:
    """An external memory state needs a running guest and a new file in an existing
    directory."""
    if disk_only or not running:
        raise InvalidConfigError(
            "an external memory state needs a running guest and no --disk-only",
            hint="drop --memspec, or start the domain first" if not running else "drop --disk-only",
        )
    path = snap.memory_file or ""
    if not os.path.isabs(path) or ".." in path.split("/"):
        raise InvalidConfigError(
            f"memory file '{path}' must be an absolute path without '..'",
            hint="--memspec file=/var/lib/pyvirt/images/NAME.mem",
        )
    if os.path.exists(path):
        raise InvalidConfigError(
            f"memory file '{path}' exists already", hint="name a new file with --memspec"
        )
    if not os.path.isdir(os.path.dirname(path)):
        raise InvalidConfigError(f"directory '{os.path.dirname(path)}' does not exist")


def node_of(mon: Monitor, path: str) -> str:
    """The format node QEMU reads *path* through.

    :raises InvalidStateError: QEMU has no node for that file
    """
    for image in mon.active_images():
        if image.file == path:
            return image.node_name
    for node in mon.query_named_block_nodes():
        if node.file == path and node.drv not in ("file", "host_device"):
            return node.node_name
    raise InvalidStateError(f"the running QEMU has no block node for '{path}'")


def create(
    mgr: DomainManager, ident: str, snap: DomainSnapshot, flags: CreateFlags
) -> DomainSnapshot:
    """Take (or with ``redefine`` just record) snapshot *snap* of domain *ident*.

    :returns: the snapshot's metadata as stored
    """
    name = mgr.resolve(ident)
    store = SnapshotStore(mgr.paths, name)
    if not snap.name:
        snap.name = str(int(time.time()))
    from pyvirt.state.names import check_new_name  # lazy

    check_new_name(snap.name, kind="snapshot")
    if snap.creation_time is None:
        snap.creation_time = int(time.time())
    if flags.redefine:
        return _redefine(store, snap, current=flags.current)
    if flags.quiesce and not flags.disk_only:
        raise InvalidConfigError("--quiesce needs --disk-only", hint="add --disk-only")
    _refuse_taken(store, snap.name)
    with mgr.locked(name):
        _refuse_taken(store, snap.name)  # again: another command may have taken it meanwhile
        rec = mgr.live_record(name, cleanup=True)
        running = rec is not None
        if running:
            dom, dom_xml = live_domain_and_xml(mgr, name)
        else:
            dom = mgr.definition(name, inactive=True)
            dom_xml = dom.to_xml()
        plans = plan(dom, snap, running=running, disk_only=flags.disk_only)
        if running:
            assert rec is not None
            paused = rec.paused
            snap.state = "disk-snapshot" if flags.disk_only else "paused" if paused else "running"
        else:
            snap.state = "shutoff"
        snap.parent = store.current()
        snap.domain_xml = dom_xml
        # the record is complete now: written and synced while QEMU works (one fsync off
        # the critical path), put in place once the snapshot exists
        staged = None if flags.no_metadata else store.stage(snap)
        try:
            if running and snap.memory == "external":
                assert rec is not None
                _running_with_memory(mgr, name, rec.qmp_socket, snap, plans, live=flags.live)
            elif running:
                assert rec is not None
                _running(mgr, name, rec.qmp_socket, snap, plans, quiesce=flags.quiesce)
            else:
                _shutoff(str(snap.name), plans)
            if plans[0].location == "external":
                _switch_sources(mgr, name, plans, running=running)
        except BaseException:
            if staged is not None:
                staged.discard()
            raise
        if staged is not None:
            staged.commit()
    return snap


def _refuse_taken(store: SnapshotStore, name: str) -> None:
    if store.exists(name):
        raise AlreadyExistsError(
            f"snapshot '{name}' of domain '{store.domain}' already exists",
            hint="choose another name, or delete the old snapshot first",
        )


def _redefine(store: SnapshotStore, snap: DomainSnapshot, *, current: bool) -> DomainSnapshot:
    if snap.parent and not store.exists(snap.parent):
        raise InvalidConfigError(
            f"snapshot '{snap.name}': its parent '{snap.parent}' does not exist",
            hint="redefine the parent first",
        )
    snap.state = snap.state or "shutoff"
    store.write(snap)
    if current:
        store.set_current(snap.name)
    return snap


def _shutoff(tag: str, plans: list[DiskPlan]) -> None:
    from pyvirt.storage import qemu_img  # lazy

    done: list[DiskPlan] = []
    try:
        for p in plans:
            if p.location == "internal":
                qemu_img.snapshot("create", p.path, tag)
            else:
                assert p.overlay is not None
                qemu_img.create(p.overlay, "qcow2", None, backing=p.path, backing_fmt=p.fmt)
            done.append(p)
    except BaseException:
        for p in done:  # all or nothing
            if p.location == "internal":
                qemu_img.snapshot("delete", p.path, tag)
            elif p.overlay:
                os.unlink(p.overlay)
        raise


def _running(
    mgr: DomainManager,
    name: str,
    qmp: object,
    snap: DomainSnapshot,
    plans: list[DiskPlan],
    *,
    quiesce: bool,
) -> None:
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy
    from pyvirt.service.domain import agent  # lazy

    # a plain-socket session: an internal snapshot is a few commands, and qemu.qmp's event
    # loop per session cost more CPU than pyvirt's whole bookkeeping (bench/snapshot.py)
    with SyncMonitor(qmp, name=name) as mon:  # type: ignore[arg-type]
        if plans[0].location == "internal":
            nodes = [node_of(mon, p.path) for p in plans]
            mon.snapshot_save(str(snap.name), nodes[0], nodes)
            return
        specs = _make_overlays(mgr, name, mon, plans)  # looks the nodes up itself
        frozen = False
        try:
            if quiesce:
                agent.fs_freeze(mgr, name)
                frozen = True
            mon.snapshot_overlays(specs)
        except BaseException:
            for p in plans:
                if p.overlay:
                    os.unlink(p.overlay)
            raise
        finally:
            if frozen:
                agent.fs_thaw(mgr, name)


def _make_overlays(
    mgr: DomainManager, name: str, mon: Monitor, plans: list[DiskPlan]
) -> list[OverlaySpec]:
    """Create the empty overlays of *plans* for the QEMU user; one spec per disk."""
    from pyvirt.drivers.qemu.monitor.snapshots import OverlaySpec  # lazy
    from pyvirt.service.domain import dac  # lazy
    from pyvirt.storage import qemu_img  # lazy

    specs = []
    stamp = int(time.time())
    for i, p in enumerate(plans):
        assert p.overlay is not None
        node = node_of(mon, p.path)
        size = int(qemu_img.info(p.path, p.fmt)["virtual-size"])
        qemu_img.create_overlay(p.overlay, size, backing=p.path, backing_fmt=p.fmt)
        dac.grant(mgr, name, p.overlay)
        specs.append(OverlaySpec(node, p.overlay, f"snap-{p.target}-{stamp}-{i}"))
    return specs


def _running_with_memory(
    mgr: DomainManager,
    name: str,
    qmp: object,
    snap: DomainSnapshot,
    plans: list[DiskPlan],
    *,
    live: bool,
) -> None:
    """External snapshot with the memory state: the guest's state goes to the memory file (a
    save image, while the guest runs with ``--live``, else paused from the start), then one
    ``transaction`` switches the disks to their overlays while QEMU is still paused, then the
    guest runs on. Any failure: no memory file, no overlays, the guest runs as before."""
    from pathlib import Path  # lazy

    from pyvirt.drivers.qemu import saveimage  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain import save, save_image  # lazy

    target = Path(str(snap.memory_file))
    live_xml = mgr.rundir(name).live_xml().decode()
    with Monitor(qmp, name=name) as mon:  # type: ignore[arg-type]
        was_running = mon.query_status()[1]
        tmp = saveimage.temp_path(target)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        specs: list[OverlaySpec] = []
        try:
            specs = _make_overlays(mgr, name, mon, plans)
            if was_running and not live:
                mon.stop()
            save.save_state(mon, name, fd, live_xml, running=was_running)
            mon.snapshot_overlays(specs)
            os.rename(tmp, target)
            save_image.fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            for p in plans:
                if p.overlay:
                    with contextlib.suppress(OSError):
                        os.unlink(p.overlay)
            raise
        finally:
            os.close(fd)
            if was_running:
                with contextlib.suppress(Exception):
                    mon.cont()


def _switch_sources(mgr: DomainManager, name: str, plans: list[DiskPlan], *, running: bool) -> None:
    """Make the overlays the disks' sources in the live and the persistent definition."""
    overlays = {p.target: p.overlay for p in plans if p.overlay}

    def switch(dom: Domain) -> None:
        for disk in dom.devices.disks:
            if disk.target_dev in overlays:
                disk.source_path = overlays[disk.target_dev]
                disk.format = "qcow2"

    if running:
        live = mgr.live_definition(name)
        switch(live)
        mgr.save_live(name, live)
    if mgr.store.exists(name):
        dom, rev = mgr.read_config(name)
        switch(dom)
        mgr.write_config(name, dom, rev)
