"""Pydantic models of the REST API's bodies, made from (or checked against) ``pyvirt.api``'s
result types so the OpenAPI document cannot drift from what the handlers return.

Responses: :func:`model_of` turns a result dataclass whose ``to_json()`` is ``asdict`` into a
model with the same fields and types (``NetworkInfo``, ``DhcpLease``, ``PoolStatus``,
``VolumeInfo``, ``Versions``, ``NodeInfo``, ``CellMemory``). Types with a hand-written
``to_json()`` (node devices, memory statistics) get a hand-written model; a unit test checks
every model against a real ``to_json()``. Requests: explicit models that refuse unknown
fields (``extra="forbid"``), so a typo is a 422, never silently ignored.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from pyvirt.api.host import CellMemory, NodeInfo, Versions
from pyvirt.api.networks import DhcpLease, NetworkInfo
from pyvirt.api.pools import PoolStatus, VolumeInfo

__all__ = [
    "ERRORS",
    "AutostartBody",
    "CellMemoryModel",
    "Created",
    "DhcpLeaseModel",
    "ErrorBody",
    "MemStatsModel",
    "NetworkInfoModel",
    "NodeDeviceModel",
    "NodeInfoModel",
    "PoolBuildBody",
    "PoolStartBody",
    "PoolStatusModel",
    "Request",
    "VersionsModel",
    "VolumeCreateBody",
    "VolumeInfoModel",
    "VolumeResizeBody",
    "Warnings",
    "model_of",
]


def model_of(cls: type[Any], name: str | None = None) -> type[BaseModel]:
    """A pydantic model with the fields (names, types, defaults) of the dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    fields: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            fields[f.name] = (hints[f.name], f.default)
        else:
            fields[f.name] = (hints[f.name], ...)
    doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
    model: type[BaseModel] = create_model(name or cls.__name__, __doc__=doc, **fields)
    return model


NetworkInfoModel = model_of(NetworkInfo)
DhcpLeaseModel = model_of(DhcpLease)
PoolStatusModel = model_of(PoolStatus)
VolumeInfoModel = model_of(VolumeInfo)
VersionsModel = model_of(Versions)
NodeInfoModel = model_of(NodeInfo)
CellMemoryModel = model_of(CellMemory)


class ErrorBody(BaseModel):
    """The one error shape: the CLI's message, a hint, a stable code."""

    error: str
    hint: str | None
    code: str


#: every route's documented error answers (FastAPI's own 422 shape is replaced by ours)
ERRORS: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorBody, "description": "bad request, not found, conflict..."},
    "5XX": {"model": ErrorBody, "description": "the operation failed on the host"},
}


class NodeDevice(BaseModel):
    """One host device (``nodedev-list --json``)."""

    name: str
    parent: str | None
    caps: list[str]
    driver: str | None
    iommu_group: int | None
    vfs: list[str]
    physfn: str | None
    interface: str | None


class MemStats(BaseModel):
    """``nodememstats`` in KiB; figures the host does not report are left out."""

    total: int
    free: int
    buffers: int | None = None
    cached: int | None = None


NodeDeviceModel = NodeDevice
MemStatsModel = MemStats


class Request(BaseModel):
    """Base of request bodies: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class Created(BaseModel):
    """A definition was stored (or a transient object made)."""

    name: str
    uuid: str
    warnings: list[str] = []


class Warnings(BaseModel):
    """Warnings of a redefinition."""

    warnings: list[str] = []


class AutostartBody(Request):
    """Start the object when the daemon starts (or not)."""

    enabled: bool


class PoolBuildBody(Request):
    """``pool-build``: ``overwrite`` null = the backend's default, true = format over data,
    false = refuse when data exists."""

    overwrite: bool | None = None


class PoolStartBody(PoolBuildBody):
    """``pool-start``, building first with ``build``."""

    build: bool = False


#: sizes are bytes, at most 2^63-1 (what a file offset holds)
_SIZE = Field(ge=0, le=2**63 - 1)


class VolumeCreateBody(Request):
    """``vol-create-as``: a new volume of ``capacity`` bytes."""

    name: str = Field(min_length=1, max_length=255)
    capacity: int = _SIZE
    format: str | None = None
    allocation: int | None = Field(default=None, ge=0, le=2**63 - 1)
    prealloc_metadata: bool = False
    backing_vol: str | None = None
    backing_vol_format: str | None = None


class VolumeResizeBody(Request):
    """``vol-resize``: to ``capacity`` bytes, or by it with ``delta`` (negative shrinks)."""

    capacity: int = Field(ge=-(2**63) + 1, le=2**63 - 1)
    delta: bool = False
    allocate: bool = False
    shrink: bool = False
