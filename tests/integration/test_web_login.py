"""The web console's login (issue 13): the form, a wrong password, logout, and nothing of the
UI or its API reachable without a session or a token; CSRF on state-changing requests."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PYVIRT
from tests.webhelp import PASSWORD, USER, Web, goto, screens_dir, web_console


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Web]:
    root = Path(tmp_path_factory.mktemp("weblogin")) / "s"
    with web_console(root, screens_dir(tmp_path_factory, "login")) as w:
        yield w


def _fetch(url: str, method: str = "GET", headers: dict[str, str] | None = None,
           body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_a: object, **_k: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect, urllib.request.HTTPSHandler(context=ctx))
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def test_unauthenticated_requests_are_refused(web: Web) -> None:
    status, headers, _ = _fetch(web.base + "/")
    assert status == 303 and headers["location"] == "/login"
    assert _fetch(web.base + "/ui/app.js")[0] == 303
    status, _, body = _fetch(web.base + "/api/v1/domains")
    assert status == 401 and json.loads(body)["code"] == "unauthorized"
    assert _fetch(web.base + "/api/v1/events")[0] == 401
    assert _fetch(web.base + "/health")[0] == 200
    # a forged session cookie is no session
    assert _fetch(web.base + "/api/v1/domains", headers={"Cookie": "pyvirt_session=x"})[0] == 401


def test_login_page_and_wrong_password(web: Web) -> None:
    context = web.new_context()
    try:
        page = context.new_page()
        goto(page, web.base + "/")
        assert page.url == web.base + "/login"
        web.shot("login", page)
        web.login(page, USER, "wrong password")
        assert page.get_by_role("alert").inner_text() == "Wrong user name or password."
        web.shot("login-refused", page)
        assert not [c for c in context.cookies() if c["name"] == "pyvirt_session"]
        web.login(page, USER, PASSWORD)
        page.wait_for_url(web.base + "/")
        cookie = next(c for c in context.cookies() if c["name"] == "pyvirt_session")
        assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(web.base + "/login")
        goto(page, web.base + "/")
        assert page.url == web.base + "/login"  # the session is gone
        r = context.request.get(web.base + "/api/v1/session", max_redirects=0)
        assert r.status == 401
    finally:
        context.close()


def test_session_needs_csrf_for_changes(web: Web) -> None:
    page = web.page
    who = page.request.get(web.base + "/api/v1/session").json()
    assert who == {"identity": f"user:{USER}", "user": USER, "cluster": False}
    # the session's cookie alone does not change anything
    r = page.request.post(web.base + "/api/v1/pools/nope/start")
    assert r.status == 403 and "csrf" in r.json()["error"].lower()
    token = next(c["value"] for c in web.context.cookies() if c["name"] == "pyvirt_csrf")
    r = page.request.post(web.base + "/api/v1/pools/nope/start",
                          headers={"X-CSRF-Token": token})  # fmt: skip
    assert r.status == 404  # past authentication: the pool does not exist
    # users are managed on the daemon's host only
    r = page.request.get(web.base + "/api/v1/users")
    assert r.status == 403


def test_user_add_through_the_daemon(web: Web) -> None:
    """``pyvirt user-add`` reads the password from stdin and goes through the daemon's unix
    socket; the new user can log in at once, and ``user-delete`` ends its session."""
    env = {**os.environ, "PYVIRT_STATE_DIR": str(web.daemon.root)}
    cli = [*PYVIRT, "-c", web.daemon.uri]
    res = subprocess.run([*cli, "user-add", "bob"], input="bob's password\n", env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert res.returncode == 0 and res.stdout == "User 'bob' added\n", res.stderr
    assert "bob's password" not in (web.daemon.root / "lib" / "daemon" / "users.json").read_text()
    context = web.new_context()
    try:
        r = context.request.post(web.base + "/login",
                                 data={"user": "bob", "password": "bob's password"},
                                 headers={"Content-Type": "application/json"})  # fmt: skip
        assert r.status == 200 and r.json()["user"] == "bob"
        assert context.request.get(web.base + "/api/v1/session").json()["user"] == "bob"
        res = subprocess.run([*cli, "user-delete", "bob"], env=env, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
        assert res.returncode == 0, res.stderr
        r = context.request.get(web.base + "/api/v1/session", max_redirects=0)
        assert r.status == 401
    finally:
        context.close()
