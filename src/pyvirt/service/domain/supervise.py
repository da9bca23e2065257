"""Supervision of running domains by one long-lived process (pyvirtd) instead of a reaper each.

**The claim.** A supervisor writes ``RUN/supervisor.json`` (its pid and start time) while it
runs (:func:`claim`). While that names a live process, a start spawns no reaper
(:mod:`pyvirt.service.domain.lifecycle`) and no command respawns one
(:meth:`~pyvirt.service.domain.manager.DomainManager.live_record`): the supervisor watches
the domain. Starts in the supervisor's own process tell it at once (:func:`notify_started`);
starts by other processes (an embedded CLI) are found by its rescan of the run directories.
If the supervisor is killed, its claim names a dead process and everything falls back to
reapers; a supervisor that comes back takes the domains over again.

**One domain** (:class:`DomainSupervision`): :meth:`~DomainSupervision.attach` runs under the
domain lock: a QEMU that is gone gets its stop work now (its reason from ``exit.json``, the
destroy intent, or ``crashed``: every QEMU runs with ``-no-shutdown``, so a guest power-off
leaves it alive, and a QEMU gone without a word crashed, as libvirt concludes too); a live
one's reaper, if any, is stopped (the hand-over) and ``watch.json`` names the supervisor.
Then the driver's :class:`~pyvirt.drivers.qemu.watch.Watch` follows QEMU's events in the
supervisor's event loop (policies, ``catch_up`` of a power-off that happened while nobody
watched), and once QEMU is gone :meth:`~DomainSupervision.finish` runs the same stop work as
the reaper (:meth:`~pyvirt.service.domain.manager.DomainManager.stop_work`: idempotent under
the domain lock, so a command that got there first makes it a no-op).

**Events.** :class:`EventTranslator` turns QMP events into virsh's lifecycle words
(``Suspended``/``Paused``, ``Shutdown``/``Finished`` ...); :func:`stopped_event` names the
final ``Stopped`` event from the recorded shut-off reason.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import OperationFailedError, PyvirtError
from pyvirt.state.atomic import atomic_write
from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.runtime import ExitInfo
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: ``start`` imports this
# module to read the claim; the watcher and QMP load only in the supervisor.

__all__ = [
    "CLAIM_FILE",
    "DomainEvent",
    "DomainSupervision",
    "EventTranslator",
    "add_start_listener",
    "claim",
    "notify_started",
    "release",
    "remove_start_listener",
    "stopped_event",
    "supervisor_alive",
]

log = logging.getLogger(__name__)

#: the supervisor's claim, under the run root
CLAIM_FILE = "supervisor.json"


# --- the claim ------------------------------------------------------------------------------


def _claim_path(paths: StatePaths) -> Path:
    return paths.run / CLAIM_FILE


def claim(paths: StatePaths) -> None:
    """Make this process the supervisor of ``paths``' domains (starts spawn no reaper)."""
    from pyvirt.drivers.qemu import process  # lazy

    stat = process.proc_stat(os.getpid())
    body = {"pid": os.getpid(), "starttime": stat[1] if stat else None}
    paths.run.mkdir(parents=True, exist_ok=True)
    atomic_write(_claim_path(paths), json.dumps(body).encode(), 0o644, sync=False)


def release(paths: StatePaths) -> None:
    """Give up the claim, if this process holds it (starts spawn reapers again)."""
    if _claimant(paths) == os.getpid():
        _claim_path(paths).unlink(missing_ok=True)


