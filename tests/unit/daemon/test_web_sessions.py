"""The web console's users (scrypt hashes), sessions, CSRF and page redirects, in process
(httpx's ASGI transport; the TLS listener's scope keys are added by a wrapper, as in
test_auth.py). tests/integration/test_web_login.py does the same in a real browser."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pyvirt.api import users
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.listeners import PEER, TRANSPORT
from pyvirt.daemon.web.sessions import SessionStore
from pyvirt.errors import AlreadyExistsError, InvalidConfigError, NotFoundError
from pyvirt.state.paths import StatePaths


@pytest.fixture
def paths(tmp_path: Path) -> StatePaths:
    return StatePaths.from_root(tmp_path)


@pytest.fixture
def app(paths: StatePaths) -> Iterator[Any]:
    yield create_app(Daemon(DaemonConfig(paths), conn=None))  # type: ignore[arg-type]


def _session(app: Any, steps: Any) -> Any:
    """Run ``steps(client)`` with an httpx client whose requests arrive as TLS requests."""

    async def tagged(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[TRANSPORT], scope[PEER], scope["scheme"] = "tls", {}, "https"
        await app(scope, receive, send)

    async def go() -> Any:
        asgi = httpx.ASGITransport(app=tagged, client=("192.0.2.9", 40000))
        async with httpx.AsyncClient(transport=asgi, base_url="https://pyvirtd") as c:
            return await steps(c)

    return asyncio.run(go())


def test_users_are_stored_hashed(paths: StatePaths) -> None:
    users.add_user("alice", "a long password", paths)
    raw = users.users_file(paths).read_text()
    assert "a long password" not in raw and "scrypt$" in raw
    assert users.users_file(paths).stat().st_mode & 0o777 == 0o600
    store = users.UserStore(users.users_file(paths))
    assert store.verify("alice", "a long password")
    assert not store.verify("alice", "a long passwore")
    assert not store.verify("bob", "a long password")
    with pytest.raises(AlreadyExistsError):
        users.add_user("alice", "another password", paths)
    with pytest.raises(InvalidConfigError, match="8 to 1024"):
        users.add_user("bob", "short", paths)
    with pytest.raises(InvalidConfigError, match="invalid user name"):
        users.add_user("-x", "a long password", paths)
    assert [u.name for u in users.list_users(paths)] == ["alice"]
    users.delete_user("alice", paths)
    assert not store.exists("alice")
    with pytest.raises(NotFoundError):
        users.delete_user("alice", paths)


def test_sessions_expire() -> None:
    now = [0.0]
    store = SessionStore(idle=10, lifetime=100, clock=lambda: now[0])
    s = store.create("alice")
    now[0] = 9
    assert store.get(s.id) is s
    now[0] = 18  # seen at 9: still within the idle time
    assert store.get(s.id) is s
    now[0] = 29
    assert store.get(s.id) is None
    s2 = store.create("alice")
    for t in range(30, 140, 9):
        now[0] = t
        if store.get(s2.id) is None:
            break
    assert t > 100 and store.get(s2.id) is None  # the lifetime ends it
    assert store.get("nope") is None and store.get(None) is None


def test_login_session_csrf_logout(app: Any, paths: StatePaths) -> None:
    users.add_user("alice", "a long password", paths)

    async def steps(c: httpx.AsyncClient) -> None:
        r = await c.get("/")
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert (await c.get("/api/v1/session")).status_code == 401
        r = await c.get("/login")
        assert r.status_code == 200 and "User name" in r.text and "Log in" in r.text
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        r = await c.post("/login", data={"user": "alice", "password": "wrong"})
        assert r.status_code == 401 and "Wrong user name or password." in r.text
        r = await c.post("/login", data={"user": "alice", "password": "a long password"})
        assert r.status_code == 303 and r.headers["location"] == "/"
        cookies = r.headers.get_list("set-cookie")
        session = next(x for x in cookies if x.startswith("pyvirt_session="))
        assert "HttpOnly" in session and "Secure" in session and "SameSite=strict" in session
        csrf = c.cookies["pyvirt_csrf"]
        r = await c.get("/api/v1/session")
        assert r.json() == {"identity": "user:alice", "user": "alice", "cluster": False}
        r = await c.post("/api/v1/pools/x/start")
        assert r.status_code == 403 and r.json()["code"] == "forbidden"
        r = await c.post("/logout", headers={"X-CSRF-Token": "wrong"})
        assert r.status_code == 403
        r = await c.post("/logout", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert (await c.get("/api/v1/session")).status_code == 401

    _session(app, steps)


def test_json_login_and_deleted_user(app: Any, paths: StatePaths) -> None:
    users.add_user("alice", "a long password", paths)

    async def steps(c: httpx.AsyncClient) -> None:
        r = await c.post("/login", json={"user": "alice", "password": "a long password"})
        assert r.status_code == 200 and r.json()["user"] == "alice"
        assert r.json()["csrf"] == c.cookies["pyvirt_csrf"]
        assert (await c.get("/api/v1/session")).status_code == 200
        users.delete_user("alice", paths)
        assert (await c.get("/api/v1/session")).status_code == 401
        r = await c.post("/login", json={"user": "alice", "password": "a long password"})
        assert r.status_code == 401 and json.loads(r.text)["code"] == "unauthorized"

    _session(app, steps)
