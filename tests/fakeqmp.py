"""A fake QMP server (and guest agent) on a real unix socket, for fast tests.

It speaks enough of the protocol for ``qemu.qmp`` and :mod:`pyvirt.drivers.qemu.agent`:
the greeting, ``qmp_capabilities``, command ids, error replies, events; in agent mode no
greeting but the ``guest-sync-delimited`` handshake (``0xFF`` + ``{"return": id}``).

Replies are registered per command, as a fixed value, an error, or a callable that gets the
arguments (and may raise :class:`QmpError` or queue events with :meth:`FakeQmp.event`).
Every command received is recorded with its arguments in :attr:`FakeQmp.commands`.
Unregistered commands get QEMU's ``CommandNotFound`` error.

::

    def test_status(fake_qmp: FakeQmp) -> None:
        fake_qmp.on("query-status", {"status": "running", "running": True})
        with Monitor(fake_qmp.path) as mon:
            assert mon.query_status() == ("running", True)
        assert fake_qmp.names() == ["query-status"]
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: A handler: the command's arguments -> its return value.
Handler = Callable[[dict[str, Any]], Any]
#: Returned by a handler of a command that answers nothing (``guest-shutdown``).
NO_REPLY = object()
#: Returned by a handler to close the connection instead of answering (QEMU exiting).
HANG_UP = object()
_DECODER = json.JSONDecoder()

GREETING = {
    "QMP": {
        "version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"},
        "capabilities": [],
    }
}


class QmpError(Exception):
    """Raised by a handler: the command fails with QMP error *klass* and *desc*."""

    def __init__(self, klass: str, desc: str) -> None:
        super().__init__(desc)
        self.klass = klass
        self.desc = desc


@dataclass(frozen=True)
class Call:
    """One command the server received."""

    name: str
    args: dict[str, Any]


class FakeQmp:
    """The server; start it with :meth:`start` (or use the ``fake_qmp`` fixture).

    :param path: the unix socket to listen on
    :param agent: speak the guest agent's dialect instead of QMP
    """

    def __init__(self, path: Path, *, agent: bool = False) -> None:
        self.path = path
        self.agent = agent
        self.commands: list[Call] = []
        self._handlers: dict[str, Handler] = {}
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._threads: list[threading.Thread] = []
        self._conns: list[socket.socket] = []
        self._stopping = False

    # registration ----------------------------------------------------------------------------
    def on(self, name: str, value: Any = None, *, error: tuple[str, str] | None = None) -> None:
        """Answer *name* with *value* (or fail with ``(class, desc)``)."""
        if error is not None:
            klass, desc = error

            def fail(args: dict[str, Any]) -> Any:
                raise QmpError(klass, desc)

            self._handlers[name] = fail
        else:
            self._handlers[name] = lambda args: value

    def on_call(self, name: str, handler: Handler) -> None:
        """Answer *name* with whatever *handler* returns for the command's arguments."""
        self._handlers[name] = handler

    def event(self, name: str, data: dict[str, Any]) -> None:
        """Queue event *name*: it is sent after the reply of the command being handled."""
        with self._lock:
            self._events.append({"event": name, "data": data, "timestamp": _stamp()})

    # records ---------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The names of the commands received, in order (``qmp_capabilities`` left out)."""
        return [c.name for c in self.commands if c.name != "qmp_capabilities"]

    def calls(self, name: str) -> list[dict[str, Any]]:
        """The arguments of every *name* command received."""
        return [c.args for c in self.commands if c.name == name]

    # server ----------------------------------------------------------------------------------
    def start(self) -> FakeQmp:
        """Listen and serve every connection in a thread of its own."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(self.path))
        sock.listen(8)
        sock.settimeout(0.02)
        self._sock = sock
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop listening and hang up on every client."""
        self._stopping = True
        for conn in list(self._conns):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
        self.path.unlink(missing_ok=True)

    def _accept(self) -> None:
        assert self._sock is not None
        while not self._stopping:
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._conns.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(0.02)
            if not self.agent:
                self._send(conn, GREETING)
            buffer = b""
            while not self._stopping:
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                buffer += chunk
                while True:
                    buffer = buffer.lstrip(b" \t\r\n\xff")
                    if not buffer:
                        break
                    try:
                        msg, end = _DECODER.raw_decode(buffer.decode())
                    except ValueError:
                        break  # an incomplete message: wait for more
                    buffer = buffer.decode()[end:].encode()
                    self._handle(conn, msg)

    def _handle(self, conn: socket.socket, msg: dict[str, Any]) -> None:
        name = str(msg.get("execute"))
        args = dict(msg.get("arguments") or {})
        ident = msg.get("id")
        with self._lock:
            self.commands.append(Call(name, args))
        if name == "guest-sync-delimited" and self.agent:
            conn.sendall(b"\xff" + json.dumps({"return": args["id"]}).encode() + b"\n")
            return
        reply: dict[str, Any]
        if name == "qmp_capabilities" and not self.agent:
            reply = {"return": {}}
        else:
            handler = self._handlers.get(name)
            try:
                if handler is None:
                    raise QmpError("CommandNotFound", f"The command {name} has not been found")
                value = handler(args)
            except QmpError as err:
                reply = {"error": {"class": err.klass, "desc": err.desc}}
            else:
                if value is NO_REPLY:
                    return
                if value is HANG_UP:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)
                    return
                reply = {"return": {} if value is None else value}
        if ident is not None:
            reply["id"] = ident
        self._send(conn, reply)
        with self._lock:
            events, self._events = self._events, []
        for event in events:
            self._send(conn, event)

    @staticmethod
    def _send(conn: socket.socket, msg: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            conn.sendall(json.dumps(msg).encode() + b"\r\n")


def _stamp() -> dict[str, int]:
    now = time.time()
    return {"seconds": int(now), "microseconds": int(now % 1 * 1e6)}


@contextlib.contextmanager
def serving(path: Path, *, agent: bool = False) -> Iterator[FakeQmp]:
    """A started :class:`FakeQmp` on *path*, stopped on exit."""
    server = FakeQmp(path, agent=agent).start()
    try:
        yield server
    finally:
        server.stop()
