"""Persisted live state of a running QEMU domain, and why it stopped.

This module owns the files of a domain's run directory that are plain data:

``runtime.json``
    :class:`RuntimeRecord`: exactly what was started (argv, pid + start time, sockets, VNC,
    logs). Versioned; older versions are upgraded on load by explicit functions registered in
    :data:`UPGRADES` (one per version step), never read by position.
``exit.json``
    :class:`ExitInfo`, written by the watcher (:mod:`pyvirt.drivers.qemu.watch`) once QEMU
    has gone: ``shutdown``, ``destroyed`` or ``crashed`` plus QEMU's own shutdown cause.
``destroying``
    the destroy intent: an empty file written by :func:`mark_destroying` *before* pyvirt
    signals QEMU, so the watcher can tell a destroy from a crash.
``policy.json``
    lifecycle policies the watcher acts on (``on_poweroff`` etc.), see :func:`write_policy`.

All writes are atomic (:func:`pyvirt.state.atomic.atomic_write`). The run directory as a
whole (these files, the live XML and the hook data) is owned by
:class:`pyvirt.drivers.qemu.rundir.RunDir`; the service goes through it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pyvirt.errors import NotFoundError, OperationFailedError
from pyvirt.state.atomic import atomic_write

log = logging.getLogger(__name__)

RUNTIME_FILE = "runtime.json"
EXIT_FILE = "exit.json"
DESTROY_INTENT_FILE = "destroying"
POLICY_FILE = "policy.json"
#: an incoming migration's destination runs the guest the moment its state is in: the
#: watcher, already connected, sends ``cont`` on QEMU's MIGRATION completed (and removes it)
RUN_ON_ARRIVAL_FILE = "run-on-arrival"
#: the watcher took :data:`RUN_ON_ARRIVAL_FILE` (renamed it) and sends ``cont``
RUN_ON_ARRIVAL_SENT_FILE = "run-on-arrival.sent"
#: then its note that the ``cont`` succeeded: the guest runs (the destination's finish then
#: needs no monitor session of its own)
ARRIVED_FILE = "arrived"
#: a request to the watcher of a destination paused in post-copy: ``{"uri": URI}`` for
#: ``migrate-recover``, which it sends out-of-band on its own connection (a new monitor
#: session cannot even start while QEMU's main loop waits for a page that does not come)
RECOVER_FILE = "postcopy-recover"
#: the watcher's answer: ``{"ok": true}`` or ``{"error": MESSAGE}``
RECOVER_DONE_FILE = "postcopy-recover.done"
#: an outgoing migration's source: its migration parameters before the policy changed them
#: (written as the migration begins: its time is the migration's start)
MIGRATE_BEFORE_FILE = "migrate-before.json"
PID_FILE = "qemu.pid"
QMP_SOCKET = "qmp.sock"
EVENTS_SOCKET = "events.sock"

#: Version written by this pyvirt.
CURRENT_VERSION = 1

ExitReason = Literal["shutdown", "destroyed", "crashed"]

Json = dict[str, Any]


@dataclass
class RuntimeRecord:
    """What was started for one running domain, persisted as ``RUN_DIR/runtime.json``.

    Paths are absolute strings (as QEMU got them). ``starttime`` is field 22 of
    ``/proc/PID/stat`` (clock ticks since boot) and tells a live QEMU from an unrelated process
    that reused its pid; ``None`` only for records upgraded from version 0, which lacked it.
    ``paused`` and ``reason`` are the service's live state (virsh's running/paused reason).
    ``incoming`` says what a QEMU started with ``-incoming defer`` waits for: ``migration``
    or ``restore`` (its lifecycle events say ``Started Migrated`` or ``Started Restored``).
    """

    name: str
    uuid: str
    pid: int
    starttime: int | None
    qmp_socket: str
    events_socket: str
    log_path: str
    argv: list[str]
    domain_id: int | None = None
    serial_sockets: list[str] = field(default_factory=list)
    ptys: dict[str, str] = field(default_factory=dict)
    console_log: str | None = None
    vnc_display: int | None = None
    vnc_port: int | None = None
    vnc_socket: str | None = None
    started_at: float = field(default_factory=time.time)
    paused: bool = False
    reason: str | None = None
    transient: bool = False
    incoming: str | None = None
    version: int = CURRENT_VERSION

    def to_dict(self) -> Json:
        """The JSON form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuntimeRecord:
        """Build a record from its JSON form, upgrading older versions first.

        Unknown fields (from a newer minor change) are ignored with a warning.

        :raises OperationFailedError: the record is from a newer pyvirt or lacks fields
        """
        data = upgrade(data)
        known = set(cls.__dataclass_fields__)
        extra = sorted(set(data) - known)
        if extra:
            log.warning("runtime record: ignoring unknown fields %s", ", ".join(extra))
        try:
            rec = cls(**{k: v for k, v in data.items() if k in known})
        except TypeError as err:
            raise OperationFailedError(f"runtime record is invalid: {err}") from err
        if not isinstance(rec.pid, int) or not isinstance(rec.argv, list):
            raise OperationFailedError("runtime record is invalid: bad pid or argv")
        return rec

    def save(self, run_dir: Path) -> None:
        """Write the record to ``run_dir/runtime.json`` atomically.

        Not fsynced (two disk flushes on every start): the QEMU it describes does not outlive
        a host crash, and every process of this boot reads it from the page cache.
        """
        data = json.dumps(self.to_dict(), indent=2, sort_keys=True).encode() + b"\n"
        atomic_write(run_dir / RUNTIME_FILE, data, 0o600, sync=False)

    @classmethod
    def load(cls, run_dir: Path) -> RuntimeRecord:
        """Read ``run_dir/runtime.json``.

        :raises NotFoundError: there is no record (the domain is not running)
        :raises OperationFailedError: the file is unreadable JSON or from a newer pyvirt
        """
        path = run_dir / RUNTIME_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError as err:
            raise NotFoundError(f"no runtime record in '{run_dir}'") from err
        try:
            data = json.loads(raw)
        except ValueError as err:
            raise OperationFailedError(f"runtime record '{path}' is not valid JSON") from err
        if not isinstance(data, dict):
            raise OperationFailedError(f"runtime record '{path}' is not a JSON object")
        return cls.from_dict(data)

    @classmethod
    def load_or_none(cls, run_dir: Path) -> RuntimeRecord | None:
        """:meth:`load`, or None when there is no record."""
        try:
            return cls.load(run_dir)
        except NotFoundError:
            return None


