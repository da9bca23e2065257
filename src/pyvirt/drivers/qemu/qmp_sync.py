"""A :class:`~pyvirt.drivers.qemu.qmp.Monitor` on a plain blocking socket: no asyncio, no
``qemu.qmp``.

For short sessions on hot paths (an internal snapshot's few commands in a daemon worker
thread): ``qemu.qmp`` runs a private event loop per session (an epoll set and a self-pipe
made and torn down per session), and formats every message for its debug log, ~1 ms of
CPU per command under a loaded daemon, where this client sends a line and reads lines. The
typed commands are :class:`Monitor`'s (same mixins); errors are the same classes with the
same messages.

Events that arrive while a reply is awaited are kept (for :meth:`SyncMonitor._call_until`);
passing file descriptors (``_send_fd``) works as with :class:`Monitor`.

Round trips: ``qmp_capabilities`` goes out with the connection, before the greeting is read
(QEMU reads it once it sent the greeting), and :meth:`SyncMonitor.pipelined` sends a block
of commands at once (with the connection, if it is not open yet): each reply of QEMU's
comes back through its monitor thread and its main loop, ~0.3-1.3 ms per command on a
loaded host, where a block pays that once.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Args, prune
from pyvirt.drivers.qemu.qmp import DEFAULT_TIMEOUT, Monitor, QmpCommandError
from pyvirt.errors import MonitorError

__all__ = ["SyncMonitor"]


class SyncMonitor(Monitor):
    """A synchronous QMP session on a blocking unix socket; use as a context manager.

    :param socket_path: the QMP unix socket
    :param timeout: seconds for connecting (greeting + ``qmp_capabilities``) and per command
    :param name: a name for log messages (the domain name)
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
        super().__init__(socket_path, timeout, name=name, purpose=purpose, wait=wait)
        self._sock: socket.socket | None = None
        self._buf = b""
        self._events: list[dict[str, Any]] = []
        self._ids = 0
        #: the commands of a :meth:`pipelined` block, sent when it ends
        self._queue: list[dict[str, Any]] | None = None

    # connection ----------------------------------------------------------------------------
    def connect(self) -> None:
        """Connect and negotiate capabilities.

        :raises MonitorError: the socket is missing, refuses, or QEMU does not answer in time
        """
        self._connect([])

    def _connect(self, then: list[dict[str, Any]]) -> None:
        """Connect, sending ``qmp_capabilities`` and the messages *then* at once (their
        replies are left to read)."""
        if self._sock is not None:
            return
        deadline = time.monotonic() + self.timeout
        self._take_lock(deadline)  # the monitor's flock, as Monitor's sessions take it
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        self._sock = sock
        try:
            sock.settimeout(self.timeout)
            sock.connect(str(self.socket_path))
            hello = self._message("qmp_capabilities", None)
            sock.sendall(b"".join(_line(m) for m in (hello, *then)))
            greeting = self._read(deadline, "connect")
            while "event" in greeting:  # an event of the previous session may come first
                greeting = self._read(deadline, "connect")
            if "QMP" not in greeting:
                raise MonitorError(f"QMP 'connect' on '{self.socket_path}' failed: no greeting")
            self._reply(hello)
        except OSError as err:
            self.close()
            detail = str(err) or type(err).__name__
            raise MonitorError(f"QMP 'connect' on '{self.socket_path}' failed: {detail}") from err
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Disconnect (idempotent)."""
        sock, self._sock = self._sock, None
        self._buf = b""
        if sock is not None:
            sock.close()
        self._release_lock()

    def __enter__(self) -> SyncMonitor:
        self.connect()
        return self

    # wire ----------------------------------------------------------------------------------
    def _read(self, deadline: float, what: str) -> dict[str, Any]:
        """The next message (reply or event) by *deadline* (``time.monotonic()``).

        :raises MonitorError: a timeout, a hang-up or a message that is not JSON
        """
        sock = self._sock
        assert sock is not None, "SyncMonitor is not connected"
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(65536)
            except TimeoutError as err:
                raise MonitorError(
                    f"QMP '{what}' on '{self.socket_path}' timed out after {self.timeout:g} s",
                    hint="QEMU may be hung; try destroy",
                ) from err
            except OSError as err:
                detail = str(err) or type(err).__name__
                raise MonitorError(
                    f"QMP '{what}' on '{self.socket_path}' failed: {detail}"
                ) from err
            if not chunk:
                raise MonitorError(f"QMP '{what}' on '{self.socket_path}' failed: EOFError")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        try:
            msg: dict[str, Any] = json.loads(line)
        except ValueError as err:
            raise MonitorError(f"QMP '{what}' on '{self.socket_path}': bad message") from err
        return msg

    def _message(self, cmd: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
        self._ids += 1
        msg: dict[str, Any] = {"execute": cmd, "id": f"pyvirt-{self._ids}"}
        if arguments:
            msg["arguments"] = dict(arguments)
        return msg

    def _command(self, cmd: str, arguments: Mapping[str, Any] | None) -> Any:
        """Send *cmd*, keep the events that come before its reply, return the reply (in a
        :meth:`pipelined` block: queue it, None).

        :raises QmpCommandError: QEMU answered with an error
        """
        msg = self._message(cmd, arguments)
        if self._queue is not None:
            self._queue.append(msg)
            return None
        sock = self._sock
        assert sock is not None, "SyncMonitor is not connected"
        try:
            sock.sendall(_line(msg))
        except OSError as err:
            detail = str(err) or type(err).__name__
            raise MonitorError(f"QMP '{cmd}' on '{self.socket_path}' failed: {detail}") from err
        return self._reply(msg)

    def _reply(self, msg: dict[str, Any]) -> Any:
        """The reply to *msg* (sent), keeping the events that come before it.

        :raises QmpCommandError: QEMU answered with an error
        """
        cmd = str(msg["execute"])
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._read(deadline, cmd)
            if "event" in reply:
                self._events.append(reply)
            elif reply.get("id") == msg["id"]:
                break
        if "error" in reply:
            error = reply["error"]
            desc = str(error.get("desc", ""))
            raise QmpCommandError(
                f"QMP command '{cmd}' failed: {desc}",
                error_class=str(error.get("class", "")),
                command=cmd,
                desc=desc,
                sent=msg,
                received=reply,
            )
        return reply.get("return")

    @contextmanager
    def pipelined(self) -> Iterator[None]:
        """Queue the commands run in this block and send them at once when it ends (with the
        connection if it is not open yet), then read their replies: one round trip for
        all; QEMU runs them in order. For commands whose result is not needed: they return
        None here. If one fails, those after it ran too, and its error is raised once
        every reply is in.

        :raises QmpCommandError: the first command QEMU refused
        :raises MonitorError: the connection failed or timed out
        """
        if self._queue is not None:  # nested: part of the outer block
            yield
            return
        self._queue = []
        try:
            yield
            queue = self._queue
        finally:
            self._queue = None
        if not queue:
            return
        if self._sock is None:
            self._connect(queue)
        else:
            try:
                self._sock.sendall(b"".join(_line(m) for m in queue))
            except OSError as err:
                detail = str(err) or type(err).__name__
                raise MonitorError(f"QMP on '{self.socket_path}' failed: {detail}") from err
        failed: QmpCommandError | None = None
        for msg in queue:
            try:
                self._reply(msg)
            except QmpCommandError as err:
                failed = failed or err
        if failed is not None:
            raise failed

    # commands ------------------------------------------------------------------------------
    def execute(self, cmd: str, args: Mapping[str, Any] | None = None, /, **kwargs: Any) -> Any:
        """Run QMP command ``cmd`` and return its ``return`` value (raw passthrough).

        :raises QmpCommandError: QEMU answered with an error
        :raises MonitorError: the connection failed or timed out
        """
        if self._sock is None and self._queue is None:
            self.connect()
        arguments = {**(args or {}), **kwargs}
        return self._command(cmd, arguments or None)

    def _send_fd(self, fd: int) -> None:
        """Pass open ``fd`` to QEMU with ``SCM_RIGHTS`` (with one space: JSON whitespace)."""
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        try:
            socket.send_fds(self._sock, [b" "], [fd])
        except OSError as err:
            raise MonitorError(f"QMP on '{self.socket_path}': cannot pass an fd: {err}") from err

    def _call_until(
        self, cmd: str, args: Args, *, event: str, match: Mapping[str, str], timeout: float
    ) -> dict[str, Any] | None:
        """Run ``cmd``, then wait up to ``timeout`` seconds for ``event`` whose ``data``
        contains every item of ``match``; events that came with the reply count.

        :returns: the event, or ``None`` if it did not come in time
        :raises QmpCommandError: QEMU refused the command
        """
        if self._sock is None:
            self.connect()
        self._events.clear()  # only events after the command is sent can be its
        self._command(cmd, prune(args) or None)
        deadline = time.monotonic() + timeout

        def matches(msg: dict[str, Any]) -> bool:
            data = msg.get("data", {})
            return msg.get("event") == event and all(data.get(k) == v for k, v in match.items())

        for msg in self._events:
            if matches(msg):
                self._events.clear()
                return msg
        self._events.clear()
        while True:
            try:
                msg = self._read(deadline, cmd)
            except MonitorError:
                if time.monotonic() >= deadline:
                    return None
                raise
            if "event" in msg and matches(msg):
                return msg

    def wait_event(self, names: tuple[str, ...], timeout: float) -> dict[str, Any] | None:
        """Wait up to *timeout* seconds for one of the events *names* (also among those that
        came with earlier replies; others are dropped), as :meth:`Monitor.wait_event`.

        :returns: the event, or ``None`` if none came in time
        """
        if self._sock is None:
            self.connect()
        while self._events:
            msg = self._events.pop(0)
            if msg.get("event") in names:
                return msg
        deadline = time.monotonic() + timeout
        while True:
            if time.monotonic() >= deadline and b"\n" not in self._buf:
                return None
            try:
                msg = self._read(deadline, "wait for " + "/".join(names))
            except MonitorError:
                if time.monotonic() >= deadline:
                    return None
                raise
            if msg.get("event") in names:
                return msg


def _line(msg: dict[str, Any]) -> bytes:
    return json.dumps(msg).encode() + b"\n"
