"""Backup jobs (``backup-begin``, ``backup-dumpxml``, ``domjobinfo``, ``domjobabort``).

* push mode: QMP ``blockdev-backup`` of each disk into a target image pyvirt creates
  (``sync=full``, or ``sync=incremental`` with a temporary bitmap merged from the bitmaps of
  ``<incremental>`` and the checkpoints after it); the job runs inside QEMU and is finished
  by whoever looks next (:func:`poll`, :func:`wait`): nodes removed, temporary bitmaps
  dropped, a failed or aborted backup's partial targets deleted;
* pull mode: each disk is fleeced (``blockdev-backup sync=none`` into a scratch qcow2 overlay
  backed by the live disk, so the export keeps the data of the moment the backup began) and
  exported read-only by QEMU's NBD server on a unix socket or loopback TCP, with the merged
  dirty bitmap as ``qemu:dirty-bitmap:NAME``; :func:`abort` ends it and removes the scratch
  files.

The bitmap changes, a new checkpoint (``--checkpointxml``) and the start of the jobs are one
QMP ``transaction``: one point in time for every disk. A checkpoint's bitmap found missing,
or inconsistent (QEMU was killed while it had the image open), makes that disk's backup full,
with a warning, and the lost bitmaps are re-created empty at this point: the full backup just
taken is the base later incremental backups build on.

What runs is recorded in ``RUN_DIR/backup.json`` (gone with the domain's run directory); the
last finished job in ``RUN_DIR/backup-done.json`` (``domjobinfo --completed``).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    MonitorError,
    NotFoundError,
    UnsupportedError,
)
from pyvirt.service.checkpoint.bitmaps import DiskImage, disk_images
from pyvirt.service.checkpoint.store import CheckpointStore, CheckpointTree
from pyvirt.state.atomic import atomic_write

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor.backup import TxAction
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.checkpoint import BackupDisk, DomainBackup, DomainCheckpoint
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the backup verbs.

STATE = "backup.json"
DONE = "backup-done.json"
#: seconds QEMU gets to end a cancelled job or release a node
SETTLE = 30.0
LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class BackupJobInfo:
    """A domain's backup job as ``domjobinfo`` shows it.

    :ivar state: ``running``, ``completed``, ``failed`` or ``cancelled``
    :ivar done: bytes copied (push) of ``total``
    """

    mode: str
    state: str
    done: int
    total: int
    started: float
    finished: float | None = None
    error: str = ""
    incremental: str | None = None
    checkpoint: str | None = None
    disks: list[str] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        """Seconds the job ran (so far)."""
        return (self.finished or time.time()) - self.started

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "mode": self.mode,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "incremental": self.incremental,
            "checkpoint": self.checkpoint,
            "disks": list(self.disks),
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> BackupJobInfo:
        """Back from :meth:`to_json`."""
        return cls(**raw)


@dataclass(frozen=True)
class BackupStarted:
    """What :func:`begin` did: the backup XML with every default filled in, the warnings
    (lost bitmaps) and the checkpoint it created."""

    xml: str
    warnings: list[str]
    checkpoint: str | None


# -- state files -------------------------------------------------------------------------
def _read(run: Path, what: str = STATE) -> dict[str, Any] | None:
    try:
        data = json.loads((run / what).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write(run: Path, state: dict[str, Any], what: str = STATE) -> None:
    atomic_write(run / what, json.dumps(state).encode())


def active(mgr: DomainManager, name: str) -> bool:
    """Whether domain *name* (resolved) has a backup job recorded."""
    return (mgr.run_dir(name) / STATE).is_file()


# -- begin -------------------------------------------------------------------------------
def begin(
    mgr: DomainManager,
    ident: str,
    backup: DomainBackup,
    checkpoint: DomainCheckpoint | None = None,
    *,
    reuse_external: bool = False,
    bandwidth: int | None = None,
) -> BackupStarted:
    """Start the backup *backup* of running domain *ident* (and create *checkpoint* at the
    same point in time); a push backup copies at most *bandwidth* bytes per second.

    :raises InvalidStateError: it is not running, or a backup job is active already
    :raises NotFoundError: the ``<incremental>`` checkpoint does not exist
    :raises InvalidConfigError: unknown disks, existing targets (without *reuse_external*)
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(
                f"domain '{name}' is not running",
                hint="backups are taken of running domains; start it first",
            )
        run = mgr.run_dir(name)
        if _read(run) is not None:
            raise InvalidStateError(
                f"a backup job is already active on domain '{name}'",
                hint=f"wait for it to finish, or end it with 'domjobabort {name}'",
            )
        store = CheckpointStore(mgr.paths, name)
        cps = store.all()
        if backup.incremental and backup.incremental not in cps:
            raise NotFoundError(
                f"domain '{name}' has no checkpoint '{backup.incremental}'",
                hint=f"list them with 'checkpoint-list {name}'",
            )
        backup.mode = backup.mode or "push"
        images = _chosen(mgr, name, backup)
        new_images: list[DiskImage] = []
        prev: DomainCheckpoint | None = None
        if checkpoint is not None:
            from pyvirt.service.checkpoint.create import prepare  # lazy

            new_images, prev = prepare(mgr, name, checkpoint, running=True)
        state: dict[str, Any] = {
            "mode": backup.mode,
            "started": time.time(),
            "incremental": backup.incremental,
            "checkpoint": checkpoint.name if checkpoint is not None else None,
            "nbd": False,
            "disks": [],
        }
        with Monitor(rec.qmp_socket, name=name) as mon:
            try:
                new = (checkpoint, new_images, prev) if checkpoint is not None else None
                warnings = _start(mgr, name, mon, backup, images, cps, state, new,
                                  reuse_external=reuse_external,
                                  bandwidth=bandwidth)  # fmt: skip
            except BaseException:
                _teardown(mgr, name, mon, state, keep_targets=False)
                raise
        state["xml"] = backup.to_xml()
        _write(run, state)
        if checkpoint is not None:
            store.write(checkpoint, new=True)
        return BackupStarted(backup.to_xml(), warnings, state["checkpoint"])


