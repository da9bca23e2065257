"""``/api/v1/host``: versions, capabilities and node statistics (``version``,
``capabilities``, ``nodeinfo``, ``freecell``, ``nodememstats``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.models import (
    ERRORS,
    CellMemoryModel,
    MemStatsModel,
    NodeInfoModel,
    VersionsModel,
)
from pyvirt.daemon.routes._common import XML_RESPONSE, xml_response

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/host", tags=["host"], responses=ERRORS)
Cell = Annotated[int | None, Query(ge=0, le=4095)]


@router.get("/version", response_model=VersionsModel)
def version(request: Request) -> dict[str, object]:
    """``version``: pyvirt's version and QEMU's."""
    return daemon_of(request).conn.host.versions().to_json()


@router.get("/capabilities", response_class=Response, responses=XML_RESPONSE)
def capabilities(request: Request) -> Response:
    """``capabilities``: libvirt's capabilities XML."""
    return xml_response(daemon_of(request).conn.host.capabilities())


@router.get("/nodeinfo", response_model=NodeInfoModel)
def nodeinfo(request: Request) -> dict[str, object]:
    """``nodeinfo``: CPUs, sockets, NUMA cells and memory."""
    return daemon_of(request).conn.host.nodeinfo().to_json()


@router.get("/freecell", response_model=list[CellMemoryModel])  # type: ignore[valid-type]
def freecell(request: Request, cell: Cell = None) -> list[dict[str, Any]]:
    """``freecell``: free memory per NUMA cell (of one with ``cell``)."""
    return [c.to_json() for c in daemon_of(request).conn.host.freecell(cell)]


@router.get("/memstats", response_model=MemStatsModel)
def memstats(request: Request, cell: Cell = None) -> dict[str, int]:
    """``nodememstats``: memory of the host (or of one NUMA cell), KiB."""
    return daemon_of(request).conn.host.memstats(cell).to_json()
