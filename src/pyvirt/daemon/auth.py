"""Who may call pyvirtd, and the audit log of what they did.

- **unix socket**: trusted. The socket's mode (0660, root's group) is the access control; the
  identity is the peer's uid from ``SO_PEERCRED`` (``uid:0``).
- **TLS**: every request but ``GET /health`` needs ``Authorization: Bearer TOKEN`` (a token of
  ``pyvirt token-create``; identity ``token:NAME``) or a client certificate signed by
  ``--tls-client-ca`` (identity ``cert:CN``), or, from another host of this host's cluster,
  ``Bearer pyvirt-peer:HOST:SECRET`` checked against HOST's registration in etcd (identity
  ``peer:HOST``; :mod:`pyvirt.api.cluster_peers`). Anything else gets 401 in the API's error shape,
  a warning in the daemon log and a line in the audit log. After a few failures from one
  address, each further request from it waits before it is even checked, doubling per failure
  up to a cap (concurrent attempts queue behind each other); a success clears the address.
- **in-process** ASGI clients (tests, no socket): the listeners tag every connection they
  accept (:mod:`pyvirt.daemon.listeners`), so a scope without the tag comes from the same
  process and is trusted as ``local``; an untagged ``https`` scope is still treated as TLS.

Handlers read the caller with :func:`identity_of` (``request.state.identity``) to record
owners. Every POST/PUT/PATCH/DELETE is appended to ``LOG/daemon/audit.log`` as one JSON line:
``time, identity, transport, client, method, path, status, duration_ms``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from pyvirt.api.tokens import TokenStore, tokens_file
from pyvirt.daemon.context import Daemon
from pyvirt.daemon.listeners import PEER, TRANSPORT, WEB_IDENTITY, ASGIApp, Scope

if TYPE_CHECKING:
    from pyvirt.api.cluster_peers import PeerCheck

#: a bearer token of another cluster host (:mod:`pyvirt.api.cluster_peers`)
PEER_PREFIX = "pyvirt-peer:"

__all__ = ["AuditLog", "AuthMiddleware", "FailureThrottle", "identity_of", "is_local"]

log = logging.getLogger("pyvirtd.auth")

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: reachable over TLS without credentials
PUBLIC = frozenset({("GET", "/health")})

_HINT_NONE = (
    "send 'Authorization: Bearer TOKEN' (create one with 'pyvirt token-create NAME' on the "
    "daemon's host; clients read PYVIRT_TOKEN or their client.toml) or a client certificate"
)
_HINT_BAD = "check PYVIRT_TOKEN or client.toml; 'pyvirt token-list' on the daemon's host"


class FailureThrottle:
    """Exponential back-off per client address after repeated authentication failures.

    The first ``free`` failures cost nothing; after that each request from the address waits
    ``base * 2**(failures - free)`` seconds (at most ``cap``) after the previous one's turn,
    so parallel attempts are spread out too. An address with no failure for ``forget``
    seconds starts afresh; at most ``max_clients`` addresses are remembered.
    """

    def __init__(self, *, free: int = 3, base: float = 0.25, cap: float = 8.0,
                 forget: float = 600.0, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.free, self.base, self.cap = free, base, cap
        self.forget, self.max_clients, self.clock = forget, max_clients, clock
        # address -> [failures, next free turn, last failure]
        self._state: dict[str, list[float]] = {}

    def delay(self, addr: str) -> float:
        """Seconds the next request from ``addr`` must wait (its turn is reserved)."""
        st = self._state.get(addr)
        now = self.clock()
        if st is None:
            return 0.0
        if now - st[2] > self.forget:
            del self._state[addr]
            return 0.0
        if st[0] < self.free:
            return 0.0
        step = min(self.base * 2 ** (st[0] - self.free), self.cap)
        turn = max(now, st[1]) + step
        st[1] = turn
        return turn - now

    def failed(self, addr: str) -> int:
        """Count a failure of ``addr``; returns its failures so far."""
        st = self._state.get(addr)
        if st is None:
            if len(self._state) >= self.max_clients:  # forget the oldest address
                del self._state[min(self._state, key=lambda a: self._state[a][2])]
            st = self._state[addr] = [0, 0.0, 0.0]
        st[0] += 1
        st[2] = self.clock()
        return int(st[0])

    def succeeded(self, addr: str) -> None:
        """``addr`` authenticated: forget its failures."""
        self._state.pop(addr, None)


class AuditLog:
    """``LOG/daemon/audit.log``: one JSON object per line, appended (0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def write(self, **entry: Any) -> None:
        """Append one entry, stamped with the current UTC time."""
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        line = json.dumps({"time": stamp, **entry}, separators=(",", ":")) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, line.encode())
            finally:
                os.close(fd)
        except OSError as err:  # the audit log must not take the API down; say it loudly
            log.error("cannot write the audit log %s: %s", self.path, err)


def identity_of(conn: HTTPConnection) -> str:
    """The authenticated caller of a request (``uid:0``, ``token:NAME``, ``cert:CN``,
    ``local``; ``anonymous`` for the health check over TLS)."""
    return str(getattr(conn.state, "identity", "local"))


