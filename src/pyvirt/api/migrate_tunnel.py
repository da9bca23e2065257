"""The source's end of a tunnelled migration (virsh ``migrate --p2p --tunnelled``): the
migration stream goes through the destination daemon's own authenticated channel, so no
port is opened for QEMU on either host.

1. The destination prepares its QEMU listening on a unix socket in its scratch directory.
2. :func:`open_tunnel` makes a socket pair: QEMU gets one end (``getfd`` + ``migrate
   fd:``); a thread of this process reads the other and sends it as the chunked body of
   ``POST /api/v1/migrations/incoming/{name}/tunnel`` to the destination daemon (its TLS
   and token, or its unix socket), which writes it into its QEMU's socket.
3. Once the source QEMU completed, :meth:`Tunnel.release` lets the stream end (QEMU
   closes its end) while the destination waits for the rest; :meth:`Tunnel.finish` waits
   until the destination answered; :meth:`Tunnel.abort` breaks it off (the destination's
   QEMU then sees a broken stream and is stopped by the caller).

When the destination is an embedded connection (both hosts are this machine) QEMU gets a
socket connected to the incoming QEMU's directly, with nothing to pump.

The stream is copied in a thread with blocking sockets: backpressure is the kernel's (a
slow destination blocks the copy, which blocks QEMU's migration thread, which QEMU's rate
measurement sees); a daemon's event loop is never involved on this side.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from typing import TYPE_CHECKING
from urllib.parse import quote

from pyvirt.errors import OperationFailedError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.client.transport import Client

__all__ = ["CHUNK", "Tunnel", "open_tunnel"]

# lazy: function-local imports marked ``# lazy`` load the HTTP client only for a tunnel to a
# daemon.

#: bytes read from QEMU's stream per chunk of the request body
CHUNK = 1 << 20


class Tunnel:
    """One tunnelled migration stream: :attr:`qemu_fd` goes to the source QEMU."""

    def __init__(self, qemu_end: socket.socket, pump: _Pump | None = None) -> None:
        self._qemu_end: socket.socket | None = qemu_end
        self._pump = pump

    @property
    def qemu_fd(self) -> int:
        """The socket to pass to the source QEMU (``fd:``)."""
        assert self._qemu_end is not None
        return self._qemu_end.fileno()

    @property
    def sent(self) -> int:
        """Bytes carried to the destination daemon so far."""
        return self._pump.sent if self._pump is not None else 0

    @property
    def error(self) -> PyvirtError | None:
        """Why the tunnel broke (the destination's own error when it answered one)."""
        return self._pump.error if self._pump is not None else None

    def release(self) -> None:
        """Close this process's copy of QEMU's end (QEMU has its own): the stream ends
        when QEMU closes it."""
        self._drop_qemu_end()

    def _drop_qemu_end(self) -> None:
        if self._qemu_end is not None:
            self._qemu_end.close()  # QEMU holds its own copy
            self._qemu_end = None

    def finish(self, timeout: float = 60.0) -> None:
        """Wait until the whole stream reached the destination daemon (after the source
        QEMU completed its migration).

        :raises OperationFailedError: the tunnel broke, the destination refused the stream
            or it did not end within *timeout* seconds
        """
        self._drop_qemu_end()
        pump = self._pump
        if pump is None:
            return
        pump.join(timeout)
        if pump.is_alive():
            pump.abort()
            raise OperationFailedError(
                f"the migration tunnel did not end within {timeout:g} s after the migration "
                "completed",
                hint="the guest runs on the source",
            )
        if pump.error is not None:
            raise pump.error

    def abort(self) -> None:
        """Break the stream off (a failed or cancelled migration); never raises."""
        self._drop_qemu_end()
        if self._pump is not None:
            self._pump.abort()


def open_tunnel(target: Connection, name: str, uri: str) -> Tunnel:
    """A tunnel to the incoming migration of domain *name* that *target* prepared (its
    QEMU listening on *uri*, ``unix:PATH`` on the destination host).

    :raises OperationFailedError: the destination's daemon cannot be reached
    :raises PyvirtError: it refused the tunnel (no such incoming migration, a bad token)
    """
    from pyvirt.client.transport import Client  # lazy

    client = getattr(target, "client", None)  # a daemon's connection has one
    if not isinstance(client, Client):  # an embedded one: the same machine, QEMU to QEMU
        if not uri.startswith("unix:"):
            raise OperationFailedError(f"the incoming migration listens on '{uri}', not on a "
                                       "unix socket")  # fmt: skip
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(uri[len("unix:") :])
        except OSError as err:
            sock.close()
            raise OperationFailedError(
                f"cannot reach the incoming migration of domain '{name}': {err.strerror or err}",
                hint="the guest runs on the source",
            ) from None
        return Tunnel(sock)
    pump = _Pump(client, name)
    try:
        pump.connect()
    except BaseException:
        pump.close()
        raise
    qemu_end, ours = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    # (the kernel's default buffers: what is in them at switch-over lengthens the downtime)
    pump.source = ours
    pump.start()
    return Tunnel(qemu_end, pump)


class _Pump(threading.Thread):
    """Copies QEMU's stream into a chunked request body to the destination daemon."""

    def __init__(self, client: Client, name: str) -> None:
        super().__init__(name=f"migrate-tunnel-{name}", daemon=True)
        from pyvirt.client.transport import API, Client  # lazy

        own = Client.for_target(client.target)  # a connection of its own
        own.headers.update(client.headers)  # the same token
        self.client = own
        self.domain = name
        self.path = f"{API}/migrations/incoming/{quote(name, safe='')}/tunnel"
        self.source: socket.socket | None = None
        self.sent = 0
        self.error: PyvirtError | None = None
        self._aborted = False
        self._lock = threading.Lock()

    def connect(self) -> None:
        """Send the request's head (the body follows in :meth:`run`)."""
        conn = self.client.connection
        try:
            conn.putrequest("POST", self.path, skip_accept_encoding=True)
            for key, value in self.client.headers.items():
                conn.putheader(key, value)
            conn.putheader("Content-Type", "application/octet-stream")
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
        except (OSError, http.client.HTTPException) as err:
            raise self._broken(err) from None

    def _broken(self, err: BaseException) -> OperationFailedError:
        return OperationFailedError(
            f"the migration tunnel to {self.client.target.uri} broke: {err or type(err).__name__}",
            hint="the guest runs on the source; check the destination's daemon log",
        )

    def run(self) -> None:
        src = self.source
        conn = self.client.connection
        assert src is not None and conn.sock is not None
        out = conn.sock
        try:
            while True:
                data = src.recv(CHUNK)
                if not data or self._aborted:
                    break
                out.sendall(b"%x\r\n%b\r\n" % (len(data), data))
                self.sent += len(data)
            if not self._aborted:
                out.sendall(b"0\r\n\r\n")
                self._answer(conn)
        except (OSError, http.client.HTTPException) as err:
            if not self._aborted:
                self.error = self._answer_after(conn) or self._broken(err)
        finally:
            src.close()  # QEMU's writes fail now: its migration fails if it still ran
            self.close()

    def _answer(self, conn: http.client.HTTPConnection) -> None:
        from pyvirt.client.transport import Client, Response  # lazy

        raw = conn.getresponse()
        body = raw.read()
        if raw.status >= 400:
            headers = {k.lower(): v for k, v in raw.getheaders()}
            self.error = Client.error_of(Response(raw.status, headers, body))

    def _answer_after(self, conn: http.client.HTTPConnection) -> PyvirtError | None:
        """The destination's error when it answered before the stream ended."""
        with contextlib.suppress(OSError, http.client.HTTPException):
            self._answer(conn)
        return self.error

    def abort(self) -> None:
        """Break the connection and the stream off; the thread ends."""
        self._aborted = True
        with self._lock:
            sock = self.client.connection.sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        if self.source is not None:
            with contextlib.suppress(OSError):
                self.source.shutdown(socket.SHUT_RDWR)
        if self.is_alive():
            self.join(10)
        self.close()

    def close(self) -> None:
        """Close the connection to the destination daemon."""
        with self._lock, contextlib.suppress(OSError):
            self.client.close()
