"""Request limits and file-system faults: the request body size cap (``DaemonConfig.max_body``)
and clear errors when the state directory is full or read-only.

A body larger than the cap is refused with 413 before it is read (by its ``Content-Length``)
or as soon as the stream passes the cap (chunked bodies); nothing is handed to a handler.
Volume uploads (``PUT .../content``) stream data and are not capped here.
An ``OSError`` escaping a handler (``EROFS``, ``ENOSPC``, ``EACCES``) becomes one error line
naming the file, never a 500 "bug" answer; the stores write atomically, so nothing is torn.
"""

from __future__ import annotations

import errno
import json
from typing import TYPE_CHECKING, ClassVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pyvirt.errors import PyvirtError

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

    from pyvirt.daemon.context import Daemon

__all__ = ["UNCAPPED_SUFFIXES", "BodyLimit", "BodyTooLargeError", "install", "os_error_body"]


class BodyTooLargeError(PyvirtError, HTTPException):
    """The request body is larger than the daemon accepts (an ``HTTPException`` too, so
    FastAPI's body parsing lets it through instead of turning it into a 400)."""

    code = "payload_too_large"
    status: ClassVar[int] = 413

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        PyvirtError.__init__(self, message, hint=hint)
        self.status_code = 413
        self.detail = message
        self.headers = None


def _too_large(limit: int) -> BodyTooLargeError:
    return BodyTooLargeError(
        f"request body larger than {limit} bytes",
        hint="send less at a time (volume data goes through the upload job)",
    )


#: request paths whose bodies are data streams, not documents: not capped here (the volume
#: upload job bounds its stream by the volume's size; a tunnelled migration's stream by its
#: incoming QEMU)
UNCAPPED_SUFFIXES = ("/content", "/tunnel")


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_body`` bytes with 413 (except the
    data streams of :data:`UNCAPPED_SUFFIXES`)."""

    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or str(scope.get("path", "")).endswith(UNCAPPED_SUFFIXES):
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or ()).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = self.max_body + 1
            if declared > self.max_body:
                await self._refuse(send)
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _too_large(self.max_body)
            return message

        await self.app(scope, limited, send)

    async def _refuse(self, send: Send) -> None:
        err = _too_large(self.max_body)
        body = json.dumps({"error": err.message, "hint": err.hint, "code": err.code}).encode()
        await send({
            "type": "http.response.start", "status": 413,
            "headers": [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"connection", b"close")],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": body})


#: errno -> (HTTP status, what went wrong, hint)
_FAULTS: dict[int, tuple[int, str, str]] = {
    errno.EROFS: (503, "the file system is read-only",
                  "remount the state directory read-write and retry; nothing was changed"),
    errno.ENOSPC: (507, "the disk is full (no space or inodes left)",
                   "free space on the file system holding it and retry; nothing was changed"),
    errno.EDQUOT: (507, "the disk quota is exceeded",
                   "free space on the file system holding it and retry; nothing was changed"),
    errno.EACCES: (503, "permission denied",
                   "pyvirtd cannot write its state directory; check its owner and mode"),
    errno.EPERM: (503, "operation not permitted",
                  "pyvirtd cannot write its state directory; check its owner and mode"),
}  # fmt: skip


def os_error_body(err: OSError) -> tuple[int, dict[str, object]]:
    """The HTTP status and error body for a file-system fault."""
    where = f"cannot write {err.filename}" if err.filename else "file system error"
    status, what, hint = _FAULTS.get(
        err.errno or 0,
        (500, (err.strerror or str(err)).lower(), "the daemon log has the details"),
    )
    return status, {"error": f"{where}: {what}", "hint": hint, "code": "operation_failed"}


def install(app: FastAPI, daemon: Daemon) -> None:
    """Add the body cap and the file-system fault handler to ``app``."""
    app.add_middleware(BodyLimit, max_body=daemon.config.max_body)

    @app.exception_handler(OSError)
    async def _os_error(_req: Request, err: OSError) -> JSONResponse:
        status, body = os_error_body(err)
        return JSONResponse(body, status_code=status)