def _claimant(paths: StatePaths) -> int | None:
    try:
        data = json.loads(_claim_path(paths).read_bytes())
        return int(data["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def supervisor_alive(paths: StatePaths) -> bool:
    """Whether a live supervisor claims ``paths``' domains (one small file and a /proc stat)."""
    try:
        data = json.loads(_claim_path(paths).read_bytes())
        pid, starttime = int(data["pid"]), data.get("starttime")
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if pid == os.getpid():
        return True
    from pyvirt.drivers.qemu import process  # lazy

    return process.is_alive(pid, starttime if isinstance(starttime, int) else None)


_listeners: list[Callable[[str], None]] = []
_listeners_lock = threading.Lock()


def add_start_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(name)`` whenever this process starts a domain (from any thread)."""
    with _listeners_lock:
        _listeners.append(listener)


def remove_start_listener(listener: Callable[[str], None]) -> None:
    """Forget a listener added by :func:`add_start_listener`."""
    with _listeners_lock, contextlib.suppress(ValueError):
        _listeners.remove(listener)


def notify_started(name: str) -> None:
    """Tell this process's listeners (its supervisor) that domain ``name`` started."""
    with _listeners_lock:
        listeners = list(_listeners)
    for listener in listeners:
        try:
            listener(name)
        except Exception:
            log.exception("start listener failed")


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainEvent:
    """One event about a domain, in virsh's words.

    :ivar kind: ``lifecycle`` or ``device-removed``
    :ivar event: ``Started``, ``Suspended``, ``Resumed``, ``Stopped``, ``Shutdown``,
        ``Crashed`` (lifecycle); the device alias (device-removed)
    :ivar detail: ``Booted``, ``Migrated``, ``PostCopy``, ``Restored``, ``Paused``,
        ``Unpaused``, ``Shutdown``, ``Destroyed``, ``Saved``, ``Crashed``, ``Failed``,
        ``Finished``, ``Panicked``
    """

    kind: str
    event: str
    detail: str = ""


#: the statuses of QEMU's ``MIGRATION`` event that end a migration (or start none)
_MIGRATION_ENDED = frozenset({"none", "completed", "failed", "cancelled"})


class EventTranslator:
    """QMP events of one domain -> :class:`DomainEvent` (stateful: a ``STOP`` that follows a
    guest power-off is not a suspend).

    :param paused: whether the domain is paused when the translation starts
    :param incoming: what the paused QEMU waits for (``migration``, ``restore``; None:
        nothing): the resume that ends an incoming migration is ``Resumed Migrated``, as
        libvirt says it; a restore's is part of its ``Started Restored``

    On the source of a migration (QEMU's ``MIGRATION`` events say one is under way), the
    switch-over's stop is ``Suspended Migrated`` (``Suspended PostCopy`` in post-copy), and
    the resume of a migration that failed after it ``Resumed Migrated``, as libvirt says.
    """

    def __init__(self, paused: bool = False, incoming: str | None = None) -> None:
        self.paused = paused
        self.shutting_down = False
        self.incoming = incoming if paused else None
        #: the status of an outgoing migration under way (QEMU's ``MIGRATION`` events)
        self.migration: str | None = None
        #: the guest stands still for a migration (the resume then ends a failed one)
        self.paused_by_migration = False

    def translate(self, event: Mapping[str, Any]) -> list[DomainEvent]:
        """The domain events one QMP event makes (often none)."""
        name = event.get("event")
        data = event.get("data") or {}
        if name == "MIGRATION":
            status = str(data.get("status", ""))
            self.migration = None if status in _MIGRATION_ENDED or self.incoming else status
            return []
        if name == "STOP":
            if self.shutting_down or self.paused:
                return []
            self.paused = True
            self.paused_by_migration = self.migration is not None
            detail = "Paused"
            if self.migration is not None:
                detail = "PostCopy" if self.migration.startswith("postcopy") else "Migrated"
            return [DomainEvent("lifecycle", "Suspended", detail)]
        if name == "RESUME":
            self.shutting_down = False
            if not self.paused:
                return []
            self.paused = False
            incoming, self.incoming = self.incoming, None
            by_migration, self.paused_by_migration = self.paused_by_migration, False
            if incoming == "restore":
                return []
            migrated = incoming == "migration" or by_migration
            return [DomainEvent("lifecycle", "Resumed",
                                "Migrated" if migrated else "Unpaused")]  # fmt: skip
        if name == "SHUTDOWN":
            self.shutting_down = True
            if data.get("guest"):
                return [DomainEvent("lifecycle", "Shutdown", "Finished")]
            return []
        if name == "RESET":
            self.shutting_down = False
            return []
        if name == "GUEST_PANICKED":
            return [DomainEvent("lifecycle", "Crashed", "Panicked")]
        if name == "DEVICE_DELETED" and data.get("device"):
            return [DomainEvent("device-removed", str(data["device"]))]
        return []


def stopped_event(reason: str, detail: str | None) -> DomainEvent:
    """The ``Stopped`` event of a domain shut off for ``reason``; ``detail`` is QEMU's
    shutdown cause when known. A QEMU that died without a shutdown (killed) is ``Failed``,
    as libvirt reports it; a guest panic is ``Crashed``."""
    if reason == "shutdown":
        return DomainEvent("lifecycle", "Stopped", "Shutdown")
    if reason == "destroyed":
        return DomainEvent("lifecycle", "Stopped", "Destroyed")
    if reason in ("migrated", "saved"):  # a confirm or a save stopped it, as libvirt says
        return DomainEvent("lifecycle", "Stopped", reason.capitalize())
    if reason == "crashed" and detail == "guest-panic":
        return DomainEvent("lifecycle", "Stopped", "Crashed")
    return DomainEvent("lifecycle", "Stopped", "Failed")


# --- one domain ------------------------------------------------------------------------------


class DomainSupervision:
    """The supervision of one running domain by this process (see the module docstring).

    Use: ``attach()`` (blocking, call it in a worker thread); if it returns True, ``await
    watch()`` until QEMU is gone; then ``finish()`` (blocking). ``stopped`` holds the final
    event once known.

    :param on_event: called (in the event loop) with each :class:`DomainEvent` while watching
    """

    def __init__(
        self, mgr: DomainManager, name: str, on_event: Callable[[DomainEvent], None]
    ) -> None:
        self.mgr = mgr
        self.name = name
        self.on_event = on_event
        self.run_dir = mgr.paths.domain_run_dir(name)
        self.pid = 0
        self.starttime: int | None = None
        self.paused = False
        #: what the QEMU was started to take in (the runtime record's ``incoming``)
        self.incoming: str | None = None
        #: an outgoing migration of it completed (a migration's confirm then stopped it)
        self.migrated_out = False
        self.info: ExitInfo | None = None
        self.stopped: DomainEvent | None = None
        self._log_fd: int | None = None

    def attach(self) -> bool:
        """Take the domain over (under its lock). False when there is nothing to watch: no
        run directory, or its QEMU is gone (then its stop work is done now and
        :attr:`stopped` says how it ended).

        :raises PyvirtError: the runtime record cannot be read
        """
        from pyvirt.drivers.qemu import process, watch  # lazy
        from pyvirt.drivers.qemu.runtime import read_watcher  # lazy

        mgr, name = self.mgr, self.name
        with mgr.locked(name):
            rec = mgr.record(name)
            if rec is None:
                mgr.live_record(name, cleanup=True)  # a killed start is cleaned up
                return False
            if not process.is_alive(rec.pid, rec.starttime):
                info = mgr.rundir(name).exit_info(wait=0.5)
                mgr.reap(name, rec)
                self.stopped = stopped_event(info.reason, info.detail)
                return False
            current = read_watcher(self.run_dir)
            if (
                current is not None
                and current.pid != os.getpid()
                and current.alive
                and process.cmdline_names(current.pid, self.run_dir)
            ):  # a reaper watches: stop it (QEMU lives on; the lock keeps its stop work out)
                log.info("domain '%s': taking over from its reaper (pid %d)", name, current.pid)
                process.terminate(current.pid, current.starttime, timeout=2.0)
            watch.write_watcher(self.run_dir, connected=False)
            self.pid, self.starttime, self.paused = rec.pid, rec.starttime, rec.paused
            self.incoming = rec.incoming
            return True

    async def watch(self) -> ExitInfo:
        """Follow QEMU's events until it is gone (cancel to stop watching; QEMU runs on)."""
        from pyvirt.drivers.qemu import process, watch  # lazy

        translator = EventTranslator(self.paused, self.incoming)

        def on_qmp(event: Mapping[str, Any]) -> None:
            data = event.get("data") or {}
            if event.get("event") == "MIGRATION" and data.get("status") == "completed":
                # not the completion of what this QEMU waited for (that ends with a RESUME)
                self.migrated_out = self.migrated_out or translator.incoming is None
            for ev in translator.translate(event):
                self.on_event(ev)

        self._log_fd = self._open_log()
        if self._log_fd is None:
            self._log_fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            w = watch.Watch(
                self.run_dir,
                process.take_stderr_reader(self.run_dir),
                out_fd=self._log_fd,
                on_event=on_qmp,
                say=self._say,
            )
            info = await w.run()
            if w.qemu_alive():  # no event connection (another client holds it?): not an exit
                raise OperationFailedError(
                    f"domain '{self.name}': lost the event connection of QEMU pid {self.pid}",
                    hint="the supervisor tries again shortly",
                )
            self.info = info
            self._say(f"QEMU gone: {info.reason} ({info.detail})")
            return info
        finally:
            os.close(self._log_fd)
            self._log_fd = None

    def _open_log(self) -> int | None:
        try:
            rec = self.mgr.record(self.name)
        except PyvirtError:
            return None
        if rec is None:
            return None
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            return os.open(rec.log_path, flags, 0o640)
        except OSError:
            return None

    def _say(self, message: str) -> None:
        """A line in the domain log, like the reaper's, and in the supervisor's log."""
        log.info("domain '%s': %s", self.name, message)
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
        line = f"{stamp}.{int(now % 1 * 1000):03d}Z: pyvirtd: {message}\n"
        if self._log_fd is not None:
            with contextlib.suppress(OSError):
                os.write(self._log_fd, line.encode())

    def finish(self) -> DomainEvent:
        """The stop work after :meth:`watch` returned (the same as the reaper's), unless a
        command did it already or the domain started anew; returns the ``Stopped`` event."""
        from pyvirt.drivers.qemu import watch  # lazy
        from pyvirt.drivers.qemu.runtime import write_exit  # lazy

        info = self.info
        # under the domain lock: a destroy (which does not wait for this record) or a new
        # start cannot come between the check and the write
        with self.mgr.locked(self.name, timeout=60.0):
            ours = info is not None and watch.still_ours(self.run_dir, self.pid, self.starttime)
            if info is not None and ours:
                with contextlib.suppress(FileNotFoundError):
                    write_exit(self.run_dir, info)
                self.mgr.stop_work(self.name, self.pid, self.starttime)
        if info is not None and ours:
            self.stopped = stopped_event(info.reason, info.detail)
        else:  # a command did the stop work: report what it recorded
            reason: str = self.mgr.shutoff_reason(self.name)
            if reason == "unknown" and self.migrated_out:
                reason = "migrated"  # the confirm of a migration that undefined it here too
            elif reason == "unknown" and info is not None:
                reason = info.reason  # undefined meanwhile: what the watch saw
            same = info is not None and info.reason == reason
            self.stopped = stopped_event(reason, info.detail if same and info else None)
        return self.stopped

    def hand_back(self) -> None:
        """Give the domain to a reaper process (the supervisor is stopping; QEMU runs on)."""
        from pyvirt.drivers.qemu import process  # lazy
        from pyvirt.drivers.qemu.runtime import WATCHER_FILE, read_watcher  # lazy
        from pyvirt.service.domain import reaper_spawn  # lazy

        with self.mgr.locked(self.name, timeout=10.0):
            rec = self.mgr.record(self.name)
            if rec is None or rec.pid != self.pid or not process.is_alive(rec.pid, rec.starttime):
                return
            current = read_watcher(self.run_dir)
            if current is not None and current.pid == os.getpid():
                (self.run_dir / WATCHER_FILE).unlink(missing_ok=True)
            reaper_spawn.spawn(self.mgr.paths, self.name)
