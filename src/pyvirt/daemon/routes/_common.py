"""What the resource routes share: name checks, XML bodies and responses, ETags, events."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from pyvirt.daemon.context import daemon_of
from pyvirt.errors import InvalidConfigError, InvalidStateError, PyvirtError

__all__ = [
    "XML_BODY",
    "XML_RESPONSE",
    "PreconditionFailedError",
    "check_name",
    "etag",
    "if_match",
    "publish",
    "read_xml",
    "xml_response",
]

#: OpenAPI of a request whose body is an XML document
XML_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/xml": {"schema": {"type": "string"}}},
    }
}
#: OpenAPI of a response whose body is an XML document
XML_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "XML"}
}
#: control characters and the path separator never appear in an object name
_BAD = frozenset(chr(c) for c in range(32)) | {"/", "\\", chr(127)}


class PreconditionFailedError(PyvirtError):
    """``If-Match`` named a revision the definition is no longer at."""

    code = "precondition_failed"
    status = 412


def check_name(name: str, kind: str) -> str:
    """``name`` if it can name an object, else a 400 (path traversal, control characters).

    :raises InvalidConfigError: an unusable name
    """
    if not name or name in (".", "..") or len(name) > 255 or any(c in _BAD for c in name):
        raise InvalidConfigError(
            f"invalid {kind} name {name!r}",
            hint="names are 1-255 characters without '/', '\\\\' or control characters",
        )
    return name


async def read_xml(request: Request) -> bytes:
    """The request body, an XML document (a dependency; the size cap already applied).

    :raises InvalidConfigError: an empty body
    """
    body = await request.body()
    if not body.strip():
        raise InvalidConfigError("empty request body", hint="send the XML document as the body")
    return body


def xml_response(text: str, revision: str | None = None) -> Response:
    """An ``application/xml`` response, with an ``ETag`` when the revision is known."""
    headers = {"ETag": etag(revision)} if revision else None
    return Response(text, media_type="application/xml", headers=headers)


def etag(revision: str) -> str:
    """The ``ETag`` header value of a revision."""
    return f'"{revision}"'


def if_match(request: Request) -> str | None:
    """The revision an ``If-Match`` header names (``None``: no header or ``*``)."""
    value = request.headers.get("if-match")
    if value is None:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    value = value.strip('"')
    return None if value in ("", "*") else value


def precondition(err: InvalidStateError) -> PyvirtError:
    """A lost-update refusal as a 412 (other state errors stay as they are)."""
    if "changed underneath" in err.message:
        return PreconditionFailedError(
            err.message, hint="read the definition again (its ETag changed) and retry"
        )
    return err


def publish(request: Request, kind: str, obj: str, name: str, event: str, detail: str) -> None:
    """Tell event listeners (``kind`` ``network-lifecycle`` or ``pool-lifecycle``)."""
    daemon_of(request).bus.publish(kind, obj, name, event, detail)
