"""The ASGI application: FastAPI, one router per feature module, one error shape.

Every error is ``{"error": MESSAGE, "hint": HINT or null, "code": CODE}`` with the HTTP status
of the :class:`~pyvirt.errors.PyvirtError` class (404 not found, 409 conflicts, 400 bad
input ...); the messages are the CLI's. The OpenAPI document (``/openapi.json``) is generated
from the routes and their pydantic models.
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

from pyvirt import __version__
from pyvirt.daemon.auth import AuthMiddleware
from pyvirt.daemon.context import Daemon
from pyvirt.errors import PyvirtError

__all__ = ["FEATURES", "create_app", "error_body"]

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
    "routes.cluster",  # cluster membership and the host's etcd lease (issue 16)
    "web",  # the web console: pages, login, sessions (issue 13)
    "supervisor",
    "autostart",
    "routes.domains",
    "memory",  # last: trims the heap once the others started
)


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
    return app
