"""Reverting to a snapshot (``snapshot-revert``).

* internal with memory: the running QEMU is stopped and loads it (QMP ``snapshot-load``); a
  shut-off domain is started paused first. It then runs if the snapshot was taken running
  (or with ``--running``), else stays paused (or ``--paused``);
* internal disk-only: QEMU is stopped if it runs, ``qemu-img snapshot -a`` on each disk;
* external: QEMU is stopped if it runs; each disk gets a fresh overlay on the file the
  snapshot froze, so writes since the snapshot are dropped. The snapshot's own overlay is
  re-created empty when no other snapshot builds on it, else a new one ``OVERLAY-rN`` is
  made; the abandoned top (when it is pyvirt's and no snapshot needs it) is deleted.

Without ``--running``/``--paused`` the domain ends in the snapshot's state: a snapshot taken
of a running guest (``running``, ``paused``, ``disk-snapshot``) is started again (a
disk-only one boots from the reverted disks), one taken shut off leaves it shut off.

Revert to an internal snapshot that lives in a file the disk no longer writes to (an
external snapshot came after it) is refused: applying it would change the file the newer
overlay depends on.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.service.snapshot.disks import (
    base_of,
    file_of,
    known_files,
    live_domain,
    needed_files,
    revert_overlays,
)
from pyvirt.service.snapshot.store import SnapshotStore

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.model.snapshot import DomainSnapshot
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the snapshot verbs that need them.


def _current_sources(dom: Domain) -> dict[str, str]:
    return {
        d.target_dev: d.source_path for d in dom.devices.disks if d.target_dev and d.source_path
    }


def revert(
    mgr: DomainManager,
    ident: str,
    snapshot: str | None,
    *,
    running: bool = False,
    paused: bool = False,
    force: bool = False,
) -> str:
    """Revert domain *ident* to *snapshot* (None: the current one); returns its name.

    :raises InvalidConfigError: both ``running`` and ``paused``
    :raises InvalidStateError: the snapshot cannot be reverted to (see the module docstring)
    """
    from pyvirt.service.domain import lifecycle  # lazy

    if running and paused:
        raise InvalidConfigError("--running and --paused exclude each other")
    name = mgr.resolve(ident)
    store = SnapshotStore(mgr.paths, name)
    snapshot = snapshot or _current(store)
    snap = store.read(snapshot)
    del force  # accepted like virsh; nothing pyvirt does needs it
    active = mgr.live_record(name, cleanup=True) is not None
    dom = live_domain(mgr, name) if active else mgr.definition(name, inactive=True)
    sources = _current_sources(dom)
    if snap.is_internal:
        for disk in snap.disks:
            if disk.snapshot == "internal" and sources.get(disk.name or "") != disk.source_file:
                raise InvalidStateError(
                    f"snapshot '{snapshot}' lives in '{disk.source_file}', but disk "
                    f"'{disk.name}' now writes to '{sources.get(disk.name or '')}' (an external "
                    "snapshot came after it)",
                    hint="revert to that external snapshot's parent chain first, or delete "
                    "the external snapshot (which merges it)",
                )
    if snap.memory == "external" and not os.path.isfile(str(snap.memory_file)):
        raise InvalidStateError(
            f"snapshot '{snapshot}': its memory file '{snap.memory_file}' is gone",
            hint="delete the snapshot with --metadata",
        )
    if snap.memory == "internal":
        if not active:
            lifecycle.start(mgr, name, paused=True)
        _load(mgr, name, snap, run=running or (not paused and snap.state == "running"))
    else:
        if active:
            lifecycle.destroy(mgr, name)
        with mgr.locked(name):
            if snap.is_internal:
                _apply_internal(snap)
            else:
                _external(mgr, name, store, snap)
            if snap.memory == "external":
                _resume_memory(mgr, name, snap, run=True if running else False if paused else None)
        cold = snap.memory != "external"  # an external memory state was resumed above
        if cold and (running or paused or snap.state in ("running", "paused", "disk-snapshot")):
            lifecycle.start(mgr, name, paused=paused or (not running and snap.state == "paused"))
    store.set_current(snapshot)
    return snapshot


def _current(store: SnapshotStore) -> str:
    current = store.current()
    if current is None:
        raise InvalidStateError(
            f"domain '{store.domain}' has no current snapshot", hint="name a snapshot"
        )
    return current


def _load(mgr: DomainManager, name: str, snap: DomainSnapshot, *, run: bool) -> None:
    """Stop the vCPUs, load *snap* (disks and VM state), then run them if *run*; one QMP
    session, the runtime record updated as ``suspend``/``resume`` do."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.snapshot.create import node_of  # lazy

    with mgr.locked(name):
        _, rec = mgr.running(name)
        files = [d.source_file for d in snap.disks if d.snapshot == "internal" and d.source_file]
        with Monitor(rec.qmp_socket, name=name) as mon:
            nodes = [node_of(mon, f) for f in files]
            mon.stop()
            rec.paused = True
            rec.reason = None
            try:
                mon.snapshot_load(str(snap.name), nodes[0], nodes)
                if run:
                    mon.cont()
                    rec.paused = False
                    rec.reason = "unpaused"
            finally:
                mgr.rundir(name).save_record(rec)


def _resume_memory(
    mgr: DomainManager, name: str, snap: DomainSnapshot, *, run: bool | None
) -> None:
    """Start *name* from the external snapshot's memory file (its disks now point at fresh
    overlays on the files the snapshot froze)."""
    from pathlib import Path  # lazy

    from pyvirt.service.domain import save  # lazy

    save.resume_snapshot_state(mgr, name, Path(str(snap.memory_file)), running=run)


def _apply_internal(snap: DomainSnapshot) -> None:
    from pyvirt.storage import qemu_img  # lazy

    for disk in snap.disks:
        if disk.snapshot == "internal" and disk.source_file:
            qemu_img.snapshot("apply", disk.source_file, str(snap.name))


def _external(mgr: DomainManager, name: str, store: SnapshotStore, snap: DomainSnapshot) -> None:
    from pyvirt.storage import qemu_img  # lazy

    snaps = store.all()
    needed = needed_files(snaps)
    ours = known_files(snaps)
    dom, rev = mgr.read_config(name)
    by_target = {d.target_dev: d for d in dom.devices.disks}
    for entry in snap.disks:
        if entry.snapshot != "external" or not entry.name or not entry.source_file:
            continue
        disk = by_target.get(entry.name)
        if disk is None:
            raise InvalidStateError(f"domain '{name}' has no disk '{entry.name}' any more")
        base, base_fmt = base_of(snap, entry.name)
        overlay = entry.source_file
        top = file_of(disk, "revert")
        if top != overlay and top not in needed and top in ours and top != base:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(top)  # an abandoned branch nobody needs
        new = overlay
        if overlay in needed:
            taken = set(revert_overlays(overlay))
            k = 1
            while f"{overlay}-r{k}" in taken or os.path.exists(f"{overlay}-r{k}"):
                k += 1
            new = f"{overlay}-r{k}"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(new)
        qemu_img.create(new, "qcow2", None, backing=base, backing_fmt=base_fmt)
        disk.source_path = new
        disk.format = "qcow2"
    mgr.write_config(name, dom, rev)