def _chosen(mgr: DomainManager, name: str, backup: DomainBackup) -> list[DiskImage]:
    images = disk_images(mgr.live_definition(name))
    for entry in backup.disks:
        if entry.name not in images and entry.backup != "no":
            raise InvalidConfigError(
                f"domain '{name}' has no writable disk '{entry.name}' to back up",
                hint="name disks by target (vda), as 'domblklist' shows them",
            )
    chosen = []
    for target, img in images.items():
        spec = backup.disk(target)
        if spec is not None and spec.backup == "no":
            continue
        chosen.append(img)
    if not chosen:
        raise InvalidConfigError(f"domain '{name}' has no disk to back up")
    return chosen


def _start(
    mgr: DomainManager,
    name: str,
    mon: Monitor,
    backup: DomainBackup,
    images: list[DiskImage],
    cps: dict[str, DomainCheckpoint],
    state: dict[str, Any],
    new: tuple[DomainCheckpoint, list[DiskImage], DomainCheckpoint | None] | None,
    *,
    reuse_external: bool,
    bandwidth: int | None = None,
) -> list[str]:
    """Prepare the nodes and run the transaction; fills *state* as it goes (for clean-up)."""
    from pyvirt.drivers.qemu.monitor.backup import tx_backup, tx_bitmap_add  # lazy
    from pyvirt.service.snapshot.create import node_of  # lazy

    tree = CheckpointTree(cps)
    newest = tree.newest()
    inc = backup.incremental
    new_cp = state["checkpoint"]
    have = mon.dirty_bitmaps()
    warnings: list[str] = []
    repair: list[TxAction] = []
    jobs: list[TxAction] = []
    pull = backup.mode == "pull"
    stamp = int(state["started"])
    for img in images:
        t = img.target
        spec = backup.disk(t) or backup.add_disk(name=t)
        spec.backup, spec.type = "yes", "file"
        node = node_of(mon, img.path)
        on_node = {b.name: b for b in have.get(node, [])}
        sources: list[str] = []
        if inc:
            wanted = [cps[c].bitmaps().get(t) for c in tree.since(inc)]
            lost = [w for w in wanted if w is None or w not in on_node]
            broken = [w for w in wanted if w in on_node and on_node[w].inconsistent]
            if lost or broken:
                why = "inconsistent (QEMU did not stop cleanly)" if broken else "missing"
                warnings.append(f"checkpoint {inc}'s bitmap on {t} is {why}; taking a full backup")
                repair += _repair(mon, node, t, cps, on_node, newest, new_cp)
            else:
                sources = [w for w in wanted if w]
        spec.backupmode = "incremental" if sources else "full"
        spec.incremental = inc if sources else None
        tmp = (spec.exportbitmap or f"backup-{t}") if sources else None
        entry: dict[str, Any] = {
            "target": t, "node": node, "job": f"backup-{t}", "tmp": None,
            "nodes": [], "files": [], "created": [], "export": None,
        }  # fmt: skip
        state["disks"].append(entry)
        if tmp is not None:
            from pyvirt.drivers.qemu.monitor.backup import tx_bitmap_merge  # lazy

            jobs += [
                tx_bitmap_add(node, tmp, persistent=False, disabled=True),
                tx_bitmap_merge(node, tmp, sources),
            ]
            entry["tmp"] = tmp
        if pull:
            scratch = _scratch(mgr, name, mon, img, spec, entry, node, stamp)
            jobs.append(tx_backup(entry["job"], node, scratch, sync="none"))
            spec.exportname = spec.exportname or t
            if tmp is not None:
                spec.exportbitmap = tmp
        else:
            target = _target(mgr, name, mon, img, spec, entry, stamp, reuse_external)
            sync = "incremental" if tmp is not None else "full"
            jobs.append(
                tx_backup(entry["job"], node, target, sync=sync, bitmap=tmp, speed=bandwidth)
            )
    actions = repair
    if new is not None:
        from pyvirt.service.checkpoint.create import live_actions  # lazy

        actions += live_actions(mon, *new)
    mon.transaction(actions + jobs)
    if pull:
        _export(mgr, name, mon, backup, state)
    return warnings


