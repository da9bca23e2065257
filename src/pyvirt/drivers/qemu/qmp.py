"""A small synchronous QMP client: the only module that imports ``qemu.qmp``.

:class:`Monitor` is the session; its typed commands (``device_add``, ``query_cpus_fast``,
``blockdev_add``, ``set_balloon``...) come from the mixins in
:mod:`pyvirt.drivers.qemu.monitor` and return the dataclasses of
:mod:`pyvirt.drivers.qemu.monitor.types`. :meth:`Monitor.execute` is the raw passthrough,
kept for the user-facing ``qemu-monitor-command`` and tests; ``service/`` code uses the typed
methods only.

:class:`Monitor` drives ``qemu.qmp.QMPClient`` on a private asyncio event loop (not the
thread's default loop, so it coexists with callers that use asyncio themselves, as long as
they do not call it from inside a running loop). ``qemu.qmp`` (and with it asyncio) is
imported lazily, on first connect: CLI commands that never talk QMP do not pay ~40-60 ms of
imports.

QEMU's ``qmp.sock`` serves one client at a time, and a verb, the daemon's statistics sampler
and a migration's perform loop may all want it: a session first takes an exclusive ``flock``
on ``qmp.sock.lock`` next to the socket (in any process) and holds it until it closes. A
session that finds it taken waits its turn within its connect timeout, then fails with
:class:`MonitorBusyError` naming the holder's purpose (``Monitor(purpose=...)``, written into
the lock file); ``wait=False`` fails at once instead (the sampler skips a busy domain).

Every ``qemu.qmp`` failure is wrapped in :class:`pyvirt.errors.MonitorError` with the command
in the message; a QMP error reply becomes :class:`QmpCommandError`, which keeps the command,
QEMU's error class and description, and the messages sent and received.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from collections.abc import Awaitable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pyvirt.drivers.qemu.monitor.backup import BackupCommands
from pyvirt.drivers.qemu.monitor.base import Args, prune
from pyvirt.drivers.qemu.monitor.block import BlockCommands
from pyvirt.drivers.qemu.monitor.blockjobs import BlockJobCommands
from pyvirt.drivers.qemu.monitor.cpu_models import CpuModelCommands
from pyvirt.drivers.qemu.monitor.devices import DeviceCommands
from pyvirt.drivers.qemu.monitor.dirtyrate import DirtyRateCommands
from pyvirt.drivers.qemu.monitor.guestio import GuestIoCommands
from pyvirt.drivers.qemu.monitor.machine import MachineCommands
from pyvirt.drivers.qemu.monitor.migration import MigrationCommands
from pyvirt.drivers.qemu.monitor.snapshots import SnapshotCommands
from pyvirt.errors import MonitorError

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Default seconds allowed for connecting and for each command.
DEFAULT_TIMEOUT = 10.0
#: Seconds between tries for a monitor another session holds: doubling from the first to
#: the second (the migration loop lets go for longer than that between its polls)
_LOCK_POLL = (0.001, 0.008)
#: The lock file next to a QMP socket (``qmp.sock.lock``)
LOCK_SUFFIX = ".lock"


def _greeting_race(err: MonitorError) -> bool:
    """Whether *err* is a session that began with something else than QEMU's greeting."""
    from qemu.qmp.qmp_client import GreetingError, NegotiationError

    return isinstance(getattr(err.__cause__, "exc", None), GreetingError | NegotiationError)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        return ""


def _loggable(args: Mapping[str, Any]) -> dict[str, Any]:
    """*args* with secrets (``set_password``'s password) masked, for debug logs."""
    return {k: "***" if "password" in k else v for k, v in args.items()}


