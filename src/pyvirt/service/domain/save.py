"""Saving a running domain's state to a file and restoring it (virsh ``save``, ``restore``,
``managedsave``, ``save-image-*``, ``managedsave-*``).

A save is an outgoing migration into a pipe; this process copies the pipe into a temporary
file after pyvirt's header (:mod:`pyvirt.drivers.qemu.saveimage`). The guest keeps running
during the first pass over its memory; QEMU pauses it for the rest (a long allowed downtime
ends the save after that pass). Only when the stream is complete, the header final and the
file fsync'ed and renamed into place does QEMU quit: the domain becomes ``shut off
(saved)``. Any failure before that (a full disk, a cancel, a QEMU error) cancels the
migration and the guest runs on; a killed saver closes the pipe, QEMU's write fails and QEMU
resumes the guest itself. Either way no half file is left under the target name.

A restore starts QEMU from the XML in the image with ``-incoming defer`` and ``-S``, hands
it the image (an fd at the stream's offset) with ``migrate-incoming`` and resumes the vCPUs
when the image says it ran (``running (restored)``). It first checks that every writable
disk is still what it was at the save (same size, not modified since): otherwise the guest's
memory would not match its disks.

A managed save is a save to ``CONFIG/qemu/save/NAME.save`` (0600); ``start`` restores it and
removes it. The image files themselves (managed images, the XML they hold, ``save-image-*``)
are :mod:`pyvirt.service.domain.save_image`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError, MonitorError, OperationFailedError
from pyvirt.progress import CancelledError, CancelToken, Progress
from pyvirt.service.domain import save_image
from pyvirt.service.domain.types import DomainStatus, Reason
from pyvirt.state.atomic import atomic_write

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.drivers.qemu.runtime import RuntimeRecord
    from pyvirt.drivers.qemu.saveimage import SaveHeader
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy``: ``start`` imports this module to look for a
# managed save; QMP, the model and the save image code load only for the verbs that use them.

log = logging.getLogger(__name__)

#: no bandwidth limit for a save to a local file (QEMU's default is 128 MiB/s)
UNLIMITED_BANDWIDTH = 1 << 50
#: the longest pause QEMU allows (ms): the save completes after one pass over the memory
MAX_DOWNTIME_MS = 2_000_000
_FD_NAME = "pyvirt-save"
_POLL = 0.05


def _writable_disks(dom: Domain) -> list[tuple[str, str]]:
    """(target, source path) of every writable, unshared disk with a local source."""
    out = []
    for disk in dom.devices.disks:
        if disk.readonly or disk.shareable or disk.device in ("cdrom", "floppy"):
            continue
        if disk.source_path and disk.target_dev:
            out.append((disk.target_dev, disk.source_path))
    return out


# -- save ------------------------------------------------------------------------------------
def save(
    mgr: DomainManager,
    ident: str,
    path: Path | None,
    *,
    xml: str | None = None,
    running: bool | None = None,
    bypass_cache: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """Save running domain *ident* to *path* (None: its managed save image) and stop it.

    :param xml: the XML to store instead of the live one (same hardware, other disk paths)
    :param running: restore into running (True) or paused (False) state; None: as it is now
    :param bypass_cache: drop the image from the host's page cache once written
    :param progress: called with (bytes of guest memory done, total)
    :param cancel: cancels the save; the guest runs on and no file is left
    :returns: the domain's name
    :raises InvalidStateError: it is not running
    :raises CancelledError: cancelled
    :raises OperationFailedError: QEMU or the file system failed (the guest runs on)
    """
    from pyvirt.drivers.qemu import saveimage  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(
                f"domain '{name}' is not running", hint="only a running domain can be saved"
            )
        target = save_image.managed_path(mgr, name) if path is None else Path(path).absolute()
        if path is None:
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        elif not target.parent.is_dir():
            raise InvalidConfigError(f"directory '{target.parent}' does not exist")
        elif target.is_dir():
            raise InvalidConfigError(f"'{target}' is a directory; give a file name")
        live_xml = mgr.rundir(name).live_xml().decode()
        stored = save_image.checked_xml(mgr, live_xml, xml) if xml else live_xml
        dom = mgr.live_definition(name)
        saveimage.remove_stale_temps(target)
        tmp = saveimage.temp_path(target)
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            _save_to(mgr, name, rec, fd, stored, dom, running=running, progress=progress,
                     cancel=cancel)  # fmt: skip
            os.rename(tmp, target)
            save_image.fsync_dir(target.parent)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            _resume_after_failure(rec, name)
            raise
        finally:
            if bypass_cache:
                with contextlib.suppress(OSError):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        _stop_saved(mgr, name, rec)
    return name


def _save_to(
    mgr: DomainManager,
    name: str,
    rec: RuntimeRecord,
    fd: int,
    xml: str,
    dom: Domain,
    *,
    running: bool | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> None:
    """Migrate the guest into *fd* after a header; leaves QEMU paused with the complete,
    durable image (the caller renames it into place)."""
    from pyvirt.drivers.qemu import saveimage  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    with Monitor(rec.qmp_socket, name=name) as mon:
        was_running = mon.query_status()[1]
        header = save_state(
            mon, name, fd, xml, running=was_running if running is None else running,
            progress=progress, cancel=cancel,
        )  # fmt: skip
    # QEMU is paused now and has flushed and let go of the disks: fingerprint them
    try:
        stamps = tuple(saveimage.DiskStamp.of(t, p) for t, p in _writable_disks(dom))
    except OSError as err:
        raise OperationFailedError(f"cannot examine a disk of domain '{name}': {err}") from err
    saveimage.write_header(fd, header.with_(disks=stamps), header.stream_offset)
    os.fsync(fd)


def save_state(
    mon: Monitor,
    name: str,
    fd: int,
    xml: str,
    *,
    running: bool,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> SaveHeader:
    """Write pyvirt's header (*xml*, restore into *running*) and the guest's state into the
    empty file *fd*, fsync'ed; QEMU ends paused (``postmigrate``). Also the memory file of an
    external snapshot.

    :returns: the final header (stream offset and length, no disk stamps)
    :raises CancelledError: cancelled (the migration is cancelled; QEMU runs on)
    :raises OperationFailedError: QEMU failed or the file could not be written
    """
    from pyvirt.drivers.qemu import saveimage  # lazy

    header = saveimage.SaveHeader(xml=xml, running=running)
    offset = saveimage.stream_offset_for(header)
    saveimage.write_header(fd, header, offset)
    os.lseek(fd, offset, os.SEEK_SET)
    _migrate(mon, name, fd, progress, cancel)
    length = os.fstat(fd).st_size - offset
    final = header.with_(stream_length=length, saved_at=time.time(), stream_offset=offset)
    saveimage.write_header(fd, final, offset)
    os.fsync(fd)
    return final


class _Copier(threading.Thread):
    """Copies the migration pipe into the image (``splice``: no copy through user space);
    closing the pipe on any error makes QEMU's migration fail, so the guest runs on."""

    def __init__(self, pipe: int, out: int) -> None:
        super().__init__(name="pyvirt-save-copier", daemon=True)
        self.pipe, self.out = pipe, out
        self.error: OSError | None = None

    def run(self) -> None:
        try:
            while os.splice(self.pipe, self.out, 1 << 20) > 0:
                pass
        except OSError as err:
            self.error = err
        finally:
            os.close(self.pipe)


