"""``/api/v1/nodedevs``: host devices (virsh's ``nodedev-list``/``nodedev-dumpxml``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.models import ERRORS, NodeDeviceModel
from pyvirt.daemon.routes._common import XML_RESPONSE, check_name, xml_response

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/nodedevs", tags=["nodedevs"], responses=ERRORS)


@router.get("", response_model=list[NodeDeviceModel])
def list_nodedevs(
    request: Request, cap: Annotated[list[str] | None, Query()] = None
) -> list[dict[str, Any]]:
    """``nodedev-list [--cap CAP,...]``: devices with any of the capabilities (all without)."""
    devs = daemon_of(request).conn.nodedevs.list(tuple(cap or ()))
    return [d.to_json() for d in devs]


@router.get("/{name}", response_model=NodeDeviceModel)
def nodedev_info(request: Request, name: str) -> dict[str, Any]:
    """One device, as ``nodedev-list --json`` shows it."""
    return daemon_of(request).conn.nodedevs.get(check_name(name, "node device")).info().to_json()


@router.get("/{name}/xml", response_class=Response, responses=XML_RESPONSE)
def nodedev_xml(request: Request, name: str) -> Response:
    """``nodedev-dumpxml``."""
    dev = daemon_of(request).conn.nodedevs.get(check_name(name, "node device"))
    return xml_response(dev.xml_desc())
