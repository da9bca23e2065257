"""The ASGI application: FastAPI, one router per feature module, one error shape.

Every error is ``{"error": MESSAGE, "hint": HINT or null, "code": CODE}`` with the HTTP status
of the :class:`~pyvirt.errors.PyvirtError` class (404 not found, 409 conflicts, 400 bad
input ...); the messages are the CLI's. The OpenAPI document (``/openapi.json``) is generated
from the routes and their pydantic models.

Features in :data:`ON_DEMAND` are imported when a request first matches no loaded route (or
when the OpenAPI document is asked for): a daemon that only runs guests never builds the
routes and models of pools, snapshots, installs... (issue 11's memory target). Their routes
take the place their line in :data:`FEATURES` gives them, so matching and ``/openapi.json``
are the same as with every feature imported at start-up.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from pyvirt import __version__
from pyvirt.daemon.auth import AuthMiddleware
from pyvirt.daemon.context import Daemon
from pyvirt.errors import PyvirtError

__all__ = ["FEATURES", "ON_DEMAND", "create_app", "error_body", "load_on_demand"]

log = logging.getLogger("pyvirtd")

#: feature modules under pyvirt.daemon; each may have ``router`` (an APIRouter) and
#: ``setup(daemon)`` (registers start-up/shut-down work). One line per feature.
FEATURES: tuple[str, ...] = (
    "routes.health",
    "routes.networks",
    "routes.pools",
    "routes.nodedevs",
    "routes.host",
    "routes.jobs",
    "routes.metrics",
    "routes.events",
    "routes.devices",
    "routes.tokens",
    "routes.blockjobs",
    "routes.backups",  # backup-begin as a daemon job (issue 12)
    "routes.snapshots",
    "routes.checkpoints",  # checkpoint-* over REST (issue 12)
    "routes.saves",
    "routes.devupdate",
    "routes.consoles",
    "routes.users",
    "routes.nics",
    "routes.tuning",  # CPUs, memory, disk resize of the web console's details (issue 13)
    "routes.stats_history",  # the last hour of statistics for the graphs (issue 13)
    "routes.install",  # the New VM wizard over pyvirt install (issue 13)
    "routes.migrations",  # live migration's halves (issue 15)
    "routes.cluster",  # cluster membership and the cluster's domains (issue 16)
    "cluster_agent",  # a member's heartbeat, fencing and HA recovery (issue 16)
    "web",  # the web console: pages, login, sessions (issue 13)
    "supervisor",
    "autostart",
    "routes.domains",
    "memory",  # last: trims the heap once the others started
)

#: features imported on first use (see the module's docstring): route modules without
#: ``setup`` whose paths no other feature's route matches (tests/unit/daemon/test_app.py
#: checks both); a new feature is loaded at start-up unless named here
ON_DEMAND: frozenset[str] = frozenset({
    "routes.networks",
    "routes.pools",
    "routes.nodedevs",
    "routes.host",
    "routes.devices",
    "routes.tokens",
    "routes.blockjobs",
    "routes.backups",
    "routes.snapshots",
    "routes.saves",
    "routes.devupdate",
    "routes.consoles",
    "routes.users",
    "routes.nics",
    "routes.tuning",
    "routes.install",
    "routes.migrations",
    "routes.checkpoints",
    "routes.cluster",
})  # fmt: skip


def error_body(message: str, code: str, hint: str | None = None) -> dict[str, Any]:
    """The one error shape of the REST API."""
    return {"error": message, "hint": hint, "code": code}


def create_app(daemon: Daemon) -> FastAPI:
    """The application serving ``daemon``."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        import asyncio  # lazy

        daemon.bus.bind(asyncio.get_running_loop())
        for start in daemon.on_startup:
            await start()
        try:
            yield
        finally:
            for stop in reversed(daemon.on_shutdown):
                try:
                    await stop()
                except Exception:
                    log.exception("shut-down step failed")

    app = FastAPI(
        title="pyvirtd",
        version=__version__,
        description="The REST API of pyvirt's per-host daemon.",
        lifespan=lifespan,
    )
    app.state.daemon = daemon

    @app.exception_handler(PyvirtError)
    async def _pyvirt_error(_req: Request, err: PyvirtError) -> JSONResponse:
        return JSONResponse(error_body(err.message, err.code, err.hint), status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_req: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        what = str(first.get("msg", "invalid request")).lower()
        message = f"invalid request: {where}: {what}" if where else f"invalid request: {what}"
        return JSONResponse(
            error_body(message, "invalid_request", "see /openapi.json for the request schema"),
            status_code=422,
        )

    @app.exception_handler(HTTPException)
    async def _http(_req: Request, err: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized"}.get(
            err.status_code, "http_error"
        )
        return JSONResponse(
            error_body(str(err.detail).lower(), code), status_code=err.status_code,
            headers=getattr(err, "headers", None),
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _internal(_req: Request, err: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(
            error_body(f"internal error: {type(err).__name__}: {err}", "internal",
                       "this is a bug in pyvirtd; the daemon log has the traceback"),
            status_code=500,
        )  # fmt: skip

    from pyvirt.daemon.limits import install  # lazy: body cap, file-system faults

    install(app, daemon)
    for name in FEATURES:
        if name in ON_DEMAND:
            app.router.routes.append(_Pending(name))  # keeps the feature's place
            continue
        mod = importlib.import_module(f"pyvirt.daemon.{name}")
        setup = getattr(mod, "setup", None)
        if setup is not None:
            setup(daemon)
        router = getattr(mod, "router", None)
        if router is not None:
            app.include_router(router)
    app.add_middleware(AuthMiddleware, daemon=daemon)  # every request: auth, then audit
    from pyvirt.daemon.web import WebMiddleware  # lazy

    app.add_middleware(WebMiddleware, daemon=daemon)  # outermost: browser sessions, CSRF
    _defer(app)
    return app


class _Pending(BaseRoute):
    """The place of an on-demand feature not imported yet: matches nothing."""

    def __init__(self, feature: str) -> None:
        self.feature = feature

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("a pending feature never matches")  # pragma: no cover

    def __repr__(self) -> str:
        return f"_Pending({self.feature!r})"


def _import_pending(app: FastAPI) -> list[tuple[_Pending, Any]]:
    """Import the modules of ``app``'s pending features: (place, router) pairs."""
    return [
        (route, importlib.import_module(f"pyvirt.daemon.{route.feature}").router)
        for route in list(app.router.routes)
        if isinstance(route, _Pending)
    ]


def _place(app: FastAPI, loaded: list[tuple[_Pending, Any]]) -> None:
    """Include each imported router at its feature's place."""
    routes = app.router.routes
    for pending, router in loaded:
        if pending not in routes:  # placed by a concurrent load
            continue
        app.include_router(router)
        routes[routes.index(pending)] = routes.pop()
        log.debug("feature %s loaded on demand", pending.feature)


def load_on_demand(app: FastAPI) -> None:
    """Import every pending on-demand feature of ``app`` now (in this thread)."""
    _place(app, _import_pending(app))


def _defer(app: FastAPI) -> None:
    """Load the pending features on the first request no loaded route matches, then route it
    again; and before the OpenAPI document is made."""
    import asyncio  # lazy

    router = app.router
    not_found = router.default
    lock: list[asyncio.Lock] = []

    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not any(
            isinstance(r, _Pending) for r in router.routes
        ):
            await not_found(scope, receive, send)
            return
        if not lock:
            lock.append(asyncio.Lock())
        async with lock[0]:  # imports in a thread: the event loop keeps serving
            _place(app, await asyncio.to_thread(_import_pending, app))
        await router.app(scope, receive, send)

    router.default = default
    openapi = app.openapi

    def openapi_all() -> dict[str, Any]:
        load_on_demand(app)
        return openapi()

    app.openapi = openapi_all  # type: ignore[method-assign]
