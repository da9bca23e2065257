"""Snapshots of a domain over REST (virsh's ``snapshot-*``).

- ``GET /api/v1/domains/{name}/snapshots`` → every snapshot (``snapshot-list``), parents
  before children, as :class:`SnapshotModel`;
- ``POST /api/v1/domains/{name}/snapshots`` (``<domainsnapshot>`` XML, may be empty; flags as
  query parameters) → 201 the snapshot (``snapshot-create``);
- ``POST /api/v1/domains/{name}/snapshots/create-as`` (JSON: name, description, memspec,
  diskspecs and the flags) → 201 the snapshot (``snapshot-create-as``);
- ``GET .../snapshots/{snap}`` (``snapshot-info``), ``GET .../snapshots/{snap}/xml``
  (``snapshot-dumpxml``, with an ``ETag``), ``PUT .../snapshots/{snap}/xml`` (``snapshot-edit``:
  redefine; ``If-Match`` → 412 when the XML changed meanwhile),
  ``GET .../snapshots/{snap}/children?descendants=`` (names);
- ``POST .../snapshots/{snap}/revert`` ``{"running","paused","force"}`` (``snapshot-revert``);
- ``DELETE .../snapshots/{snap}?children=&children_only=&metadata=`` (``snapshot-delete``):
  200 ``{"deleted": [...]}``, or, when it merges external overlays (block commit or stream),
  202 ``{"job": ...}`` of kind ``snapshot-delete`` whose result is ``{"deleted": [...]}``
  (a merge cannot be cancelled once started: a cancel is ignored);
- ``GET``/``PUT /api/v1/domains/{name}/current-snapshot`` ``{"name"}`` (``snapshot-current``;
  a separate resource, so that a snapshot may be named ``current``).

Paths in memspecs and diskspecs are paths on the daemon's host. Creating, reverting or
deleting a snapshot that changes the domain's disks publishes ``lifecycle Defined Updated``.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.domain import Domain
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.routes._common import PreconditionFailedError, etag, if_match, xml_response
from pyvirt.daemon.routes.jobs import JobAccepted, accepted, owner_of

__all__ = ["SnapshotModel", "router", "xml_revision"]

router = APIRouter(prefix="/api/v1/domains/{name}", tags=["snapshots"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such domain or snapshot"},
    409: {"description": "not possible in the domain's state"},
}
_XML_OUT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "XML"},
    **_ERRORS,
}
_SNAP_XML = Body(media_type="application/xml", description="a <domainsnapshot> document")


class SnapshotModel(BaseModel):
    """One snapshot (see :class:`pyvirt.api.domain_snapshots.SnapshotInfo`)."""

    name: str
    domain: str
    creation_time: int
    state: str
    parent: str | None
    location: str = Field(description="internal, external or mixed")
    current: bool
    children: int
    descendants: int


class CreateAsBody(BaseModel):
    """``snapshot-create-as``'s options (paths are on the daemon's host)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=65536)
    memspec: str | None = Field(None, min_length=1, max_length=4096)
    diskspecs: list[str] = Field(default_factory=list, max_length=64)
    disk_only: bool = False
    atomic: bool = False
    quiesce: bool = Field(False, description="freeze the guest's file systems (guest agent)")
    live: bool = False
    no_metadata: bool = False


class RevertBody(BaseModel):
    """``snapshot-revert``'s options."""

    model_config = ConfigDict(extra="forbid")
    running: bool = False
    paused: bool = False
    force: bool = False


class RevertOut(BaseModel):
    """The snapshot reverted to."""

    name: str


class DeletedOut(BaseModel):
    """The snapshots deleted."""

    deleted: list[str]


class CurrentModel(BaseModel):
    """The current snapshot (``null``: none)."""

    name: str | None = Field(None, min_length=1, max_length=255)


def _domain(request: Request, name: str) -> Domain:
    return daemon_of(request).conn.domains.get(name)


def _updated(request: Request, dom: Domain) -> None:
    daemon_of(request).bus.publish("lifecycle", "domain", dom.name, "Defined", "Updated")


def xml_revision(xml: str) -> str:
    """The revision (``ETag``) of a snapshot's XML: a digest of the text."""
    return hashlib.sha256(xml.encode()).hexdigest()[:16]


def _created(request: Request, dom: Domain, info: Any) -> JSONResponse:
    if info.location != "internal":
        _updated(request, dom)
    return JSONResponse(info.to_json(), status_code=201)


@router.get("/snapshots", response_model=list[SnapshotModel], responses=_ERRORS)
def list_snapshots(request: Request, name: str) -> JSONResponse:
    """Every snapshot, each root followed by its subtree (``snapshot-list``)."""
    return JSONResponse([s.to_json() for s in _domain(request, name).snapshots()])


@router.post("/snapshots", status_code=201, response_model=SnapshotModel, responses=_ERRORS)
def create_snapshot(
    request: Request,
    name: str,
    xml: Annotated[bytes, _SNAP_XML] = b"",
    disk_only: bool = False,
    atomic: bool = False,
    quiesce: bool = False,
    live: bool = False,
    no_metadata: bool = False,
    redefine: Annotated[bool, Query(description="only record the XML")] = False,
    current: Annotated[bool, Query(description="with redefine: make it current")] = False,
) -> JSONResponse:
    """Take a snapshot from ``<domainsnapshot>`` XML (``snapshot-create``; empty: defaults)."""
    dom = _domain(request, name)
    info = dom.snapshot_create(
        xml if xml.strip() else None, disk_only=disk_only, atomic=atomic, quiesce=quiesce,
        live=live, no_metadata=no_metadata, redefine=redefine, current=current,
    )  # fmt: skip
    return _created(request, dom, info)


