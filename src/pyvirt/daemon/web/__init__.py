"""The web console: static files, login, sessions and CSRF (issue 13).

The UI is one more client of the REST API: this package only serves the built bundle
(``/`` = ``index.html``, ``/ui/*`` = the other files), the login page (``GET/POST /login``),
``POST /logout`` and ``GET /api/v1/session``, and authenticates browsers:

- :class:`WebMiddleware` (outermost) looks at requests of the TLS listener. A valid
  ``pyvirt_session`` cookie authenticates the request as ``user:NAME`` (the scope key
  :data:`~pyvirt.daemon.listeners.WEB_IDENTITY`, which :mod:`pyvirt.daemon.auth` honours);
  state-changing requests of a session must carry its CSRF token in ``X-CSRF-Token``, and
  WebSockets must come from this origin. Requests with an ``Authorization`` header are left
  to the token check. A browser without a session asking for a page is sent to ``/login``;
  anything else without credentials gets the API's 401.
- On the unix socket (trusted) the UI is served without a login.
"""

from __future__ import annotations

import json
import logging
from html import escape
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel

from pyvirt.api.users import UserStore, users_file
from pyvirt.daemon.auth import FailureThrottle, identity_of
from pyvirt.daemon.context import Daemon
from pyvirt.daemon.listeners import TRANSPORT, WEB_IDENTITY, ASGIApp, Scope
from pyvirt.daemon.web.sessions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    SessionStore,
)
from pyvirt.daemon.web.static import SECURITY_HEADERS, resolve

__all__ = ["WebMiddleware", "WebState", "router"]

log = logging.getLogger("pyvirtd.web")

#: the scope key holding the :class:`WebState`
STATE = "pyvirt.web"
#: the scope key holding the request's :class:`Session` (if any)
SESSION = "pyvirt.web_session"
#: reachable over TLS without a session
PUBLIC = frozenset({("GET", "/login"), ("POST", "/login")})
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class WebState:
    """The web console's users and sessions (one per application)."""

    def __init__(self, daemon: Daemon) -> None:
        self.users = UserStore(users_file(daemon.paths))
        self.sessions = SessionStore()
        self.throttle = FailureThrottle()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _cookies(scope: Scope) -> dict[str, str]:
    raw = _header(scope, b"cookie")
    if not raw:
        return {}
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # a malformed cookie header: no cookies
        return {}
    return {k: m.value for k, m in jar.items()}


def _is_page(path: str) -> bool:
    return path == "/" or path.startswith("/ui/")


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode())]})  # fmt: skip
    await send({"type": "http.response.body", "body": data})


class WebMiddleware:
    """ASGI middleware: authenticates browsers by their session cookie (see the module)."""

    def __init__(self, app: ASGIApp, daemon: Daemon) -> None:
        self.app = app
        self.state = WebState(daemon)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        scope[STATE] = self.state
        tls = scope.get(TRANSPORT) == "tls" or (
            not scope.get(TRANSPORT) and scope.get("scheme") in ("https", "wss")
        )
        method = str(scope.get("method", "GET")) if scope["type"] == "http" else "WEBSOCKET"
        path = str(scope["path"])
        session = self._session(scope)
        if session is not None:
            scope[SESSION] = session
        if not tls or _header(scope, b"authorization") is not None:
            await self.app(scope, receive, send)  # trusted, or left to the token check
            return
        if session is not None:
            if method == "WEBSOCKET":
                if not self._same_origin(scope):
                    log.warning("refused a WebSocket of %s from another origin", session.user)
                    await send({"type": "websocket.close", "code": 1008})
                    return
            elif method in MUTATING and not session.csrf_ok(_header(scope, CSRF_HEADER.encode())):
                await _send_json(send, 403, {
                    "error": "missing or wrong CSRF token", "code": "forbidden",
                    "hint": "send the pyvirt_csrf cookie's value in the X-CSRF-Token header",
                })  # fmt: skip
                return
            scope[WEB_IDENTITY] = f"user:{session.user}"
        elif (method, path) in PUBLIC:
            scope[WEB_IDENTITY] = "anonymous"
        elif method in ("GET", "HEAD") and _is_page(path):
            await RedirectResponse("/login", status_code=303)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _session(self, scope: Scope) -> Session | None:
        session = self.state.sessions.get(_cookies(scope).get(SESSION_COOKIE))
        if session is not None and not self.state.users.exists(session.user):
            self.state.sessions.drop_user(session.user)  # the user was deleted
            return None
        return session

    @staticmethod
    def _same_origin(scope: Scope) -> bool:
        origin, host = _header(scope, b"origin"), _header(scope, b"host")
        return origin is not None and host is not None and origin == f"https://{host}"


router = APIRouter(include_in_schema=False)


def _state(request: Request) -> WebState:
    state = request.scope[STATE]
    assert isinstance(state, WebState)
    return state


def _file(rel: str) -> Response:
    path = resolve(rel)
    if path is None:
        if rel == "index.html":
            return HTMLResponse(
                "<!doctype html><title>pyvirt</title><p>The web console is not built: run "
                "scripts/setup.sh (npm ci and web/build.mjs).</p>",
                status_code=503, headers=SECURITY_HEADERS,
            )  # fmt: skip
        return JSONResponse({"error": f"no such file: /ui/{rel}", "code": "not_found",
                             "hint": None}, status_code=404)  # fmt: skip
    return FileResponse(path, headers=SECURITY_HEADERS)