def _repair(
    mon: Monitor,
    node: str,
    target: str,
    cps: dict[str, DomainCheckpoint],
    on_node: dict[str, Any],
    newest: str | None,
    new_cp: str | None,
) -> list[TxAction]:
    """Remove disk *target*'s lost or inconsistent checkpoint bitmaps and return the actions
    that re-create them empty (recording: the newest, unless a new checkpoint comes)."""
    from pyvirt.drivers.qemu.monitor.backup import tx_bitmap_add  # lazy

    actions: list[TxAction] = []
    for cp_name, cp in cps.items():
        bitmap = cp.bitmaps().get(target)
        if bitmap is None:
            continue
        cur = on_node.get(bitmap)
        if cur is not None and not cur.inconsistent:
            continue
        if cur is not None:
            mon.bitmap_remove(node, bitmap)
        recording = cp_name == newest and new_cp is None
        actions.append(tx_bitmap_add(node, bitmap, disabled=not recording))
    return actions


def _size(img: DiskImage) -> int:
    from pyvirt.storage import qemu_img  # lazy

    return int(qemu_img.info(img.path, img.fmt)["virtual-size"])


def _new_file(
    mgr: DomainManager, name: str, path: str, fmt: str, size: int, entry: dict[str, Any]
) -> None:
    from pyvirt.service.domain import dac  # lazy
    from pyvirt.storage import qemu_img  # lazy

    if os.path.exists(path):
        raise InvalidConfigError(
            f"'{path}' exists already",
            hint="name another file, or pass --reuse-external to write into it",
        )
    qemu_img.create(path, fmt, size)
    entry["created"].append(path)
    entry["files"].append(path)
    dac.grant(mgr, name, path)


def _target(
    mgr: DomainManager,
    name: str,
    mon: Monitor,
    img: DiskImage,
    spec: BackupDisk,
    entry: dict[str, Any],
    stamp: int,
    reuse_external: bool,
) -> str:
    """Create (or with *reuse_external* open) the push target; returns its node."""
    fmt = spec.driver_type or "qcow2"
    if fmt not in ("qcow2", "raw"):
        raise UnsupportedError(f"disk '{img.target}': backup targets are qcow2 or raw, not {fmt}")
    spec.driver_type = fmt
    path = spec.target_file or f"{os.path.splitext(img.path)[0]}.backup-{stamp}.{fmt}"
    spec.target_file = path
    if reuse_external:
        if not os.path.isfile(path):
            raise NotFoundError(f"backup target '{path}' does not exist (--reuse-external)")
        from pyvirt.service.domain import dac  # lazy

        entry["files"].append(path)
        dac.grant(mgr, name, path)
    else:
        _new_file(mgr, name, path, fmt, _size(img), entry)
    return _open(mon, entry, path, fmt, f"backup-{img.target}-target")


def _scratch(
    mgr: DomainManager,
    name: str,
    mon: Monitor,
    img: DiskImage,
    spec: BackupDisk,
    entry: dict[str, Any],
    node: str,
    stamp: int,
) -> str:
    """Create the pull mode's scratch overlay of the live disk; returns its node."""
    path = spec.scratch_file or f"{img.path}.scratch-{stamp}"
    spec.scratch_file = path
    spec.driver_type = "qcow2"
    _new_file(mgr, name, path, "qcow2", _size(img), entry)
    return _open(mon, entry, path, "qcow2", f"backup-{img.target}-scratch", backing=node)