def _migrate(
    mon: Monitor, name: str, fd: int, progress: Progress | None, cancel: CancelToken | None
) -> None:
    """Run the migration into *fd* through a pipe until it completed.

    :raises CancelledError: *cancel* was set (the migration is cancelled)
    :raises OperationFailedError: QEMU failed or the image could not be written
    """
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    r, w = os.pipe2(os.O_CLOEXEC)
    with contextlib.suppress(OSError):
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ: fewer wake-ups
    copier = _Copier(r, fd)
    copier.start()
    try:
        mon.set_migration_parameters(
            max_bandwidth=UNLIMITED_BANDWIDTH, downtime_limit_ms=MAX_DOWNTIME_MS
        )
        mon.getfd(w, _FD_NAME)
    finally:
        os.close(w)
    try:
        try:
            mon.migrate(f"fd:{_FD_NAME}")
        except QmpCommandError as err:  # a migration blocker (a device that cannot migrate)
            with contextlib.suppress(MonitorError):
                mon.closefd(_FD_NAME)  # QEMU's end of the pipe: the copier sees EOF
            raise OperationFailedError(
                f"saving domain '{name}' failed: {err.desc}", hint="the guest runs on"
            ) from err
        while True:
            st = mon.query_migrate()
            if st.finished:
                break
            if progress is not None and st.total:
                progress(st.total - st.remaining, st.total)
            if cancel is not None and cancel.cancelled:
                mon.migrate_cancel()
                _wait_finished(mon)
                raise CancelledError(f"saving domain '{name}' cancelled; it runs on")
            time.sleep(_POLL)
    except BaseException:
        with contextlib.suppress(MonitorError):
            if not mon.query_migrate().finished:
                mon.migrate_cancel()
        copier.join(10)
        raise
    copier.join(30)
    if copier.error is not None:
        raise _write_error(name, copier.error)
    if st.status != "completed":
        detail = st.error or f"migration {st.status}"
        raise OperationFailedError(f"saving domain '{name}' failed: {detail}")
    if copier.is_alive():
        raise OperationFailedError(f"saving domain '{name}' failed: QEMU kept the stream open")
    if progress is not None:
        progress(st.total, st.total)
    # a cancel that came while the last bytes went is still honoured: the image is not in
    # place yet, so the caller drops it and runs the guest again
    if cancel is not None and cancel.cancelled:
        raise CancelledError(f"saving domain '{name}' cancelled; it runs on")