def is_local(conn: HTTPConnection) -> bool:
    """True if the request came through the unix socket (or from inside the process)."""
    return getattr(conn.state, "transport", "local") in ("unix", "local")


def _transport(scope: Scope) -> str:
    tag = scope.get(TRANSPORT)
    if tag:
        return str(tag)
    return "tls" if scope.get("scheme") in ("https", "wss") else "local"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class AuthMiddleware:
    """ASGI middleware: authenticates every request, audits every mutating one."""

    def __init__(self, app: ASGIApp, daemon: Daemon) -> None:
        self.app = app
        self.tokens = TokenStore(tokens_file(daemon.paths))
        self.audit = AuditLog(daemon.paths.daemon_log_dir / "audit.log")
        self.throttle = FailureThrottle()
        self.daemon = daemon
        self._peer_check: PeerCheck | None = None

    def _peers(self) -> PeerCheck:
        """The cluster's peer-credential check (made on the first peer call: a host outside a
        cluster never loads the cluster code)."""
        if self._peer_check is None:
            self._peer_check = self.daemon.conn.cluster.peer_verifier()
        return self._peer_check

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        transport = _transport(scope)
        method = str(scope.get("method", "GET")) if scope["type"] == "http" else "WEBSOCKET"
        client = scope["client"][0] if scope.get("client") else ""
        if transport == "tls":
            if (method, scope["path"]) in PUBLIC:
                identity: str | None = "anonymous"
            elif scope.get(WEB_IDENTITY):  # a web console session (pyvirt.daemon.web)
                identity = str(scope[WEB_IDENTITY])
            else:
                identity = await self._authenticate(scope, client, start, send)
                if identity is None:
                    return
        else:
            peer = scope.get(PEER) or {}
            identity = f"uid:{peer['uid']}" if "uid" in peer else "local"
        scope["state"] = {**scope.get("state", {}), "identity": identity,
                          "transport": transport}  # fmt: skip
        if method not in MUTATING:
            await self.app(scope, receive, send)
            return
        status, audited = 500, False

        def audit() -> None:
            nonlocal audited
            audited = True
            self.audit.write(
                event="request", identity=identity, transport=transport, client=client,
                method=method, path=scope["path"], query=bytes(scope.get("query_string", b""))
                .decode("latin-1"), status=status,
                duration_ms=round((time.monotonic() - start) * 1000, 1),
            )  # fmt: skip

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif (message["type"] == "http.response.body" and not message.get("more_body")
                  and not audited):  # fmt: skip
                # written before the client has the whole answer: whoever reads the log
                # after a response sees its line
                audit()
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            if not audited:  # no complete response (an error, a lost client)
                audit()

    async def _authenticate(self, scope: Scope, client: str, start: float,
                            send: Any) -> str | None:  # fmt: skip
        """The identity of a TLS request, or None once a 401 was sent."""
        wait = self.throttle.delay(client)
        if wait > 0:
            await asyncio.sleep(wait)
        header = _header(scope, b"authorization")
        peer = scope.get(PEER) or {}
        identity, reason = None, "no credentials"
        if header is not None:
            scheme, _, token = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                reason = "malformed authorization header"
            elif token.strip().startswith(PEER_PREFIX):  # another host of this cluster
                host, reason = await asyncio.to_thread(self._peers().verify, token.strip())
                identity = f"peer:{host}" if host else None
            else:
                name = self.tokens.verify(token.strip())
                identity, reason = (f"token:{name}", "") if name else (None, "invalid token")
        elif "cn" in peer:
            identity = f"cert:{peer['cn']}"
        if identity is not None:
            self.throttle.succeeded(client)
            return identity
        failures = self.throttle.failed(client)
        method = str(scope.get("method", "WEBSOCKET"))
        log.warning("refused %s %s from %s over TLS: %s (%d failures)", method, scope["path"],
                    client, reason, failures)  # fmt: skip
        self.audit.write(
            event="auth-failed", identity=None, transport="tls", client=client, method=method,
            path=scope["path"], status=401, reason=reason,
            duration_ms=round((time.monotonic() - start) * 1000, 1),
        )  # fmt: skip
        await self._refuse(scope, send, reason)
        return None

    @staticmethod
    async def _refuse(scope: Scope, send: Any, reason: str) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        message, hint = {
            "no credentials": ("authentication required", _HINT_NONE),
            "invalid token": ("invalid or revoked API token", _HINT_BAD),
        }.get(reason, (reason, "use 'Authorization: Bearer TOKEN'"))
        if "cluster host" in reason or "peer credential" in reason:
            hint = "only the hosts of this host's cluster may call it ('pyvirt cluster list')"
        body = {"error": message, "hint": hint, "code": "unauthorized"}  # app.error_body's shape
        data = json.dumps(body).encode()
        await send({
            "type": "http.response.start", "status": 401,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(data)).encode()),
                        (b"www-authenticate", b'Bearer realm="pyvirtd"')],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": data})
