"""HTTP/1.1 requests to pyvirtd, over a unix socket, TLS or an ssh tunnel.

>>> client = Client.for_target(resolve("pyvirt:///system"))
>>> client.json("GET", "/api/v1/domains?all=true")

Errors come back as the daemon's one JSON shape ``{"error", "hint", "code"}`` and are raised
as the matching :class:`pyvirt.errors.PyvirtError` subclass, so a remote failure reads the
same as a local one.
"""

from __future__ import annotations

import http.client
import json
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.client.uri import Target
from pyvirt.errors import OperationFailedError, PyvirtError, UnsupportedError, error_class

if TYPE_CHECKING:
    from pyvirt.client.ssh import SSHTunnel

__all__ = ["API", "Client", "Response", "UnixHTTPConnection"]

#: the REST API's path prefix
API = "/api/v1"


def _closed_errors() -> tuple[type[BaseException], ...]:
    """What a request on a connection the daemon closed while idle raises (over TLS, an
    ``SSLEOFError``; ``ssl`` is loaded only once a TLS connection exists)."""
    ssl = sys.modules.get("ssl")
    eof: tuple[type[BaseException], ...] = (ssl.SSLEOFError,) if ssl is not None else ()
    return (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected, *eof)


class UnixHTTPConnection(http.client.HTTPConnection):
    """``http.client`` over a unix stream socket."""

    def __init__(self, path: Path, timeout: float = 300.0) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(str(self.socket_path))
        except OSError as err:
            sock.close()
            raise OperationFailedError(
                f"cannot reach pyvirtd at {self.socket_path}: {err.strerror or err}",
                hint="start it with 'pyvirtd', or use -c pyvirt:///embed to work without it",
            ) from None
        self.sock = sock


@dataclass(frozen=True)
class Response:
    """One HTTP response: status, headers (lower-case names) and body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body parsed as JSON (``None`` for an empty body)."""
        return json.loads(self.body) if self.body else None

    def text(self) -> str:
        """The body as text."""
        return self.body.decode()


class Client:
    """Requests to one daemon; keeps one HTTP/1.1 connection open between requests."""

    def __init__(self, connect: http.client.HTTPConnection, target: Target) -> None:
        self._conn = connect
        #: the connection served a request already (the daemon may close it when idle)
        self._reused = False
        self.target = target
        self.headers: dict[str, str] = {}
        #: the ssh tunnel of a ``pyvirt+ssh://`` client (closed with the client)
        self.tunnel: SSHTunnel | None = None

    @classmethod
    def for_target(cls, target: Target) -> Client:
        """A client for ``target``: a unix socket, TLS (:mod:`pyvirt.client.tls`; the token
        and trust settings of :mod:`pyvirt.client.settings`) or an ssh tunnel to a remote
        unix socket (:mod:`pyvirt.client.ssh`).

        :raises UnsupportedError: for a target with no transport
        :raises PyvirtError: bad TLS settings, or the ssh tunnel cannot be opened
        """
        if target.kind == "unix" and target.path is not None:
            return cls(UnixHTTPConnection(target.path), target)
        if target.kind == "tls":
            from pyvirt.client.settings import settings_for  # local imports: TLS only
            from pyvirt.client.tls import TLSConnection

            settings = settings_for(target)
            client = cls(TLSConnection(target, settings), target)
            if settings.token:
                client.headers["Authorization"] = f"Bearer {settings.token}"
            return client
        if target.kind == "ssh":
            from pyvirt.client.ssh import SSHTunnel  # local import: ssh only

            tunnel = SSHTunnel(target)
            client = cls(UnixHTTPConnection(tunnel.local), target)
            client.tunnel = tunnel
            return client
        raise UnsupportedError(
            f"no transport for connection URI '{target.uri}'",
            hint="use pyvirt:///system or pyvirt+unix:///SOCKET",
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        content_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request and read the whole response; daemon errors are raised.

        :raises PyvirtError: the daemon's error, rebuilt (4xx/5xx)
        """
        hdrs = {**self.headers, **(headers or {})}
        if content_type:
            hdrs["Content-Type"] = content_type
        reused = self._reused
        try:
            try:
                self._conn.request(method, path, body=body, headers=hdrs)
                raw = self._conn.getresponse()
            except _closed_errors():
                if not reused:
                    raise
                # the daemon closed the idle kept-alive connection (its keep-alive timeout)
                # before reading the request: send it once more on a new connection
                self._conn.close()
                self._conn.request(method, path, body=body, headers=hdrs)
                raw = self._conn.getresponse()
            data = raw.read()
            self._reused = True
        except (http.client.HTTPException, OSError) as err:  # OSError: TLS alerts, timeouts
            self._reused = False
            self._conn.close()
            raise OperationFailedError(
                f"lost the connection to pyvirtd ({self.target.uri}): {err}",
                hint="check that pyvirtd is running ('pyvirt uri' names the connection)",
            ) from None
        resp = Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, data)
        if resp.status >= 400:
            raise self.error_of(resp)
        return resp

    def json(self, method: str, path: str, payload: Any = None, **kw: Any) -> Any:
        """A request with a JSON body (when ``payload`` is not None); the JSON reply."""
        body = None if payload is None else json.dumps(payload).encode()
        ctype = None if payload is None else "application/json"
        return self.request(method, path, body=body, content_type=ctype, **kw).json()

    def close(self) -> None:
        """Close the connection (and the ssh tunnel under it)."""
        self._conn.close()
        self._reused = False
        if self.tunnel is not None:
            self.tunnel.close()

    @property
    def connection(self) -> http.client.HTTPConnection:
        """The HTTP connection itself, for bodies streamed instead of held in memory (volume
        uploads and downloads); :meth:`close` resets it after an interrupted exchange."""
        return self._conn

    @staticmethod
    def error_of(resp: Response) -> PyvirtError:
        """The :class:`PyvirtError` a daemon's error response stands for."""
        try:
            doc = resp.json()
            message, hint, code = doc["error"], doc.get("hint"), doc.get("code", "")
        except (ValueError, KeyError, TypeError):
            text = resp.body.decode(errors="replace").strip()[:200]
            return OperationFailedError(f"pyvirtd answered {resp.status}: {text}")
        return error_class(str(code))(str(message), hint=hint)