def _upgrade_v0(data: Json) -> Json:
    """Version 0 (the prototype) -> 1.

    v0 had short keys (``qmp``, ``serial``, ``vnc``, ``log``), a single serial socket, no
    process start time, no events socket and ``paused_on_start``.
    """
    out = {
        k: v for k, v in data.items() if k not in {"qmp", "serial", "vnc", "log", "paused_on_start"}
    }
    qmp = data["qmp"]
    out["qmp_socket"] = qmp
    out["events_socket"] = str(Path(qmp).with_name(EVENTS_SOCKET))
    out["serial_sockets"] = [data["serial"]] if data.get("serial") else []
    vnc = data.get("vnc")
    out["vnc_port"] = vnc
    out["vnc_display"] = vnc - 5900 if isinstance(vnc, int) and vnc >= 5900 else None
    out["log_path"] = data["log"]
    out.setdefault("starttime", None)
    out.setdefault("argv", [])
    out["paused"] = bool(data.get("paused_on_start", False))
    out["version"] = 1
    return out


#: ``UPGRADES[n]`` turns a version-``n`` dict into a version-``n+1`` dict.
UPGRADES: dict[int, Callable[[Json], Json]] = {0: _upgrade_v0}


def upgrade(data: Mapping[str, Any]) -> Json:
    """Upgrade a runtime record dict to :data:`CURRENT_VERSION`, step by step.

    :raises OperationFailedError: the record is newer than this pyvirt understands
    """
    out = dict(data)
    version = int(out.get("version", 0))
    if version > CURRENT_VERSION:
        raise OperationFailedError(
            f"runtime record version {version} is newer than this pyvirt ({CURRENT_VERSION})",
            hint="use the pyvirt that started the domain",
        )
    while version < CURRENT_VERSION:
        out = UPGRADES[version](out)
        new = int(out["version"])
        assert new == version + 1, f"upgrade from v{version} produced v{new}"
        version = new
    return out


@dataclass(frozen=True)
class ExitInfo:
    """Why QEMU went away, as recorded by the watcher in ``exit.json``.

    :ivar reason: ``shutdown``, ``destroyed`` or ``crashed`` (libvirt's shut-off reasons)
    :ivar detail: QEMU's SHUTDOWN cause (``guest-shutdown``, ``host-signal`` ...) or
        ``no-shutdown-event`` when QEMU died without one (SIGKILL, abort)
    :ivar guest: the SHUTDOWN event's ``guest`` flag, if there was one
    :ivar at: when the watcher noticed (seconds since the epoch)
    """

    reason: ExitReason
    detail: str
    guest: bool | None = None
    at: float = field(default_factory=time.time)

    def to_dict(self) -> Json:
        """The JSON form."""
        return asdict(self)


def write_exit(run_dir: Path, info: ExitInfo) -> None:
    """Write ``run_dir/exit.json`` atomically (not fsynced: run state of this boot only)."""
    data = json.dumps(info.to_dict(), sort_keys=True).encode() + b"\n"
    atomic_write(run_dir / EXIT_FILE, data, 0o644, sync=False)


