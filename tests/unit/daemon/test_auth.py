"""pyvirtd's authentication middleware, token store, back-off and audit log, in process.

Requests go through the real application (httpx's ASGI transport); a wrapper adds the scope
keys the real listeners set (transport and peer), so every path of the middleware is driven
without sockets. tests/integration/test_daemon_auth.py does the same over real TLS.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pyvirt.api import tokens
from pyvirt.daemon.app import create_app
from pyvirt.daemon.auth import FailureThrottle
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.listeners import PEER, TRANSPORT
from pyvirt.errors import AlreadyExistsError, InvalidConfigError, NotFoundError
from pyvirt.state.paths import StatePaths


@pytest.fixture
def paths(tmp_path: Path) -> StatePaths:
    return StatePaths.from_root(tmp_path)


@pytest.fixture
def app(paths: StatePaths) -> Iterator[Any]:
    daemon = Daemon(DaemonConfig(paths), conn=None)  # type: ignore[arg-type]
    yield create_app(daemon)


def _call(app: Any, method: str, path: str, *, transport: str | None, peer: dict[str, Any],
          headers: dict[str, str] | None = None, body: Any = None,
          client: str = "192.0.2.7") -> httpx.Response:  # fmt: skip
    async def tagged(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if transport:
            scope[TRANSPORT] = transport
            scope[PEER] = peer
        if transport == "tls":
            scope["scheme"] = "https"
        await app(scope, receive, send)

    async def go() -> httpx.Response:
        asgi = httpx.ASGITransport(app=tagged, client=(client, 40000))
        async with httpx.AsyncClient(transport=asgi, base_url="http://pyvirtd") as c:
            return await c.request(method, path, headers=headers, json=body)

    return asyncio.run(go())


def _audit(paths: StatePaths) -> list[dict[str, Any]]:
    log = paths.daemon_log_dir / "audit.log"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_tls_without_credentials_is_401_in_the_error_shape_and_audited(
    app: Any, paths: StatePaths
) -> None:
    r = _call(app, "GET", "/api/v1/tokens", transport="tls", peer={})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    assert r.json()["error"] == "authentication required"
    assert "token-create" in r.json()["hint"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    (line,) = _audit(paths)
    assert line["event"] == "auth-failed" and line["status"] == 401
    assert line["client"] == "192.0.2.7" and line["path"] == "/api/v1/tokens"


def test_tls_health_needs_no_credentials(app: Any) -> None:
    r = _call(app, "GET", "/health", transport="tls", peer={})
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert _call(app, "POST", "/health", transport="tls", peer={}).status_code == 401


@pytest.mark.parametrize(
    ("header", "message"),
    [("Bearer pyvirt_nope", "invalid or revoked API token"),
     ("Basic dXNlcjpwYXNz", "malformed authorization header"),
     ("Bearer ", "malformed authorization header")],
)  # fmt: skip
def test_tls_bad_credentials_are_401(app: Any, header: str, message: str) -> None:
    r = _call(app, "GET", "/openapi.json", transport="tls", peer={},
              headers={"Authorization": header})  # fmt: skip
    assert r.status_code == 401
    assert r.json()["error"] == message


def test_tls_token_authenticates_and_owns_its_requests(app: Any, paths: StatePaths) -> None:
    _info, secret = tokens.create_token("ci", paths)
    auth = {"Authorization": f"Bearer {secret}"}
    assert _call(app, "GET", "/openapi.json", transport="tls", peer={}, headers=auth).is_success
    # a token may not manage tokens: 403, audited with the token's identity
    r = _call(app, "POST", "/api/v1/tokens", transport="tls", peer={}, headers=auth,
              body={"name": "more"})  # fmt: skip
    assert r.status_code == 403 and r.json()["code"] == "forbidden"
    last = _audit(paths)[-1]
    assert last["identity"] == "token:ci" and last["transport"] == "tls"
    assert last["method"] == "POST" and last["status"] == 403
    # revoked: refused from the next request on (the store rereads the file)
    tokens.delete_token("ci", paths)
    r = _call(app, "GET", "/openapi.json", transport="tls", peer={}, headers=auth)
    assert r.status_code == 401


def test_tls_client_certificate_authenticates(app: Any, paths: StatePaths) -> None:
    r = _call(app, "DELETE", "/api/v1/tokens/x", transport="tls", peer={"cn": "alice"})
    assert r.status_code == 403  # authenticated (not 401), but not local
    assert _audit(paths)[-1]["identity"] == "cert:alice"


def test_unix_is_trusted_with_the_peer_uid(app: Any, paths: StatePaths) -> None:
    peer = {"uid": 1234, "gid": 1234, "pid": 99}
    r = _call(app, "POST", "/api/v1/tokens", transport="unix", peer=peer, body={"name": "ci"})
    assert r.status_code == 201
    assert r.json()["token"].startswith(tokens.TOKEN_PREFIX)
    assert r.json()["name"] == "ci"
    r = _call(app, "GET", "/api/v1/tokens", transport="unix", peer=peer)
    assert [t["name"] for t in r.json()] == ["ci"] and "token" not in r.json()[0]
    r = _call(app, "DELETE", "/api/v1/tokens/ci", transport="unix", peer=peer)
    assert r.status_code == 204
    lines = _audit(paths)
    assert [(x["method"], x["status"], x["identity"], x["transport"]) for x in lines] == [
        ("POST", 201, "uid:1234", "unix"),
        ("DELETE", 204, "uid:1234", "unix"),
    ]
    assert all(x["duration_ms"] >= 0 and x["time"].endswith("Z") for x in lines)
    stored = json.loads(tokens.tokens_file(paths).read_text())
    assert stored["tokens"] == []


def test_in_process_requests_are_local(app: Any) -> None:
    assert _call(app, "GET", "/api/v1/tokens", transport=None, peer={}).status_code == 200


def test_throttle_doubles_after_free_failures_and_serializes_parallel_attempts() -> None:
    now = [100.0]
    t = FailureThrottle(free=3, base=0.25, cap=2.0, forget=60.0, clock=lambda: now[0])
    delays = []
    for _ in range(7):
        delays.append(t.delay("a"))
        now[0] += delays[-1]  # the request slept that long, then failed
        t.failed("a")
    assert delays == [0, 0, 0, 0.25, 0.5, 1.0, 2.0]
    # parallel attempts (no time passes between them) queue behind each other
    assert [t.delay("a") for _ in range(3)] == [2.0, 4.0, 6.0]
    assert t.delay("b") == 0  # per address
    t.succeeded("a")
    assert t.delay("a") == 0
    for _ in range(5):
        t.failed("c")
    now[0] += 61  # forgotten after a quiet minute
    assert t.delay("c") == 0


def test_throttle_bounds_its_memory() -> None:
    now = [0.0]
    t = FailureThrottle(max_clients=3, clock=lambda: now[0])
    for i in range(5):
        now[0] += 1
        t.failed(f"10.0.0.{i}")
    assert len(t._state) == 3 and "10.0.0.4" in t._state and "10.0.0.0" not in t._state


def test_token_file_is_hashed_private_and_validated(paths: StatePaths) -> None:
    info, secret = tokens.create_token("ci", paths)
    path = tokens.tokens_file(paths)
    assert path.stat().st_mode & 0o777 == 0o600
    assert secret not in path.read_text()
    assert tokens.hash_token(secret) in path.read_text()
    assert len(secret) > 40
    with pytest.raises(AlreadyExistsError):
        tokens.create_token("ci", paths)
    with pytest.raises(InvalidConfigError):
        tokens.create_token("../x", paths)
    with pytest.raises(NotFoundError):
        tokens.delete_token("nope", paths)
    store = tokens.TokenStore(path)
    assert store.verify(secret) == "ci"
    assert store.verify(secret + "x") is None
    assert [t.name for t in tokens.list_tokens(paths)] == ["ci"] and info.name == "ci"
    path.write_text("{not json")
    assert store.verify(secret) is None  # a broken file authenticates nobody
    with pytest.raises(InvalidConfigError):
        tokens.list_tokens(paths)
