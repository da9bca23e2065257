"""Save, restore and managed save over REST (virsh's ``save``, ``restore``, ``managedsave*``,
``save-image-*``). Save images are files on the daemon's host: every ``path`` is a host path.

- ``POST /api/v1/domains/{name}/save`` ``{"path","xml","running","bypass_cache"}`` and
  ``POST /api/v1/domains/{name}/managed-save`` ``{"running","bypass_cache"}``: 202
  ``{"job": ...}`` (kinds ``domain-save``, ``domain-managed-save``; progress in bytes of
  guest memory; a cancel leaves the guest running and no file);
- ``GET /api/v1/domains/{name}/managed-save`` ``{"exists"}``, ``DELETE`` it
  (``managedsave-remove``: ``{"removed"}``), ``GET .../managed-save/xml`` (``ETag``) and
  ``PUT .../managed-save/xml`` (``managedsave-define``; ``If-Match``; ``?running=``);
- ``POST /api/v1/save-images/restore`` ``{"path","xml","running","bypass_cache"}``: 202 job
  ``domain-restore``, result ``{"name"}``;
- ``GET /api/v1/save-images/xml?path=`` (``save-image-dumpxml``, ``ETag``), ``PUT
  /api/v1/save-images/xml?path=&running=`` (``save-image-define``; empty body: only the
  state to restore into; ``If-Match``);
- ``GET /api/v1/save-images/managed`` → the names of the domains with a managed save
  (``list --managed-save``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.domain import Domain
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.routes._common import PreconditionFailedError, etag, if_match, xml_response
from pyvirt.daemon.routes.jobs import JobAccepted, accepted, owner_of
from pyvirt.daemon.routes.snapshots import xml_revision

__all__ = ["router"]

router = APIRouter(tags=["save"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such domain"},
    409: {"description": "not possible in the domain's state"},
}
_XML_OUT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "XML"},
    **_ERRORS,
}
_DOM_XML = Body(media_type="application/xml", description="the domain XML (same hardware)")
_PATH = Field(min_length=1, max_length=4096, description="a path on the daemon's host")
_RUNNING = Query(description="restore into running (true) or paused (false); none: unchanged")


class SaveBody(BaseModel):
    """``save``'s options."""

    model_config = ConfigDict(extra="forbid")
    path: str = _PATH
    xml: str | None = Field(None, max_length=1 << 20, description="alternative domain XML")
    running: bool | None = Field(None, description="restore running (true) or paused (false)")
    bypass_cache: bool = False


class ManagedSaveBody(BaseModel):
    """``managedsave``'s options."""

    model_config = ConfigDict(extra="forbid")
    running: bool | None = Field(None, description="start resumes running (true) or paused")
    bypass_cache: bool = False


class RestoreBody(SaveBody):
    """``restore``'s options."""


class ExistsOut(BaseModel):
    """Whether a managed save image exists."""

    exists: bool


class RemovedOut(BaseModel):
    """Whether there was a managed save image to remove."""

    removed: bool


def _domain(request: Request, name: str) -> Domain:
    return daemon_of(request).conn.domains.get(name)


def _job(request: Request, kind: str, obj: str, work: Callable[[Job], Any]) -> JSONResponse:
    reg = registry_of(daemon_of(request))
    job = reg.start(kind, obj, work, owner=owner_of(request))
    return accepted(job)


def _check(request: Request, current_xml: str, what: str) -> None:
    expect = if_match(request)
    if expect is not None and expect != xml_revision(current_xml):
        raise PreconditionFailedError(
            f"{what} changed underneath (now {etag(xml_revision(current_xml))})",
            hint="read its XML again (its ETag changed) and retry",
        )


def _host_path(path: str) -> str:
    """``path`` if it can name a file on the daemon's host (absolute, no NUL).

    :raises InvalidConfigError: it cannot
    """
    if "\0" in path or not path.startswith("/"):
        from pyvirt.errors import InvalidConfigError  # lazy

        raise InvalidConfigError(
            f"invalid save image path {path!r}", hint="give an absolute path on the daemon's host"
        )
    return path


def _text(xml: bytes) -> str | None:
    """The XML body as text (empty: None).

    :raises InvalidConfigError: not UTF-8
    """
    if not xml.strip():
        return None
    try:
        return xml.decode()
    except UnicodeDecodeError:
        from pyvirt.errors import InvalidConfigError  # lazy

        raise InvalidConfigError("the XML is not UTF-8", hint="send UTF-8 text") from None


# -- saving --------------------------------------------------------------------------------
@router.post(
    "/api/v1/domains/{name}/save", status_code=202, response_model=JobAccepted, responses=_ERRORS
)
def save(request: Request, name: str, body: SaveBody) -> JSONResponse:
    """``save``: the running domain's state to a file on the host, then it stops (a job)."""
    path = _host_path(body.path)
    dom = _domain(request, name)
    dom.status()  # 404 now rather than in the job

    def work(job: Job) -> None:
        dom.save(path, xml=body.xml, running=body.running, bypass_cache=body.bypass_cache,
                 progress=job.report, cancel=job.token)  # fmt: skip

    return _job(request, "domain-save", f"domain/{dom.name}", work)