@router.post(
    "/snapshots/create-as", status_code=201, response_model=SnapshotModel, responses=_ERRORS
)
def create_snapshot_as(request: Request, name: str, body: CreateAsBody) -> JSONResponse:
    """Take a snapshot from options (``snapshot-create-as``)."""
    dom = _domain(request, name)
    opts = body.model_dump(exclude={"name", "description"})
    return _created(request, dom, dom.snapshot_create_as(body.name, body.description, **opts))


@router.get("/snapshots/{snap}", response_model=SnapshotModel, responses=_ERRORS)
def snapshot_info(request: Request, name: str, snap: str) -> JSONResponse:
    """One snapshot (``snapshot-info``)."""
    return JSONResponse(_domain(request, name).snapshot_info(snap).to_json())


@router.get("/snapshots/{snap}/xml", responses=_XML_OUT)
def snapshot_xml(request: Request, name: str, snap: str) -> Response:
    """The snapshot's ``<domainsnapshot>`` XML (``snapshot-dumpxml``), with an ``ETag``."""
    xml = _domain(request, name).snapshot_xml(snap)
    return xml_response(xml, xml_revision(xml))


@router.put(
    "/snapshots/{snap}/xml",
    response_model=SnapshotModel,
    responses={412: {"description": "If-Match names an older XML"}, **_ERRORS},
)
def redefine_snapshot(
    request: Request,
    name: str,
    snap: str,
    xml: Annotated[bytes, _SNAP_XML],
    current: Annotated[bool, Query(description="make it the current snapshot")] = False,
) -> JSONResponse:
    """Replace the snapshot's metadata (``snapshot-edit``); the XML names the snapshot."""
    dom = _domain(request, name)
    expect = if_match(request)
    if expect is not None:
        now = xml_revision(dom.snapshot_xml(snap))
        if now != expect:
            raise PreconditionFailedError(
                f"snapshot '{snap}' of domain '{dom.name}' changed underneath (now {etag(now)})",
                hint="read the snapshot's XML again (its ETag changed) and retry",
            )
    info = dom.snapshot_redefine(xml, current=current)
    return JSONResponse(info.to_json())


@router.get("/snapshots/{snap}/children", responses=_ERRORS)
def snapshot_children(
    request: Request, name: str, snap: str, descendants: bool = False
) -> list[str]:
    """The names of the snapshot's children (``descendants``: all of its subtree)."""
    return _domain(request, name).snapshot_children(snap, descendants=descendants)


@router.post("/snapshots/{snap}/revert", responses=_ERRORS)
def revert_snapshot(
    request: Request, name: str, snap: str, body: RevertBody | None = None
) -> RevertOut:
    """Revert the domain to the snapshot (``snapshot-revert``)."""
    opts = body or RevertBody()
    dom = _domain(request, name)
    done = dom.snapshot_revert(snap, running=opts.running, paused=opts.paused, force=opts.force)
    _updated(request, dom)
    return RevertOut(name=done)


@router.delete(
    "/snapshots/{snap}",
    response_model=DeletedOut,
    responses={202: {"model": JobAccepted, "description": "a merge, as a job"}, **_ERRORS},
)
def delete_snapshot(
    request: Request,
    name: str,
    snap: str,
    children: bool = False,
    children_only: bool = False,
    metadata: Annotated[bool, Query(description="only the record; the images stay")] = False,
) -> JSONResponse:
    """Delete the snapshot (``snapshot-delete``); a merge of external overlays is a job."""
    dom = _domain(request, name)
    info = dom.snapshot_info(snap)

    def work(_job: Job | None = None) -> dict[str, Any]:
        deleted = dom.snapshot_delete(
            snap, children=children, children_only=children_only, metadata=metadata
        )
        return {"deleted": deleted}

    if metadata or not _merges(dom, info, children or children_only, children_only):
        return JSONResponse(work())
    reg = registry_of(daemon_of(request))

    def merge(job: Job) -> dict[str, Any]:
        out = work(job)
        _updated(request, dom)
        return out

    job = reg.start("snapshot-delete", f"domain/{dom.name}", merge, owner=owner_of(request),
                    unit="percent")  # fmt: skip
    return accepted(job)


def _merges(dom: Domain, info: Any, subtree: bool, only_children: bool) -> bool:
    """Whether deleting ``info`` (and its subtree) touches an external snapshot's files."""
    names = set(dom.snapshot_children(info.name, descendants=True)) if subtree else set()
    if not only_children:
        names.add(info.name)
    return any(s.location != "internal" for s in dom.snapshots() if s.name in names)


@router.get("/current-snapshot", responses=_ERRORS)
def current_snapshot(request: Request, name: str) -> CurrentModel:
    """The current snapshot's name (``snapshot-current --name``; ``null``: none)."""
    return CurrentModel(name=_domain(request, name).current_snapshot())


@router.put("/current-snapshot", status_code=204, responses=_ERRORS)
def set_current_snapshot(request: Request, name: str, body: CurrentModel) -> Response:
    """Make a snapshot the current one (``snapshot-current DOMAIN SNAPSHOT``)."""
    if body.name is None:
        from pyvirt.errors import InvalidConfigError  # lazy

        raise InvalidConfigError("no snapshot named", hint='send {"name": SNAPSHOT}')
    _domain(request, name).set_current_snapshot(body.name)
    return Response(status_code=204)
