"""uvicorn servers for the daemon's listeners, each telling the app who is on the other end.

ASGI scopes carry no socket, yet authentication needs the peer: the unix socket's peer
credentials (``SO_PEERCRED``) and the TLS client certificate. Each listener's server therefore
uses a subclass of uvicorn's HTTP protocol that reads them once per connection and adds two
keys to every request scope of that connection:

- ``pyvirt.transport``: ``"unix"`` or ``"tls"``
- ``pyvirt.peer``: ``{"uid", "gid", "pid"}`` (unix) or ``{"cn"}`` (a verified client cert)

:mod:`pyvirt.daemon.auth` reads them. Several servers (unix + TLS) share one event loop and
one application; only the first runs the application's lifespan.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import uvicorn

__all__ = ["PEER", "TRANSPORT", "WEB_IDENTITY", "listener_config", "serve_all"]

#: scope keys set by the listeners
TRANSPORT = "pyvirt.transport"
PEER = "pyvirt.peer"
#: set by the web console's middleware (pyvirt.daemon.web): a browser session's identity
WEB_IDENTITY = "pyvirt.web_identity"

Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


def _peer_of(transport: asyncio.BaseTransport, kind: str) -> dict[str, Any]:
    """What the connection's other end proved: unix credentials or a client certificate."""
    if kind == "unix":
        sock = transport.get_extra_info("socket")
        if sock is None:
            return {}
        try:
            raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        except OSError:
            return {}
        pid, uid, gid = struct.unpack("3i", raw)
        return {"pid": pid, "uid": uid, "gid": gid}
    cert = transport.get_extra_info("peercert")  # only a certificate that verified
    if not cert:
        return {}
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return {"cn": str(value)}
    return {}


def _tagged(app: ASGIApp, kind: str, peer: dict[str, Any]) -> ASGIApp:
    async def tagged(scope: Scope, receive: Any, send: Any) -> None:
        scope.setdefault(TRANSPORT, kind)  # the innermost wrapper must not undo the outer
        scope.setdefault(PEER, peer)
        await app(scope, receive, send)

    return tagged


def _protocol(base: type[asyncio.Protocol], kind: str) -> type[asyncio.Protocol]:
    """``base`` (uvicorn's HTTP protocol) tagging each request scope with the peer."""

    class PeerProtocol(base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            app: ASGIApp = self.app  # type: ignore[has-type]
            self.app = _tagged(app, kind, _peer_of(transport, kind))

    PeerProtocol.__name__ = f"{kind.capitalize()}{base.__name__}"
    return PeerProtocol


def listener_config(app: Any, kind: str, *, ssl_context: ssl.SSLContext | None = None,
                    lifespan: bool = False) -> uvicorn.Config:  # fmt: skip
    """A loaded uvicorn configuration serving ``app`` on a ``kind`` (``unix``/``tls``)
    listener. Proxy headers are off: ``X-Forwarded-*`` from a client must never change
    the address or scheme authentication sees."""
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on" if lifespan else "off",
        timeout_keep_alive=30, server_header=False, proxy_headers=False,
        timeout_graceful_shutdown=5,
        ssl_context_factory=(lambda _cfg, _default: ssl_context) if ssl_context else None,
    )  # fmt: skip
    config.load()
    base = config.http_protocol_class
    config.http_protocol_class = _protocol(base, kind)
    # websocket upgrades bypass the HTTP protocol's app: tag them by listener at least
    config.loaded_app = _tagged(config.loaded_app, kind, {})
    return config


async def serve_all(servers: list[tuple[uvicorn.Server, list[socket.socket]]]) -> None:
    """Run ``servers`` in this loop: the first (the one with the lifespan) starts first and
    the others once it is up; when one stops (a signal, a failure) all stop."""
    first, first_socks = servers[0]
    tasks = [asyncio.ensure_future(first.serve(sockets=first_socks))]
    while not first.started and not tasks[0].done():
        await asyncio.sleep(0.01)
    if not tasks[0].done():
        tasks += [asyncio.ensure_future(s.serve(sockets=socks)) for s, socks in servers[1:]]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for server, _socks in servers:
            server.should_exit = True
        results = await asyncio.gather(*tasks, return_exceptions=True)
    for res in results:
        if isinstance(res, BaseException) and not isinstance(res, asyncio.CancelledError):
            raise res