@router.post(
    "/api/v1/domains/{name}/managed-save",
    status_code=202,
    response_model=JobAccepted,
    responses=_ERRORS,
)
def managed_save(request: Request, name: str, body: ManagedSaveBody | None = None) -> JSONResponse:
    """``managedsave``: save the state where ``start`` resumes it (a job)."""
    opts = body or ManagedSaveBody(running=None)
    dom = _domain(request, name)
    dom.status()

    def work(job: Job) -> None:
        dom.managed_save(running=opts.running, bypass_cache=opts.bypass_cache,
                         progress=job.report, cancel=job.token)  # fmt: skip

    return _job(request, "domain-managed-save", f"domain/{dom.name}", work)


@router.get("/api/v1/domains/{name}/managed-save", responses=_ERRORS)
def has_managed_save(request: Request, name: str) -> ExistsOut:
    """Whether a managed save image waits for ``start``."""
    return ExistsOut(exists=_domain(request, name).has_managed_save())


@router.delete("/api/v1/domains/{name}/managed-save", responses=_ERRORS)
def managed_save_remove(request: Request, name: str) -> RemovedOut:
    """``managedsave-remove``: the next start boots."""
    return RemovedOut(removed=_domain(request, name).managed_save_remove())


@router.get("/api/v1/domains/{name}/managed-save/xml", responses=_XML_OUT)
def managed_save_xml(request: Request, name: str, security_info: bool = False) -> Response:
    """``managedsave-dumpxml``, with an ``ETag``."""
    dom = _domain(request, name)
    xml = dom.managed_save_xml(security_info=security_info)
    return xml_response(xml, xml_revision(dom.managed_save_xml(security_info=True)))


@router.put("/api/v1/domains/{name}/managed-save/xml", status_code=204, responses=_ERRORS)
def managed_save_define(
    request: Request,
    name: str,
    xml: Annotated[bytes, _DOM_XML] = b"",
    running: Annotated[bool | None, _RUNNING] = None,
) -> Response:
    """``managedsave-define``: replace the XML (empty: keep it) and/or the state to resume."""
    dom = _domain(request, name)
    _check(request, dom.managed_save_xml(security_info=True), f"the managed save of '{dom.name}'")
    dom.managed_save_define(_text(xml), running=running)
    return Response(status_code=204)


# -- save images ---------------------------------------------------------------------------
@router.post(
    "/api/v1/save-images/restore", status_code=202, response_model=JobAccepted, responses=_ERRORS
)
def restore(request: Request, body: RestoreBody) -> JSONResponse:
    """``restore``: start the domain saved in a file on the host where it was (a job)."""
    path = _host_path(body.path)
    conn = daemon_of(request).conn
    conn.domains.save_image_xml(path)  # a bad file fails now, not in the job

    def work(job: Job) -> dict[str, Any]:
        dom = conn.domains.restore(path, xml=body.xml, running=body.running,
                                   bypass_cache=body.bypass_cache, progress=job.report,
                                   cancel=job.token)  # fmt: skip
        return {"name": dom.name}

    return _job(request, "domain-restore", f"save-image/{path}", work)


@router.get("/api/v1/save-images/xml", responses=_XML_OUT)
def save_image_xml(
    request: Request,
    path: Annotated[str, Query(min_length=1, max_length=4096)],
    security_info: bool = False,
) -> Response:
    """``save-image-dumpxml``, with an ``ETag``."""
    domains = daemon_of(request).conn.domains
    xml = domains.save_image_xml(_host_path(path), security_info=security_info)
    return xml_response(xml, xml_revision(domains.save_image_xml(path, security_info=True)))


@router.put("/api/v1/save-images/xml", status_code=204, responses=_ERRORS)
def save_image_define(
    request: Request,
    path: Annotated[str, Query(min_length=1, max_length=4096)],
    xml: Annotated[bytes, _DOM_XML] = b"",
    running: Annotated[bool | None, _RUNNING] = None,
) -> Response:
    """``save-image-define``: replace the XML (empty: keep it) and/or the state to restore."""
    domains = daemon_of(request).conn.domains
    _check(request, domains.save_image_xml(_host_path(path), security_info=True),
           f"save image {path}")  # fmt: skip
    domains.save_image_define(path, _text(xml), running=running)
    return Response(status_code=204)


@router.get("/api/v1/save-images/managed")
def managed_save_names(request: Request) -> list[str]:
    """The domains with a managed save image (``list --managed-save``)."""
    return sorted(daemon_of(request).conn.domains.managed_save_names())