@router.get("/")
def index() -> Response:
    """The web console's single page."""
    return _file("index.html")


@router.get("/ui/{rel:path}")
def static(rel: str) -> Response:
    """A file of the built bundle (scripts, styles, pages such as console.html)."""
    return _file(rel)


_LOGIN = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>Log in - pyvirt</title>
<style>
body{{font:15px system-ui,sans-serif;background:#eef1f4;margin:0;display:grid;place-items:center;
min-height:100vh}}form{{background:#fff;padding:2em;border-radius:8px;box-shadow:0 1px 4px #0003;
display:grid;gap:.6em;min-width:18em}}h1{{margin:0 0 .4em;font-size:1.4em}}
input{{font:inherit;padding:.4em}}button{{font:inherit;padding:.5em;background:#2a6ebb;color:#fff;
border:0;border-radius:4px;cursor:pointer}}p[role=alert]{{color:#b00020;margin:0}}
</style></head><body><main><form method="post" action="/login">
<h1>pyvirt</h1>{error}
<label for="user">User name</label>
<input id="user" name="user" autocomplete="username" required autofocus value="{user}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Log in</button>
</form></main></body></html>
"""


def _login_page(error: str = "", user: str = "", status: int = 200) -> HTMLResponse:
    alert = f'<p role="alert">{escape(error)}</p>' if error else ""
    return HTMLResponse(_LOGIN.format(error=alert, user=escape(user)), status_code=status,
                        headers=SECURITY_HEADERS)  # fmt: skip


@router.get("/login")
def login_page() -> HTMLResponse:
    """The login form."""
    return _login_page()


def _cookie_args(request: Request) -> dict[str, Any]:
    return {"path": "/", "samesite": "strict", "secure": request.url.scheme == "https"}


@router.post("/login")
async def login(request: Request) -> Response:
    """Check the user name and password; on success open a session and go to ``/``.

    Takes a form (``user``, ``password``) or JSON (``{"user", "password"}``, answered with
    ``{"user", "csrf"}``).
    """
    import asyncio

    state = _state(request)
    raw = await request.body()
    as_json = request.headers.get("content-type", "").startswith("application/json")
    try:
        if as_json:
            doc = json.loads(raw)
            user, password = str(doc.get("user", "")), str(doc.get("password", ""))
        else:
            form = parse_qs(raw.decode("utf-8"), max_num_fields=10)
            user = form.get("user", [""])[0]
            password = form.get("password", [""])[0]
    except (ValueError, AttributeError):
        user = password = ""
    client = request.client.host if request.client else ""
    wait = state.throttle.delay(client)
    if wait > 0:
        await asyncio.sleep(wait)
    ok = await asyncio.to_thread(state.users.verify, user, password)
    if not ok:
        state.throttle.failed(client)
        log.warning("web login of %r from %s refused", user, client)
        if as_json:
            return JSONResponse({"error": "wrong user name or password", "code": "unauthorized",
                                 "hint": "users are created with 'pyvirt user-add NAME'"},
                                status_code=401)  # fmt: skip
        return _login_page("Wrong user name or password.", user, status=401)
    state.throttle.succeeded(client)
    session = state.sessions.create(user)
    log.info("web login of %s from %s", user, client)
    resp: Response
    if as_json:
        resp = JSONResponse({"user": user, "csrf": session.csrf})
    else:
        resp = RedirectResponse("/", status_code=303)
    args = _cookie_args(request)
    resp.set_cookie(SESSION_COOKIE, session.id, httponly=True, **args)
    resp.set_cookie(CSRF_COOKIE, session.csrf, httponly=False, **args)
    return resp


@router.post("/logout")
def logout(request: Request) -> Response:
    """End the session; back to the login page."""
    session = request.scope.get(SESSION)
    if isinstance(session, Session):
        _state(request).sessions.drop(session.id)
    resp = RedirectResponse("/login", status_code=303)
    args = _cookie_args(request)
    resp.delete_cookie(SESSION_COOKIE, httponly=True, **args)
    resp.delete_cookie(CSRF_COOKIE, **args)
    return resp


class WhoAmI(BaseModel):
    """The caller of the request."""

    identity: str
    user: str | None
    #: this daemon's host is a cluster member (the console then shows its Cluster page)
    cluster: bool = False


@router.get("/api/v1/session", include_in_schema=True, tags=["web"])
def whoami(request: Request) -> WhoAmI:
    """Who the caller is (``user:NAME`` for a web console session), and whether this
    daemon's host is in a cluster (one ``stat``: the cluster code is not loaded for it)."""
    session = request.scope.get(SESSION)
    daemon = request.app.state.daemon
    member = isinstance(daemon, Daemon) and daemon.paths.cluster_membership.exists()
    return WhoAmI(identity=identity_of(request),
                  user=session.user if isinstance(session, Session) else None,
                  cluster=member)  # fmt: skip