def _open(
    mon: Monitor, entry: dict[str, Any], path: str, fmt: str, node: str, backing: str = ""
) -> str:
    storage = f"{node}-file"
    mon.blockdev_add({"driver": "file", "node-name": storage, "filename": path})
    entry["nodes"].insert(0, storage)
    props: dict[str, Any] = {"driver": fmt, "node-name": node, "file": storage}
    if backing:
        props["backing"] = backing
    mon.blockdev_add(props)
    entry["nodes"].insert(0, node)
    return node


def _export(
    mgr: DomainManager, name: str, mon: Monitor, backup: DomainBackup, state: dict[str, Any]
) -> None:
    """Start the NBD server and export each disk's scratch node (with its bitmap)."""
    backup.transport = backup.transport or "unix"
    if backup.transport == "unix":
        from pyvirt.service.domain import dac  # lazy

        sock = backup.server_socket or str(dac.scratch_dir(mgr, name) / "backup.sock")
        backup.server_socket = sock
        mon.nbd_server_start_unix(sock)
    else:
        host = backup.server_name or "localhost"
        if host not in LOOPBACK and not host.startswith("127."):
            raise UnsupportedError(
                f"NBD export on '{host}': pyvirt exports backups on loopback or unix sockets "
                "only (no TLS)",
                hint="use <server transport='unix' socket=...> or name='localhost'",
            )
        backup.server_name = host
        mon.nbd_server_start_tcp(host, int(backup.server_port or 10809))
    state["nbd"] = True
    for entry in state["disks"]:
        spec = backup.disk(entry["target"])
        assert spec is not None
        bitmaps = [entry["tmp"]] if entry["tmp"] else []
        mon.nbd_export_add(entry["job"], entry["nodes"][0], spec.exportname or "", bitmaps=bitmaps)
        entry["export"] = entry["job"]


# -- ending ------------------------------------------------------------------------------
def _settle(mon: Monitor, job_id: str) -> str:
    """Wait for job *job_id* to conclude; dismiss it; returns its error ("" when none)."""
    deadline = time.monotonic() + SETTLE
    error = ""
    while time.monotonic() < deadline:
        job = next((j for j in mon.query_block_job_list() if j.id == job_id), None)
        if job is None:
            return error
        if job.concluded:
            error = job.error
            break
        time.sleep(0.05)
    with contextlib.suppress(MonitorError):
        mon.job_dismiss(job_id)
    return error


def _teardown(
    mgr: DomainManager, name: str, mon: Monitor, state: dict[str, Any], *, keep_targets: bool
) -> None:
    """Undo what :func:`begin` set up (idempotent, errors logged away): exports, the NBD
    server, jobs, nodes, temporary bitmaps, scratch files (and partial targets)."""
    from pyvirt.service.domain import dac  # lazy

    for entry in state["disks"]:
        if entry.get("export"):
            with contextlib.suppress(MonitorError):
                mon.block_export_del(entry["export"])
    if state.get("nbd"):
        with contextlib.suppress(MonitorError):
            mon.nbd_server_stop()
    jobs = {j.id: j for j in mon.query_block_job_list()}
    for entry in state["disks"]:
        job = jobs.get(entry["job"])
        if job is None:
            continue
        if not job.concluded:
            with contextlib.suppress(MonitorError):
                mon.job_cancel(entry["job"])
        _settle(mon, entry["job"])
    for entry in state["disks"]:
        for node in entry["nodes"]:
            _blockdev_del(mon, node)
        if entry.get("tmp"):
            with contextlib.suppress(MonitorError):
                mon.bitmap_remove(entry["node"], entry["tmp"])
    for entry in state["disks"]:
        for path in entry["files"]:
            dac.release(mgr, name, path)
            is_scratch = state["mode"] == "pull"
            if is_scratch or (path in entry["created"] and not keep_targets):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)


def _blockdev_del(mon: Monitor, node: str) -> None:
    deadline = time.monotonic() + 5.0
    while True:
        try:
            mon.blockdev_del(node)
            return
        except MonitorError as err:
            if "not found" in str(err).lower() or time.monotonic() > deadline:
                return
            time.sleep(0.05)  # an export or job may still hold it


def _info(
    state: dict[str, Any], status: str, done: int, total: int, error: str = ""
) -> BackupJobInfo:
    finished = None if status == "running" else time.time()
    return BackupJobInfo(
        mode=state["mode"],
        state=status,
        done=done,
        total=total,
        started=state["started"],
        finished=finished,
        error=error,
        incremental=state.get("incremental"),
        checkpoint=state.get("checkpoint"),
        disks=[e["target"] for e in state["disks"]],
    )


