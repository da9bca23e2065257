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

Every ``qemu.qmp`` failure is wrapped in :class:`pyvirt.errors.MonitorError` with the command
in the message; a QMP error reply becomes :class:`QmpCommandError`, which keeps the command,
QEMU's error class and description, and the messages sent and received.
"""

from __future__ import annotations

import logging
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
    """

    def __init__(
        self, socket_path: Path | str, timeout: float = DEFAULT_TIMEOUT, *, name: str | None = None
    ) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: Any = None

    # connection ----------------------------------------------------------------------------

    def connect(self) -> None:
        """Connect and negotiate capabilities.

        :raises MonitorError: the socket is missing, refuses, or QEMU does not answer in time
        """
        import asyncio

        from qemu.qmp import QMPClient

        if self._client is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient(self.name)
        try:
            self._run(self._client.connect(str(self.socket_path)), what="connect")
        except MonitorError:
            self._close_loop()
            self._client = None
            raise

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
            raise MonitorError(
                f"QMP '{what}' on '{self.socket_path}' timed out after {self.timeout:g} s",
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

    def quit(self) -> None:
        """Make QEMU exit now (SHUTDOWN cause ``host-qmp-quit``); the reply may race the
        hang-up, which is not an error here."""
        try:
            self._call("quit")
        except QmpCommandError:
            raise
        except MonitorError as err:
            log.debug("QMP quit: connection closed early: %s", err)
