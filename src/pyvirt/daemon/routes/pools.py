"""``/api/v1/pools``: storage pools and their volumes (virsh's ``pool-*``/``vol-*`` verbs)
over ``conn.pools``.

``POST /preview`` turns the add-pool wizard's fields (:class:`PoolSpecBody`, the arguments
of ``pool-define-as``) into the pool XML, ``POST /define-as`` defines it (``pool-define-as``).
Pool definitions carry an ``ETag`` (their revision); ``PUT .../xml`` with ``If-Match``
refuses a lost update with 412. Pool changes publish ``pool-lifecycle`` events. Volume
clone, upload, download and wipe run as jobs (``routes/jobs``), not here.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from pyvirt.api.pool_spec import POOL_TYPES, PoolSpec, define_spec
from pyvirt.api.pools import Pool, Volume
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.models import (
    ERRORS,
    AutostartBody,
    Created,
    PoolBuildBody,
    PoolStartBody,
    PoolStatusModel,
    VolumeCreateBody,
    VolumeInfoModel,
    VolumeResizeBody,
    Warnings,
)
from pyvirt.daemon.routes._common import (
    XML_BODY,
    XML_RESPONSE,
    check_name,
    etag,
    if_match,
    precondition,
    publish,
    read_xml,
    xml_response,
)
from pyvirt.errors import InvalidStateError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/pools", tags=["pools"], responses=ERRORS)
EVENT = "pool-lifecycle"
XmlBody = Annotated[bytes, Depends(read_xml)]


def _pool(request: Request, name: str) -> Pool:
    return daemon_of(request).conn.pools.get(check_name(name, "pool"))


def _vol(request: Request, pool: str, vol: str) -> Volume:
    return _pool(request, pool).volume(check_name(vol, "volume"))


def _revision(pool: Pool) -> str | None:
    try:
        return pool.revision()
    except InvalidStateError:
        return None  # transient


def _event(request: Request, pool: Pool, event: str, detail: str = "") -> None:
    publish(request, EVENT, "pool", pool.name, event, detail)


_PATHISH = Field(None, max_length=4096)


class PoolSpecBody(BaseModel):
    """A pool by its fields (``pool-define-as``'s arguments; empty strings mean unset)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    type: str = Field(pattern="^(" + "|".join(POOL_TYPES) + ")$")
    target: str | None = _PATHISH
    source_host: str | None = Field(None, max_length=255, description="HOST[:PORT]")
    source_path: str | None = _PATHISH
    source_dev: str | None = _PATHISH
    source_name: str | None = Field(None, max_length=255)
    source_format: str | None = Field(None, max_length=32)
    source_initiator: str | None = Field(None, max_length=255)
    auth_type: str | None = Field(None, pattern="^(chap|ceph)$")
    auth_username: str | None = Field(None, max_length=255)
    secret_usage: str | None = Field(None, max_length=255)

    @field_validator("*")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("control characters are not allowed")
        return value

    def spec(self) -> PoolSpec:
        """The API's spec (empty strings as unset)."""
        opt = {k: (v.strip() or None) if isinstance(v, str) else None
               for k, v in self.model_dump(exclude={"name", "type"}).items()}  # fmt: skip
        return PoolSpec(check_name(self.name.strip(), "pool"), self.type, **opt)


class PoolPreview(BaseModel):
    """The XML a spec makes."""

    xml: str


# -- pools --------------------------------------------------------------------------------
@router.post("/preview", response_model=PoolPreview)
def preview_pool(request: Request, body: PoolSpecBody) -> PoolPreview:
    """``pool-define-as --print-xml``: the XML the fields make (validated, nothing stored)."""
    return PoolPreview(xml=body.spec().xml(daemon_of(request).conn.pools))


@router.post("/define-as", status_code=201, response_model=Created)
def define_pool_as(request: Request, body: PoolSpecBody) -> Created:
    """``pool-define-as``: define a pool from its fields."""
    pool, warnings = define_spec(daemon_of(request).conn.pools, body.spec())
    _event(request, pool, "Defined", "Added")
    return Created(name=pool.name, uuid=pool.uuid, warnings=warnings)


@router.get("", response_model=list[PoolStatusModel])  # type: ignore[valid-type]
def list_pools(request: Request, all: bool = False, inactive: bool = False) -> list[dict[str, Any]]:
    """``pool-list``: active pools (``all``: every pool; ``inactive``: only inactive ones)."""
    rows = daemon_of(request).conn.pools.list(all=all, inactive=inactive)
    return [p.to_json() for p in rows]


@router.post("", status_code=201, response_model=Created, openapi_extra=XML_BODY)
def define_pool(
    request: Request,
    xml: XmlBody,
    create: bool = False,
    build: bool = False,
    overwrite: bool | None = None,
) -> Created:
    """``pool-define`` (``create=true``: ``pool-create``, a transient pool, started; built
    first with ``build=true``, ``overwrite`` as in ``pool-build``)."""
    pools = daemon_of(request).conn.pools
    if create:
        pool = pools.create(xml, build=build, overwrite=overwrite)
        _event(request, pool, "Started")
        return Created(name=pool.name, uuid=pool.uuid, warnings=[])
    before = {p.name for p in pools.list(all=True)}
    pool, warnings = pools.define(xml)
    _event(request, pool, "Defined", "Updated" if pool.name in before else "Added")
    return Created(name=pool.name, uuid=pool.uuid, warnings=warnings)


@router.get("/{pool}", response_model=PoolStatusModel)
def pool_info(request: Request, response: Response, pool: str) -> dict[str, Any]:
    """``pool-info`` (``ETag``: the persistent definition's revision)."""
    p = _pool(request, pool)
    info = p.info()
    rev = _revision(p) if info.persistent else None
    if rev:
        response.headers["ETag"] = etag(rev)
    return info.to_json()


@router.get("/{pool}/xml", response_class=Response, responses=XML_RESPONSE)
def pool_xml(request: Request, pool: str, inactive: bool = False) -> Response:
    """``pool-dumpxml`` (``ETag``: the persistent definition's revision)."""
    p = _pool(request, pool)
    return xml_response(p.xml_desc(inactive=inactive), _revision(p))


@router.put("/{pool}/xml", response_model=Warnings, openapi_extra=XML_BODY)
def pool_redefine(request: Request, pool: str, xml: XmlBody) -> Warnings:
    """Replace the definition (``If-Match: "REV"`` refuses it with 412 if it changed)."""
    p = _pool(request, pool)
    try:
        warnings = p.redefine(xml, expect_revision=if_match(request))
    except InvalidStateError as err:
        raise precondition(err) from None
    _event(request, p, "Defined", "Updated")
    return Warnings(warnings=warnings)


@router.post("/{pool}/start", response_model=PoolStatusModel)
def pool_start(request: Request, pool: str, body: PoolStartBody | None = None) -> dict[str, Any]:
    """``pool-start`` (``{"build": true}``: ``pool-start --build``)."""
    p = _pool(request, pool)
    opts = body or PoolStartBody()
    p.start(build=opts.build, overwrite=opts.overwrite)
    _event(request, p, "Started")
    return p.info().to_json()


@router.post("/{pool}/build", status_code=204, response_class=Response)
def pool_build(request: Request, pool: str, body: PoolBuildBody | None = None) -> Response:
    """``pool-build``."""
    p = _pool(request, pool)
    p.build(overwrite=(body or PoolBuildBody()).overwrite)
    return Response(status_code=204)


@router.post("/{pool}/destroy", status_code=204, response_class=Response)
def pool_destroy(request: Request, pool: str) -> Response:
    """``pool-destroy`` (the data stays; a transient pool is gone)."""
    p = _pool(request, pool)
    p.destroy()
    _event(request, p, "Stopped")
    return Response(status_code=204)


@router.post("/{pool}/refresh", status_code=204, response_class=Response)
def pool_refresh(request: Request, pool: str) -> Response:
    """``pool-refresh``."""
    _pool(request, pool).refresh()
    return Response(status_code=204)


@router.post("/{pool}/delete", status_code=204, response_class=Response)
def pool_delete(request: Request, pool: str) -> Response:
    """``pool-delete``: remove what ``build`` made (inactive pools only)."""
    p = _pool(request, pool)
    p.delete()
    _event(request, p, "Deleted")
    return Response(status_code=204)


@router.delete("/{pool}", status_code=204, response_class=Response)
def pool_undefine(request: Request, pool: str) -> Response:
    """``pool-undefine``."""
    p = _pool(request, pool)
    p.undefine()
    _event(request, p, "Undefined", "Removed")
    return Response(status_code=204)


@router.put("/{pool}/autostart", response_model=PoolStatusModel)
def pool_autostart(request: Request, pool: str, body: AutostartBody) -> dict[str, Any]:
    """``pool-autostart [--disable]``."""
    p = _pool(request, pool)
    p.set_autostart(body.enabled)
    return p.info().to_json()


# -- volumes ------------------------------------------------------------------------------
@router.get("/{pool}/volumes", response_model=list[VolumeInfoModel])  # type: ignore[valid-type]
def list_volumes(request: Request, pool: str) -> list[dict[str, Any]]:
    """``vol-list``: the volumes of an active pool."""
    return [v.to_json() for v in _pool(request, pool).volumes()]


@router.post("/{pool}/volumes", status_code=201, response_model=VolumeInfoModel)
def create_volume(request: Request, pool: str, body: VolumeCreateBody) -> dict[str, Any]:
    """``vol-create-as``: a new volume of ``capacity`` bytes."""
    vol = _pool(request, pool).create_volume(
        check_name(body.name, "volume"),
        body.capacity,
        format=body.format,
        allocation=body.allocation,
        prealloc_metadata=body.prealloc_metadata,
        backing_vol=body.backing_vol,
        backing_vol_format=body.backing_vol_format,
    )
    return vol.info().to_json()


@router.get("/{pool}/volumes/{vol}", response_model=VolumeInfoModel)
def volume_info(request: Request, pool: str, vol: str) -> dict[str, Any]:
    """``vol-info``."""
    return _vol(request, pool, vol).info().to_json()


@router.get("/{pool}/volumes/{vol}/xml", response_class=Response, responses=XML_RESPONSE)
def volume_xml(request: Request, pool: str, vol: str) -> Response:
    """``vol-dumpxml``."""
    return xml_response(_vol(request, pool, vol).xml_desc())


@router.delete("/{pool}/volumes/{vol}", status_code=204, response_class=Response)
def volume_delete(request: Request, pool: str, vol: str) -> Response:
    """``vol-delete``."""
    _vol(request, pool, vol).delete()
    return Response(status_code=204)


@router.post("/{pool}/volumes/{vol}/resize", response_model=VolumeInfoModel)
def volume_resize(request: Request, pool: str, vol: str, body: VolumeResizeBody) -> dict[str, Any]:
    """``vol-resize``: to ``capacity`` bytes (by it with ``delta``; shrinking needs
    ``shrink``)."""
    info = _vol(request, pool, vol).resize(
        body.capacity, delta=body.delta, allocate=body.allocate, shrink=body.shrink
    )
    return info.to_json()