def _wait_finished(mon: Monitor, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not mon.query_migrate().finished and time.monotonic() < deadline:
        time.sleep(_POLL)


def _write_error(name: str, err: OSError) -> OperationFailedError:
    from pyvirt.state.atomic import DISK_FULL  # lazy

    if err.errno in DISK_FULL:
        return OperationFailedError(
            f"saving domain '{name}' failed: the disk is full; it runs on",
            hint="free space where the image goes and retry",
        )
    return OperationFailedError(f"saving domain '{name}' failed: {err.strerror or err}")


def _resume_after_failure(rec: RuntimeRecord, name: str) -> None:
    """After a failed or cancelled save: run the guest again if QEMU left it paused after a
    completed migration (it resumes it itself after a failed one)."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    try:
        with Monitor(rec.qmp_socket, name=name) as mon:
            status, _ = mon.query_status()
            if status == "postmigrate" and not rec.paused:
                mon.cont()
    except MonitorError as err:
        log.warning("domain '%s': cannot resume after a failed save: %s", name, err)


def _stop_saved(mgr: DomainManager, name: str, rec: RuntimeRecord) -> None:
    """Make QEMU exit after a complete save; the domain is ``shut off (saved)``."""
    from pyvirt.drivers.qemu import process  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    mgr.rundir(name).mark_destroying()
    with contextlib.suppress(MonitorError), Monitor(rec.qmp_socket, name=name) as mon:
        mon.quit()
    process.terminate(rec.pid, rec.starttime, timeout=10.0)
    mgr.reap(name, rec)
    if mgr.store.exists(name):  # a transient domain is gone until its restore
        _set_last_reason(mgr, name, Reason.SAVED)


def _set_last_reason(mgr: DomainManager, name: str, reason: Reason) -> None:
    mgr.paths.domain_run_root.mkdir(parents=True, exist_ok=True)
    body = {"state": "shut off", "reason": str(reason), "at": time.time()}
    atomic_write(mgr.paths.domain_last_state(name), json.dumps(body).encode(), sync=False)


# -- restore ---------------------------------------------------------------------------------
def restore(
    mgr: DomainManager,
    path: Path,
    *,
    xml: str | None = None,
    running: bool | None = None,
    bypass_cache: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> DomainStatus:
    """Start the domain saved in image *path* where it was (``restore``); the image stays.

    A domain that is not defined comes back transient.

    :param xml: the XML to restore with instead of the stored one (same hardware)
    :param running: run (True) or stay paused (False); None: as the image says
    :raises SaveImageError: not a pyvirt save image, or a corrupt one
    :raises InvalidStateError: the domain runs, or its disks changed since the save
    :raises OperationFailedError: QEMU could not load the state
    """
    from pyvirt.drivers.qemu import saveimage  # lazy
    from pyvirt.model.domain import Domain  # lazy
    from pyvirt.service.domain import lifecycle  # lazy
    from pyvirt.state.names import check_new_name  # lazy

    path = Path(path).absolute()
    header = saveimage.read_header(path)
    if xml:
        header = header.with_(xml=save_image.checked_xml(mgr, header.xml, xml))
    dom = Domain.from_xml(header.xml)
    check_new_name(dom.name, paths=mgr.paths)
    with mgr.namespace():
        mgr.check_unique(dom, allow_same_name=True)
        with mgr.locked(dom.name):
            if mgr.live_record(dom.name, cleanup=True) is not None:
                raise InvalidStateError(f"domain '{dom.name}' is already running")
            lifecycle.refuse_lost(mgr, dom.name, dom.uuid)
            return _restore_locked(
                mgr, dom, path, header, running=running, bypass_cache=bypass_cache,
                progress=progress, cancel=cancel, transient=not mgr.store.exists(dom.name),
            )  # fmt: skip


def resume_managed(mgr: DomainManager, name: str, *, paused: bool) -> DomainStatus:
    """Restore *name* from its managed save image and remove the image (``start``; caller
    holds the domain lock and checked that it is not running)."""
    from pyvirt.drivers.qemu import saveimage  # lazy

    path = save_image.managed_path(mgr, name)
    try:
        header = saveimage.read_header(path)
    except saveimage.SaveImageError as err:
        raise saveimage.SaveImageError(
            err.message, hint=f"discard it with 'managedsave-remove {name}' (the next start boots)"
        ) from err
    dom = mgr.parse(header.xml)
    status = _restore_locked(mgr, dom, path, header, running=False if paused else None,
                             transient=False)  # fmt: skip
    path.unlink(missing_ok=True)
    return status


def resume_snapshot_state(
    mgr: DomainManager, name: str, path: Path, *, running: bool | None
) -> DomainStatus:
    """Start defined domain *name* (its disks already pointed at fresh overlays on the files
    an external snapshot froze) from that snapshot's memory file *path* (caller holds the
    domain lock; it is not running). The disks changed by design, so they are not checked
    against the image's stamps."""
    from pyvirt.drivers.qemu import saveimage  # lazy

    header = saveimage.read_header(path)
    dom = mgr.definition(name, inactive=True)
    return _restore_locked(
        mgr, dom, path, header, running=running, transient=False, check_disks=False
    )