class QmpCommandError(MonitorError):
    """QEMU replied to a command with an error.

    :ivar command: the QMP command that failed (``device_add``)
    :ivar error_class: QMP's error class (``GenericError``, ``DeviceNotFound`` ...)
    :ivar desc: QEMU's description of the error
    :ivar sent: the message sent (with its ``arguments``)
    :ivar received: the error reply
    """

    def __init__(
        self,
        message: str,
        *,
        error_class: str,
        command: str = "",
        desc: str = "",
        sent: Mapping[str, Any] | None = None,
        received: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.error_class = error_class
        self.command = command
        self.desc = desc or message
        self.sent = dict(sent or {})
        self.received = dict(received or {})


class MonitorBusyError(MonitorError):
    """Another session held the monitor for longer than this one would wait.

    :ivar holder: what the lock file says of the holder (``PID PURPOSE``), may be empty
    """

    def __init__(self, message: str, *, holder: str = "", hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.holder = holder


def _open_lock(path: Path) -> int | None:
    """An fd of the lock file *path* (created), None where this process may not open it."""
    for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
        try:
            return os.open(path, flags | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            return None  # no run directory: connect says so
        except PermissionError:
            continue
    log.debug("QMP lock %s: not accessible, the session is not serialised", path)
    return None


class Monitor(
    MachineCommands,
    DeviceCommands,
    BlockCommands,
    BlockJobCommands,
    CpuModelCommands,
    DirtyRateCommands,
    SnapshotCommands,
    GuestIoCommands,
    MigrationCommands,
    BackupCommands,
):
    """A synchronous QMP session on a unix socket; use as a context manager.

    ::

        with Monitor(run_dir / "qmp.sock") as mon:
            status, running = mon.query_status()
            mon.stop()

    :param socket_path: the QMP unix socket
    :param timeout: seconds for connecting (greeting + ``qmp_capabilities``) and per command
    :param name: a name for log messages (the domain name)
    :param purpose: what the session is for, shown to a session that waits for it
        (``migration``, ``statistics``); default ``command``
    :param wait: wait (within ``timeout``) for a monitor another session holds; False:
        :class:`MonitorBusyError` at once
    """

    def __init__(
        self,
        socket_path: Path | str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        name: str | None = None,
        purpose: str = "command",
        wait: bool = True,
    ) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self.name = name
        self.purpose = purpose
        self.wait = wait
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None
        self._lock_fd: int | None = None

    # connection ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and negotiate capabilities.

        :raises MonitorBusyError: another session held the monitor for all of ``timeout``
        :raises MonitorError: the socket is missing, refuses, or QEMU does not answer in time
        """
        import asyncio

        from qemu.qmp import QMPClient

        if self._client is not None:
            return
        deadline = time.monotonic() + self.timeout
        self._take_lock(deadline)
        for attempt in range(3):
            self._loop = asyncio.new_event_loop()
            self._client = QMPClient(self.name)
            try:
                left = max(deadline - time.monotonic(), min(self.timeout, 1.0))
                self._run(self._client.connect(str(self.socket_path)), what="connect",
                          timeout=left)  # fmt: skip
                return
            except MonitorError as err:
                self._close_loop()
                self._client = None
                if attempt < 2 and _greeting_race(err) and time.monotonic() < deadline:
                    # QEMU may send an event of the previous session before the greeting
                    # of this one (events go out while it notices the hang-up)
                    log.debug("QMP %s: %s; connecting again", self.socket_path, err)
                    continue
                self._release_lock()
                raise

    def _take_lock(self, deadline: float) -> None:
        """Take the monitor's lock file, waiting until *deadline* for another session."""
        path = self.socket_path.with_name(self.socket_path.name + LOCK_SUFFIX)
        fd = _open_lock(path)
        if fd is None:
            return
        pause = _LOCK_POLL[0]
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not self.wait or time.monotonic() + pause > deadline:
                    holder = _read_holder(fd)
                    os.close(fd)
                    raise self._busy(holder) from None
                waited = True
                time.sleep(pause)
                pause = min(pause * 2, _LOCK_POLL[1])
            except OSError as err:  # a filesystem without flock: no serialisation
                log.debug("QMP lock %s: %s", path, err)
                os.close(fd)
                return
        if waited:
            log.debug("QMP %s: waited for the monitor", self.socket_path)
        self._lock_fd = fd
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {self.purpose}\n".encode(), 0)

    def _busy(self, holder: str) -> MonitorBusyError:
        pid, _, purpose = holder.partition(" ")
        who = f"a {purpose} session (pid {pid})" if purpose else "another session"
        what = f"domain '{self.name}'" if self.name else f"'{self.socket_path}'"
        if self.wait:
            msg = f"the monitor of {what} is busy: {who} held it for {self.timeout:g} s"
        else:
            msg = f"the monitor of {what} is busy: {who} holds it"
        return MonitorBusyError(msg, holder=holder, hint="try again when it is done")

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # drops the flock
            self._lock_fd = None

    def close(self) -> None:
        """Disconnect (idempotent); errors while hanging up are logged, not raised."""
        if self._client is None:
            return
        try:
            self._run(self._client.disconnect(), what="disconnect")
        except MonitorError as err:
            log.debug("QMP %s: disconnect: %s", self.socket_path, err)
        finally:
            self._client = None
            self._close_loop()
            self._release_lock()

    def _close_loop(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __enter__(self) -> Monitor:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _run(self, coro: Awaitable[_T], *, what: str, timeout: float | None = None) -> _T:
        """Run ``coro`` on the private loop with the timeout; wrap every failure."""
        import asyncio

        from qemu.qmp import ExecuteError, QMPError

        assert self._loop is not None, "Monitor is not connected"
        try:
            return self._loop.run_until_complete(
                asyncio.wait_for(coro, timeout if timeout is not None else self.timeout)
            )
        except ExecuteError as err:
            raise QmpCommandError(
                f"QMP command '{what}' failed: {err}",
                error_class=err.error_class,
                command=what,
                desc=str(err),
                sent=err.sent,
                received=err.received,
            ) from err
        except TimeoutError as err:
            waited = timeout if timeout is not None else self.timeout
            raise MonitorError(
                f"QMP '{what}' on '{self.socket_path}' timed out after {waited:g} s",
                hint="QEMU may be hung; try destroy",
            ) from err
        except (QMPError, OSError, EOFError) as err:
            detail = str(err) or type(err).__name__
            raise MonitorError(f"QMP '{what}' on '{self.socket_path}' failed: {detail}") from err

    # commands ------------------------------------------------------------------------------

    def execute(self, cmd: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Run QMP command ``cmd`` and return its ``return`` value (raw passthrough).

        For the user-facing ``qemu-monitor-command`` and tests; pyvirt's own code uses the
        typed methods. Arguments may be given as a mapping (names with dashes) or as keywords.

        :raises QmpCommandError: QEMU answered with an error
        :raises MonitorError: the connection failed or timed out
        """
        if self._client is None:
            self.connect()
        arguments = {**(args or {}), **kwargs}
        log.debug("QMP %s -> %s %s", self.socket_path.name, cmd, _loggable(arguments))
        return self._run(self._client.execute(cmd, arguments or None), what=cmd)

    def _call(self, cmd: str, args: Args | None = None) -> Any:
        """Send a typed method's command; ``None`` arguments are left out."""
        return self.execute(cmd, prune(args or {}))

    def _send_fd(self, fd: int) -> None:
        """Pass open ``fd`` to QEMU with ``SCM_RIGHTS``; the next command (``add-fd``) takes it.

        :raises MonitorError: the socket refused it
        """
        if self._client is None:
            self.connect()
        try:
            self._client.send_fd_scm(fd)
        except OSError as err:
            raise MonitorError(f"QMP on '{self.socket_path}': cannot pass an fd: {err}") from err

    def _call_until(
        self, cmd: str, args: Args, *, event: str, match: Mapping[str, str], timeout: float
    ) -> dict[str, Any] | None:
        """Run ``cmd``, then wait up to ``timeout`` seconds for ``event`` whose ``data``
        contains every item of ``match`` (e.g. ``device_del`` and ``DEVICE_DELETED`` with
        ``{"device": "virtio-disk1"}``). The listener is registered before the command is
        sent, so a fast event is not missed.

        :returns: the event, or ``None`` if it did not come in time
        :raises QmpCommandError: QEMU refused the command
        """
        import asyncio

        if self._client is None:
            self.connect()
        client = self._client
        arguments = prune(args)

        async def run() -> dict[str, Any] | None:
            with client.listener(event) as listener:
                await client.execute(cmd, arguments or None)

                async def matching() -> dict[str, Any]:
                    while True:
                        msg = await listener.get()
                        data = msg.get("data", {})
                        if all(data.get(k) == v for k, v in match.items()):
                            return dict(msg)

                try:
                    return await asyncio.wait_for(matching(), timeout)
                except TimeoutError:
                    return None

        log.debug("QMP %s -> %s %s (until %s)", self.socket_path.name, cmd, arguments, event)
        return self._run(run(), what=cmd, timeout=timeout + self.timeout)

    def wait_event(self, names: tuple[str, ...], timeout: float) -> dict[str, Any] | None:
        """Wait up to *timeout* seconds for one of the events *names* received since the
        session connected (earlier ones of other names are dropped).

        :returns: the event, or ``None`` if none came in time
        """
        import asyncio

        if self._client is None:
            self.connect()
        listener = self._client.events

        async def run() -> dict[str, Any] | None:
            async def matching() -> dict[str, Any]:
                while True:
                    msg = await listener.get()
                    if msg.get("event") in names:
                        return dict(msg)

            try:
                return await asyncio.wait_for(matching(), timeout)
            except TimeoutError:
                return None

        return self._run(run(), what="wait for " + "/".join(names), timeout=timeout + 1.0)

    def quit(self) -> None:
        """Make QEMU exit now (SHUTDOWN cause ``host-qmp-quit``); the reply may race the
        hang-up, which is not an error here."""
        try:
            self._call("quit")
        except QmpCommandError:
            raise
        except MonitorError as err:
            log.debug("QMP quit: connection closed early: %s", err)
