"""A synchronous client for the QEMU guest agent (``qemu-ga``) over its virtio-serial channel.

The agent runs inside the guest and reads JSON commands from the virtio-serial port named
``org.qemu.guest_agent.0``; QEMU connects that port to a host UNIX socket (a ``<channel
type='unix'>`` whose chardev listens in the domain's run directory). The wire protocol is QMP's
JSON without a greeting or capabilities negotiation, and with two twists this module handles:

* The agent may hold a half-read command or a stale reply from an earlier client that gave
  up. Every session therefore starts with ``guest-sync-delimited``: the client sends a ``0xFF``
  byte (which makes the agent's parser drop any partial input), then the command with a random
  id; the agent answers with a ``0xFF`` byte followed by ``{"return": id}``. Everything before
  that reply is discarded.
* Some commands never answer on success (``guest-shutdown``, ``guest-suspend-*``): the guest
  goes away instead. :meth:`GuestAgent.execute` takes ``reply=False`` for those.

The agent only answers while ``qemu-ga`` runs in the guest; QEMU accepts the socket connection
either way and silently drops what it cannot deliver. A missing answer is therefore only ever
detected by a timeout, which raises :class:`AgentTimeoutError` with a hint.

Typed commands (:meth:`GuestAgent.ping`, :meth:`GuestAgent.get_fsinfo`,
:meth:`GuestAgent.fsfreeze_freeze`...) return the values of :mod:`pyvirt.drivers.qemu.agent_types`;
:meth:`GuestAgent.execute` is the raw passthrough kept for ``qemu-agent-command``.

Errors: :class:`AgentError` (a :class:`~pyvirt.errors.MonitorError`) for an error reply,
keeping the agent's ``class`` and ``desc``; :class:`AgentTimeoutError` (an
:class:`~pyvirt.errors.OperationFailedError`) when nothing answers in time;
:class:`~pyvirt.errors.MonitorError` when the socket is missing or the connection breaks.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from pyvirt.drivers.qemu.agent_types import (
    AgentInfo,
    GuestFilesystem,
    GuestNetworkInterface,
    GuestOsInfo,
    GuestTimezone,
    GuestUser,
)
from pyvirt.errors import MonitorError, OperationFailedError

log = logging.getLogger(__name__)

#: The virtio-serial port name qemu-ga listens on.
CHANNEL_NAME = "org.qemu.guest_agent.0"
#: Seconds allowed for the sync handshake and, by default, for each command.
DEFAULT_TIMEOUT = 10.0
_SENTINEL = b"\xff"
_NO_ANSWER_HINT = (
    "check that the guest has booted and runs qemu-guest-agent, and that the domain has "
    "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
)


class AgentError(MonitorError):
    """The guest agent answered a command with an error.

    :ivar error_class: the agent's error class (``GenericError``, ``CommandNotFound`` ...)
    :ivar desc: the agent's description of the error
    """

    def __init__(self, message: str, *, error_class: str, desc: str, command: str = "") -> None:
        super().__init__(message)
        self.error_class = error_class
        self.desc = desc
        self.command = command


class AgentTimeoutError(OperationFailedError):
    """The guest agent did not answer in time (not running, still booting, or frozen)."""


class GuestAgent:
    """One session with a guest agent; use as a context manager.

    ::

        with GuestAgent(run_dir / "org.qemu.guest_agent.0", name="web1") as ga:
            print(ga.get_host_name())

    :param socket_path: the host side of the agent channel (a listening UNIX socket)
    :param timeout: seconds for connecting, the sync handshake and each command
    :param name: the domain's name, for messages
    """

    def __init__(
        self, socket_path: Path | str, timeout: float = DEFAULT_TIMEOUT, *, name: str = ""
    ) -> None:
        self.socket_path = Path(socket_path)
        self.timeout = timeout
        self.name = name
        self._sock: socket.socket | None = None
        self._buffer = b""

    # connection -------------------------------------------------------------------------

    @property
    def _what(self) -> str:
        return f"guest agent of domain '{self.name}'" if self.name else "guest agent"

    def connect(self) -> None:
        """Connect to the channel socket and synchronize with the agent.

        :raises MonitorError: the socket is missing or refuses connections
        :raises AgentTimeoutError: the agent does not answer the sync in time
        """
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.socket_path))
        except OSError as err:
            sock.close()
            raise MonitorError(
                f"cannot connect to the {self._what} at '{self.socket_path}': "
                f"{err.strerror or err}",
                hint=_NO_ANSWER_HINT,
            ) from err
        self._sock = sock
        self._buffer = b""
        try:
            self.sync()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Disconnect (idempotent)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> GuestAgent:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # wire -------------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        assert self._sock is not None, "GuestAgent is not connected"
        try:
            self._sock.sendall(data)
        except OSError as err:
            raise MonitorError(f"writing to the {self._what} failed: {err}") from err

    def _fill(self, deadline: float, command: str) -> None:
        """Read more bytes into the buffer, waiting at most until *deadline*."""
        assert self._sock is not None, "GuestAgent is not connected"
        left = deadline - time.monotonic()
        if left <= 0:
            raise self._timeout(command)
        self._sock.settimeout(left)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError as err:
            raise self._timeout(command) from err
        except OSError as err:
            raise MonitorError(f"reading from the {self._what} failed: {err}") from err
        if not chunk:
            raise MonitorError(
                f"the {self._what} closed the connection during '{command}'",
                hint="the domain may have stopped; check it with 'domstate'",
            )
        self._buffer += chunk

    def _timeout(self, command: str) -> AgentTimeoutError:
        return AgentTimeoutError(
            f"the {self._what} did not answer '{command}' within {self.timeout:g} s",
            hint=_NO_ANSWER_HINT,
        )

    def _next_message(self, deadline: float, command: str) -> Any:
        """The next JSON message from the agent (one per line; unparsable lines are skipped)."""
        while True:
            while b"\n" not in self._buffer:
                self._fill(deadline, command)
            line, _, self._buffer = self._buffer.partition(b"\n")
            line = line.strip(b" \t\r" + _SENTINEL)
            if not line:
                continue
            try:
                return json.loads(line)
            except ValueError:
                log.debug("guest agent %s: skipping unparsable line %r", self.name, line[:200])

    def _await_error(self, command: str, grace: float) -> None:
        """After a command that answers only on failure: raise the error if one comes."""
        deadline = time.monotonic() + grace
        try:
            while True:
                message = self._next_message(deadline, command)
                if isinstance(message, dict) and "error" in message:
                    self._raise(command, message["error"] or {})
        except AgentTimeoutError:
            return  # silence: the command is running (the guest is going down)
        except AgentError:
            raise
        except MonitorError:
            return  # the connection closed: the guest went away

    def _raise(self, command: str, error: Mapping[str, Any]) -> None:
        desc = str(error.get("desc", "unknown error"))
        raise AgentError(
            f"the {self._what} failed '{command}': {desc}",
            error_class=str(error.get("class", "GenericError")),
            desc=desc,
            command=command,
        )

    def sync(self) -> None:
        """Run the ``guest-sync-delimited`` handshake, dropping stale input on both sides.

        :raises AgentTimeoutError: no matching answer within the timeout
        """
        ident = random.randrange(1, 2**31)
        request = {"execute": "guest-sync-delimited", "arguments": {"id": ident}}
        self._send(_SENTINEL + json.dumps(request).encode() + b"\n")
        deadline = time.monotonic() + self.timeout
        while True:
            # Skip everything up to the agent's delimiter byte, then read one reply.
            while _SENTINEL not in self._buffer:
                self._buffer = b""
                self._fill(deadline, "guest-sync-delimited")
            self._buffer = self._buffer[self._buffer.index(_SENTINEL) + 1 :]
            reply = self._next_message(deadline, "guest-sync-delimited")
            if isinstance(reply, dict) and reply.get("return") == ident:
                return
            log.debug("guest agent %s: dropping stale reply %r", self.name, reply)

    def execute(
        self,
        command: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        reply: bool = True,
        timeout: float | None = None,
        grace: float = 3.0,
    ) -> Any:
        """Run one agent command and return its ``return`` value (raw passthrough, for
        ``qemu-agent-command``; pyvirt's own code uses the typed methods below).

        :param reply: ``False`` for commands that answer nothing on success
            (``guest-shutdown``): ``None`` is returned unless an error arrives within *grace*
            seconds (the agent reports a failed shutdown command that way)
        :param timeout: seconds to wait for the answer (default: the session's timeout)
        :raises AgentError: the agent answered with an error
        :raises AgentTimeoutError: no answer in time
        :raises MonitorError: the connection broke
        """
        if self._sock is None:
            self.connect()
        request: dict[str, Any] = {"execute": command}
        if arguments:
            request["arguments"] = dict(arguments)
        log.debug("guest agent %s: -> %s", self.name, command)
        self._send(json.dumps(request).encode() + b"\n")
        if not reply:
            self._await_error(command, grace)
            return None
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while True:
            message = self._next_message(deadline, command)
            if not isinstance(message, dict):
                continue
            if "error" in message:
                self._raise(command, message["error"] or {})
            if "return" in message:
                return message["return"]

    # typed commands ---------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the agent answers (``guest-ping``)."""
        self.execute("guest-ping")

    def info(self) -> AgentInfo:
        """The agent's version and the commands it supports."""
        return AgentInfo.from_wire(self.execute("guest-info"))

    def get_fsinfo(self) -> list[GuestFilesystem]:
        """The guest's mounted filesystems and the disks they live on."""
        return [GuestFilesystem.from_wire(fs) for fs in self.execute("guest-get-fsinfo")]

    def fsfreeze_freeze(self, mountpoints: list[str] | None = None) -> int:
        """Freeze every filesystem (or those at *mountpoints*); returns how many froze."""
        if mountpoints:
            return int(self.execute("guest-fsfreeze-freeze-list", {"mountpoints": mountpoints}))
        return int(self.execute("guest-fsfreeze-freeze"))

    def fsfreeze_thaw(self) -> int:
        """Thaw the frozen filesystems; returns how many were thawed."""
        return int(self.execute("guest-fsfreeze-thaw"))

    def fsfreeze_status(self) -> str:
        """``frozen`` or ``thawed``."""
        return str(self.execute("guest-fsfreeze-status"))

    def get_time(self) -> int:
        """The guest's clock in nanoseconds since the epoch."""
        return int(self.execute("guest-get-time"))

    def set_time(self, nanoseconds: int | None = None) -> None:
        """Set the guest's clock to *nanoseconds* since the epoch, or from its RTC (``None``)."""
        self.execute("guest-set-time", {"time": nanoseconds} if nanoseconds is not None else None)

    def shutdown(self, mode: str = "powerdown", *, grace: float = 3.0) -> None:
        """Shut the guest down (``powerdown``, ``halt`` or ``reboot``); the agent answers
        only on failure, so this returns once no error came within *grace* seconds."""
        self.execute("guest-shutdown", {"mode": mode}, reply=False, grace=grace)

    def set_user_password(self, user: str, password: str, *, crypted: bool = False) -> None:
        """Set *user*'s password; *crypted* means *password* is already a crypt(3) hash."""
        args = {
            "username": user,
            "password": base64.b64encode(password.encode()).decode(),
            "crypted": crypted,
        }
        self.execute("guest-set-user-password", args)

    def network_get_interfaces(self) -> list[GuestNetworkInterface]:
        """The guest's network interfaces and their addresses."""
        reply = self.execute("guest-network-get-interfaces")
        return [GuestNetworkInterface.from_wire(n) for n in reply]

    def get_users(self) -> list[GuestUser]:
        """The users logged in to the guest."""
        return [GuestUser.from_wire(u) for u in self.execute("guest-get-users")]

    def get_osinfo(self) -> GuestOsInfo:
        """The guest's operating system."""
        return GuestOsInfo.from_wire(self.execute("guest-get-osinfo"))

    def get_timezone(self) -> GuestTimezone:
        """The guest's time zone."""
        return GuestTimezone.from_wire(self.execute("guest-get-timezone"))

    def get_host_name(self) -> str:
        """The guest's host name."""
        return str(self.execute("guest-get-host-name")["host-name"])