def write_exit_at(dir_fd: int, info: ExitInfo) -> bool:
    """Write ``exit.json`` atomically into the run directory open as ``dir_fd``.

    Through the descriptor, not the path: once the directory is removed (a ``destroy`` does
    not wait for the watcher) a write goes nowhere, even into a new run directory of the same
    name made by the next start.

    :returns: False when the directory is gone
    """
    data = json.dumps(info.to_dict(), sort_keys=True).encode() + b"\n"
    tmp = f".{EXIT_FILE}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o644, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644, dir_fd=dir_fd)
        os.replace(tmp, EXIT_FILE, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    return True


def read_exit(run_dir: Path) -> ExitInfo | None:
    """Read ``run_dir/exit.json``; None when it does not exist (yet) or is unreadable."""
    try:
        data = json.loads((run_dir / EXIT_FILE).read_bytes())
        reason = data["reason"]
        if reason not in ("shutdown", "destroyed", "crashed"):
            raise ValueError(reason)
        return ExitInfo(
            reason=reason,
            detail=str(data.get("detail", "")),
            guest=data.get("guest"),
            at=float(data.get("at", 0.0)),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as err:
        log.warning("ignoring unreadable %s: %r", run_dir / EXIT_FILE, err)
        return None


def mark_destroying(run_dir: Path, *, stop_work_here: bool = False) -> None:
    """Record the intent to destroy, before signalling QEMU (the watcher reads it).

    :param stop_work_here: the caller does the stop work itself once QEMU is gone (a
        reaper then leaves it to the caller unless the caller dies first)
    """
    atomic_write(run_dir / DESTROY_INTENT_FILE, _STOP_WORK_HERE if stop_work_here else b"",
                 0o644, sync=False)  # fmt: skip


#: the content of ``destroying`` when the destroying command does the stop work itself
_STOP_WORK_HERE = b"stop-work-here\n"


def is_destroying(run_dir: Path) -> bool:
    """Whether :func:`mark_destroying` was called for this run directory."""
    return (run_dir / DESTROY_INTENT_FILE).exists()


def destroyer_does_stop_work(run_dir: Path) -> bool:
    """Whether :func:`mark_destroying` said its caller does the stop work itself."""
    try:
        return (run_dir / DESTROY_INTENT_FILE).read_bytes() == _STOP_WORK_HERE
    except OSError:
        return False


def fallback_exit(run_dir: Path) -> ExitInfo:
    """The exit reason when QEMU is gone and no watcher recorded one."""
    if is_destroying(run_dir):
        return ExitInfo("destroyed", "no-shutdown-event")
    return ExitInfo("crashed", "no-shutdown-event")


WATCHER_FILE = "watch.json"


@dataclass(frozen=True)
class WatcherInfo:
    """Who watches a run directory (``watch.json``): the watcher's pid + start time, and
    whether it is connected to QEMU's events socket."""

    pid: int
    starttime: int
    connected: bool

    @property
    def alive(self) -> bool:
        """Whether the watcher process still runs."""
        from pyvirt.drivers.qemu.process import is_alive

        return is_alive(self.pid, self.starttime)


def read_watcher(run_dir: Path) -> WatcherInfo | None:
    """Read ``watch.json``; None if no watcher ever started here or the file is unreadable."""
    try:
        data = json.loads((run_dir / WATCHER_FILE).read_bytes())
        return WatcherInfo(int(data["pid"]), int(data["starttime"]), bool(data["connected"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def wait_exit(run_dir: Path, timeout: float = 2.0) -> ExitInfo:
    """The recorded exit of a QEMU that is gone, waiting for the watcher to write it.

    Returns as soon as ``exit.json`` exists; if the watcher is not running, or wrote nothing
    within ``timeout``, falls back to the destroy intent (destroyed, else crashed).
    """
    deadline = time.monotonic() + timeout
    while True:
        info = read_exit(run_dir)
        if info is not None:
            return info
        watcher = read_watcher(run_dir)
        if watcher is None or not watcher.alive or time.monotonic() >= deadline:
            return read_exit(run_dir) or fallback_exit(run_dir)
        time.sleep(0.005)


def exit_reason(run_dir: Path, wait: float = 0.5) -> ExitReason:
    """``shutdown``, ``destroyed`` or ``crashed`` for a QEMU that is gone (see
    :func:`wait_exit`)."""
    return wait_exit(run_dir, wait).reason


def write_policy(run_dir: Path, **policy: str) -> None:
    """Write the lifecycle policies the watcher honours (``on_poweroff``, ``on_crash`` ...).

    Values are libvirt's: ``destroy``, ``restart``, ``preserve``, ``rename-restart``.
    Write it before :func:`pyvirt.drivers.qemu.watch.spawn_watcher`.
    """
    data = json.dumps(policy, sort_keys=True).encode() + b"\n"
    atomic_write(run_dir / POLICY_FILE, data, 0o644, sync=False)


def read_policy(run_dir: Path) -> dict[str, str]:
    """Read ``policy.json``; empty when absent or unreadable."""
    try:
        data = json.loads((run_dir / POLICY_FILE).read_bytes())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items()}