def poll(mgr: DomainManager, ident: str) -> BackupJobInfo | None:
    """The domain's backup job (None: none); a push backup that ended is finished here."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(ident)
    run = mgr.run_dir(name)
    if _read(run) is None:
        return None
    with mgr.locked(name):
        state = _read(run)
        rec = mgr.live_record(name, cleanup=True)
        if state is None or rec is None:
            return None
        with Monitor(rec.qmp_socket, name=name) as mon:
            jobs = {j.id: j for j in mon.query_block_job_list()}
            mine = [jobs.get(e["job"]) for e in state["disks"]]
            done = sum(j.done for j in mine if j is not None)
            total = sum(j.total for j in mine if j is not None)
            if state["mode"] == "pull" or not all(j is None or j.concluded for j in mine):
                return _info(state, "running", done, total)
            errors = [j.error for j in mine if j is not None and j.error]
            missing = any(j is None for j in mine)
            _teardown(mgr, name, mon, state, keep_targets=not errors and not missing)
        error = "; ".join(errors) or ("QEMU lost the backup job" if missing else "")
        info = _info(state, "failed" if error else "completed", done, total, error)
        _finish(run, info)
        return info


def _finish(run: Path, info: BackupJobInfo) -> None:
    _write(run, info.to_json(), DONE)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(run / STATE)


def completed(mgr: DomainManager, ident: str) -> BackupJobInfo | None:
    """The last finished backup job of the running domain (``domjobinfo --completed``)."""
    raw = _read(mgr.run_dir(mgr.resolve(ident)), DONE)
    return BackupJobInfo.from_json(raw) if raw is not None else None


def wait(
    mgr: DomainManager,
    ident: str,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    timeout: float | None = None,
) -> BackupJobInfo:
    """Wait for the push backup to end (a pull backup: return at once); a cancel or the
    timeout aborts it.

    :raises InvalidStateError: no backup job is active
    :raises CancelledError: cancelled or timed out (the job was aborted)
    :raises OperationFailedError: the backup failed (its partial targets are removed)
    """
    from pyvirt.errors import OperationFailedError  # lazy
    from pyvirt.progress import CancelledError  # lazy

    deadline = None if timeout is None else time.monotonic() + timeout
    seen = False
    while True:
        info = poll(mgr, ident)
        if info is None and seen:  # another poller (domjobinfo, statistics) finished it
            info = completed(mgr, ident)
        if info is None:
            raise InvalidStateError(f"no backup job is active on domain '{mgr.resolve(ident)}'")
        seen = True
        if progress is not None and info.total:
            progress(info.done, info.total)
        if info.state == "failed":
            raise OperationFailedError(f"backup of domain '{mgr.resolve(ident)}' failed: "
                                       f"{info.error}")  # fmt: skip
        if info.state != "running" or info.mode == "pull":
            return info
        late = deadline is not None and time.monotonic() > deadline
        if late or (cancel is not None and cancel.wait(0.2)):
            abort(mgr, ident)
            raise CancelledError("backup cancelled" if not late else "backup timed out")
        if cancel is None:
            time.sleep(0.2)


def abort(mgr: DomainManager, ident: str) -> BackupJobInfo:
    """End the backup job: a pull backup's export stops (its normal end), a push backup is
    cancelled and its partial targets are removed.

    :raises InvalidStateError: no backup job is active
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(ident)
    run = mgr.run_dir(name)
    with mgr.locked(name):
        state = _read(run)
        rec = mgr.live_record(name, cleanup=True)
        if state is None or rec is None:
            raise InvalidStateError(f"no backup job is active on domain '{name}'")
        with Monitor(rec.qmp_socket, name=name) as mon:
            jobs = {j.id: j for j in mon.query_block_job_list()}
            mine = [jobs.get(e["job"]) for e in state["disks"]]
            done = sum(j.done for j in mine if j is not None)
            total = sum(j.total for j in mine if j is not None)
            # a push backup that finished meanwhile is completed, not cancelled
            finished = state["mode"] == "push" and all(
                j is not None and j.concluded and not j.error for j in mine
            )
            _teardown(mgr, name, mon, state, keep_targets=finished)
        status = "completed" if state["mode"] == "pull" or finished else "cancelled"
        info = _info(state, status, done, total)
        _finish(run, info)
        return info


def backup_xml(mgr: DomainManager, ident: str) -> str:
    """The XML of the active backup job (``backup-dumpxml``).

    :raises InvalidStateError: no backup job is active
    """
    name = mgr.resolve(ident)
    state = _read(mgr.run_dir(name))
    if state is None:
        raise InvalidStateError(f"no backup job is active on domain '{name}'")
    return str(state["xml"])
