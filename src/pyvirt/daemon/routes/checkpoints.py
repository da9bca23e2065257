"""Checkpoints of a domain over REST (virsh's ``checkpoint-*``).

- ``GET /api/v1/domains/{name}/checkpoints`` → every checkpoint (``checkpoint-list``),
  parents before children, as :class:`CheckpointModel`;
- ``POST /api/v1/domains/{name}/checkpoints`` (``<domaincheckpoint>`` XML, may be empty;
  ``?redefine=``) → 201 ``{"name"}`` (``checkpoint-create``);
- ``POST /api/v1/domains/{name}/checkpoints/create-as`` (JSON: name, description, diskspecs)
  → 201 ``{"name"}`` (``checkpoint-create-as``);
- ``GET .../checkpoints/{cp}`` (``checkpoint-info``, ``checkpoint-parent``),
  ``GET .../checkpoints/{cp}/xml?size=&no_domain=`` (``checkpoint-dumpxml``, with an
  ``ETag``), ``PUT .../checkpoints/{cp}/xml`` (``checkpoint-edit``: the description only;
  ``If-Match`` → 412 when the XML changed meanwhile),
  ``GET .../checkpoints/{cp}/children?descendants=`` (names);
- ``DELETE .../checkpoints/{cp}?children=&children_only=&metadata=`` (``checkpoint-delete``)
  → ``{"deleted": [...]}`` (bitmaps merge into the parent's: quick, no job).

Creating or deleting a checkpoint changes bitmaps in the disk images, not the definition:
no lifecycle event.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.domain import Domain
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.routes._common import PreconditionFailedError, etag, if_match, xml_response
from pyvirt.daemon.routes.snapshots import xml_revision

__all__ = ["CheckpointModel", "router"]

router = APIRouter(prefix="/api/v1/domains/{name}", tags=["checkpoints"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such domain or checkpoint"},
    409: {"description": "not possible in the domain's state"},
}
_XML_OUT: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/xml": {"schema": {"type": "string"}}}, "description": "XML"},
    **_ERRORS,
}
_CP_XML = Body(media_type="application/xml", description="a <domaincheckpoint> document")


class CheckpointModel(BaseModel):
    """One checkpoint (see :class:`pyvirt.api.domain_checkpoints.CheckpointInfo`)."""

    name: str
    domain: str
    creation_time: int
    parent: str | None
    children: int
    descendants: int
    disks: dict[str, str] = Field(description="disk target -> bitmap name")


class CreateAsBody(BaseModel):
    """``checkpoint-create-as``'s options."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=65536)
    diskspecs: list[str] = Field(
        default_factory=list, max_length=64, description="DISK[,checkpoint=bitmap|no][,bitmap=NAME]"
    )


class NameOut(BaseModel):
    """The checkpoint created or edited."""

    name: str


class DeletedOut(BaseModel):
    """The checkpoints deleted."""

    deleted: list[str]


def _domain(request: Request, name: str) -> Domain:
    return daemon_of(request).conn.domains.get(name)


@router.get("/checkpoints", response_model=list[CheckpointModel], responses=_ERRORS)
def list_checkpoints(request: Request, name: str) -> JSONResponse:
    """Every checkpoint, each root followed by its subtree (``checkpoint-list``)."""
    return JSONResponse([c.to_json() for c in _domain(request, name).checkpoints()])


@router.post("/checkpoints", status_code=201, responses=_ERRORS)
def create_checkpoint(
    request: Request,
    name: str,
    xml: Annotated[bytes, _CP_XML] = b"",
    redefine: Annotated[bool, Query(description="only record the XML")] = False,
) -> NameOut:
    """Create a checkpoint from ``<domaincheckpoint>`` XML (``checkpoint-create``; empty:
    defaults)."""
    made = _domain(request, name).checkpoint_create(xml if xml.strip() else None, redefine=redefine)
    return NameOut(name=made)


@router.post("/checkpoints/create-as", status_code=201, responses=_ERRORS)
def create_checkpoint_as(request: Request, name: str, body: CreateAsBody) -> NameOut:
    """Create a checkpoint from options (``checkpoint-create-as``)."""
    dom = _domain(request, name)
    made = dom.checkpoint_create_as(body.name, body.description, diskspecs=body.diskspecs)
    return NameOut(name=made)


@router.get("/checkpoints/{cp}", response_model=CheckpointModel, responses=_ERRORS)
def checkpoint_info(request: Request, name: str, cp: str) -> JSONResponse:
    """One checkpoint (``checkpoint-info``)."""
    return JSONResponse(_domain(request, name).checkpoint_info(cp).to_json())


@router.get("/checkpoints/{cp}/xml", responses=_XML_OUT)
def checkpoint_xml(
    request: Request,
    name: str,
    cp: str,
    size: Annotated[bool, Query(description="each disk's bytes written since")] = False,
    no_domain: Annotated[bool, Query(description="leave out the <domain>")] = False,
) -> Response:
    """The checkpoint's ``<domaincheckpoint>`` XML (``checkpoint-dumpxml``), with an
    ``ETag``."""
    xml = _domain(request, name).checkpoint_xml(cp, size=size, no_domain=no_domain)
    return xml_response(xml, xml_revision(xml))


@router.put(
    "/checkpoints/{cp}/xml",
    responses={412: {"description": "If-Match names an older XML"}, **_ERRORS},
)
def edit_checkpoint(
    request: Request, name: str, cp: str, xml: Annotated[bytes, _CP_XML]
) -> NameOut:
    """Replace the checkpoint's description (``checkpoint-edit``)."""
    dom = _domain(request, name)
    expect = if_match(request)
    if expect is not None:
        now = xml_revision(dom.checkpoint_xml(cp))
        if now != expect:
            raise PreconditionFailedError(
                f"checkpoint '{cp}' of domain '{dom.name}' changed underneath (now {etag(now)})",
                hint="read the checkpoint's XML again (its ETag changed) and retry",
            )
    return NameOut(name=dom.checkpoint_edit(cp, xml))


@router.get("/checkpoints/{cp}/children", responses=_ERRORS)
def checkpoint_children(
    request: Request, name: str, cp: str, descendants: bool = False
) -> list[str]:
    """The names of the checkpoint's children (``descendants``: all of its subtree)."""
    return _domain(request, name).checkpoint_children(cp, descendants=descendants)


@router.delete("/checkpoints/{cp}", response_model=DeletedOut, responses=_ERRORS)
def delete_checkpoint(
    request: Request,
    name: str,
    cp: str,
    children: bool = False,
    children_only: bool = False,
    metadata: Annotated[bool, Query(description="only the record; the bitmaps stay")] = False,
) -> DeletedOut:
    """Delete the checkpoint (``checkpoint-delete``); its bitmaps merge into its parent's."""
    deleted = _domain(request, name).checkpoint_delete(
        cp, children=children, children_only=children_only, metadata=metadata
    )
    return DeletedOut(deleted=deleted)