def _check_disks(dom: Domain, header: SaveHeader, path: Path) -> None:
    """Refuse when a disk is gone or changed since the save (by target: a --xml may have
    moved it)."""
    where = dict(_writable_disks(dom))
    for stamp in header.disks:
        now = stamp.__class__(stamp.target, where.get(stamp.target, stamp.path), stamp.size,
                              stamp.mtime_ns)  # fmt: skip
        problem = now.mismatch()
        if problem:
            raise InvalidStateError(
                f"cannot restore domain '{dom.name}' from '{path}': {problem}",
                hint="the saved memory no longer matches the disk; restoring would corrupt it",
            )


def _restore_locked(
    mgr: DomainManager,
    dom: Domain,
    path: Path,
    header: SaveHeader,
    *,
    running: bool | None,
    transient: bool,
    bypass_cache: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    check_disks: bool = True,
) -> DomainStatus:
    """Launch QEMU for *dom* waiting for the stream, feed it the image, run it."""
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain import lifecycle  # lazy

    if check_disks:
        _check_disks(dom, header, path)
    before = mgr.shutoff_reason(dom.name)  # what it goes back to if the restore fails
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.lseek(fd, header.stream_offset, os.SEEK_SET)
        status = lifecycle.launch_incoming(mgr, dom, transient=transient, purpose="restore")
        rec = mgr.record(dom.name)
        assert rec is not None
        run = header.running if running is None else running
        try:
            with Monitor(rec.qmp_socket, name=dom.name) as mon:
                mon.getfd(fd, _FD_NAME)
                mon.migrate_incoming(f"fd:{_FD_NAME}")
                _wait_incoming(mon, fd, header, progress, cancel)
                if run:
                    mon.cont()
        except BaseException as err:
            _abort_restore(mgr, dom.name, rec, before)
            if isinstance(err, MonitorError | OperationFailedError) and not isinstance(
                err, CancelledError
            ):
                raise OperationFailedError(
                    f"cannot restore domain '{dom.name}' from '{path}': QEMU could not load the "
                    f"saved state ({_qemu_error(mgr, dom.name) or err.message})"
                ) from err
            raise
        rec.paused = not run
        rec.reason = str(Reason.RESTORED) if run else None
        mgr.rundir(dom.name).save_record(rec)
    finally:
        if bypass_cache:
            with contextlib.suppress(OSError):
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
    from dataclasses import replace  # lazy

    from pyvirt.service.domain.types import State  # lazy

    if run:
        return replace(status, state=State.RUNNING, reason=Reason.RESTORED)
    return status


def _wait_incoming(
    mon: Monitor,
    fd: int,
    header: SaveHeader,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> None:
    """Wait until QEMU loaded the stream; progress from the shared file offset."""
    total = header.stream_length
    while True:
        st = mon.query_migrate()
        if st.status == "completed":
            break
        if st.status in ("failed", "cancelled"):
            raise OperationFailedError(st.error or f"migration {st.status}")
        if cancel is not None:
            cancel.check("restore")
        if progress is not None:
            done = os.lseek(fd, 0, os.SEEK_CUR) - header.stream_offset
            progress(max(0, min(done, total)), total)
        time.sleep(_POLL)
    if progress is not None:
        progress(total, total)


def _abort_restore(mgr: DomainManager, name: str, rec: RuntimeRecord, before: Reason) -> None:
    """Stop the QEMU of a failed restore; the domain stays shut off as it was (*before*)."""
    from pyvirt.drivers.qemu import process  # lazy

    mgr.rundir(name).mark_destroying()
    process.terminate(rec.pid, rec.starttime, timeout=3.0)
    mgr.reap(name, rec)
    if mgr.store.exists(name):  # a transient one is gone
        _set_last_reason(mgr, name, before)


def _qemu_error(mgr: DomainManager, name: str) -> str:
    """QEMU's last error line in the domain's log (why a load failed), or ""."""
    try:
        text = mgr.paths.domain_log(name).read_text(errors="replace")
    except OSError:
        return ""
    for line in reversed(text.splitlines()[-20:]):
        if "qemu-system" in line and ":" in line:
            return line.split(": ", 1)[-1].strip()
    return ""
