"""``/api/v1/networks``: virtual networks (virsh's ``net-*`` verbs) over ``conn.networks``.

Definitions carry an ``ETag`` (their revision); ``PUT .../xml`` with ``If-Match`` refuses a
lost update with 412. Changes publish ``network-lifecycle`` events.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from pyvirt.api.networks import Network
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.models import (
    ERRORS,
    AutostartBody,
    Created,
    DhcpLeaseModel,
    NetworkInfoModel,
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

router = APIRouter(prefix="/api/v1/networks", tags=["networks"], responses=ERRORS)
EVENT = "network-lifecycle"
XmlBody = Annotated[bytes, Depends(read_xml)]


def _net(request: Request, name: str) -> Network:
    return daemon_of(request).conn.networks.get(check_name(name, "network"))


def _revision(net: Network) -> str | None:
    try:
        return net.revision()
    except InvalidStateError:
        return None  # transient


@router.get("", response_model=list[NetworkInfoModel])  # type: ignore[valid-type]
def list_networks(request: Request, active: bool | None = None) -> list[dict[str, Any]]:
    """``net-list``: every network (``active`` filters by state)."""
    return [n.to_json() for n in daemon_of(request).conn.networks.list(active=active)]


@router.post("", status_code=201, response_model=Created, openapi_extra=XML_BODY)
def define_network(request: Request, xml: XmlBody, create: bool = False) -> Created:
    """``net-define`` (``create=true``: ``net-create``, a transient network, started)."""
    nets = daemon_of(request).conn.networks
    if create:
        net = nets.create(xml)
        publish(request, EVENT, "network", net.name, "Started", "")
        return Created(name=net.name, uuid=net.uuid, warnings=[])
    before = {n.name for n in nets.list()}
    net, warnings = nets.define(xml)
    detail = "Updated" if net.name in before else "Added"
    publish(request, EVENT, "network", net.name, "Defined", detail)
    return Created(name=net.name, uuid=net.uuid, warnings=warnings)


@router.get("/{name}", response_model=NetworkInfoModel)
def network_info(request: Request, response: Response, name: str) -> dict[str, Any]:
    """``net-info`` (``ETag``: the persistent definition's revision)."""
    net = _net(request, name)
    info = net.info()
    rev = _revision(net) if info.persistent else None
    if rev:
        response.headers["ETag"] = etag(rev)
    return info.to_json()


@router.get("/{name}/xml", response_class=Response, responses=XML_RESPONSE)
def network_xml(request: Request, name: str, inactive: bool = False) -> Response:
    """``net-dumpxml`` (``ETag``: the persistent definition's revision)."""
    net = _net(request, name)
    return xml_response(net.xml_desc(inactive=inactive), _revision(net))


@router.put("/{name}/xml", response_model=Warnings, openapi_extra=XML_BODY)
def network_redefine(request: Request, name: str, xml: XmlBody) -> Warnings:
    """Replace the definition (``If-Match: "REV"`` refuses it with 412 if it changed)."""
    net = _net(request, name)
    try:
        warnings = net.redefine(xml, expect_revision=if_match(request))
    except InvalidStateError as err:
        raise precondition(err) from None
    publish(request, EVENT, "network", net.name, "Defined", "Updated")
    return Warnings(warnings=warnings)


@router.post("/{name}/start", response_model=NetworkInfoModel)
def network_start(request: Request, name: str) -> dict[str, Any]:
    """``net-start``."""
    net = _net(request, name)
    net.start()
    publish(request, EVENT, "network", net.name, "Started", "")
    return net.info().to_json()


@router.post("/{name}/destroy", status_code=204, response_class=Response)
def network_destroy(request: Request, name: str) -> Response:
    """``net-destroy`` (a transient network is gone afterwards)."""
    net = _net(request, name)
    net.destroy()
    publish(request, EVENT, "network", net.name, "Stopped", "")
    return Response(status_code=204)


@router.delete("/{name}", status_code=204, response_class=Response)
def network_undefine(request: Request, name: str) -> Response:
    """``net-undefine`` (an active network stays, transient)."""
    net = _net(request, name)
    net.undefine()
    publish(request, EVENT, "network", net.name, "Undefined", "Removed")
    return Response(status_code=204)


@router.put("/{name}/autostart", response_model=NetworkInfoModel)
def network_autostart(request: Request, name: str, body: AutostartBody) -> dict[str, Any]:
    """``net-autostart [--disable]``."""
    net = _net(request, name)
    net.set_autostart(body.enabled)
    return net.info().to_json()


@router.get("/{name}/leases", response_model=list[DhcpLeaseModel])  # type: ignore[valid-type]
def network_leases(request: Request, name: str, mac: str | None = None) -> list[dict[str, Any]]:
    """``net-dhcp-leases`` (of one MAC address with ``mac``)."""
    return [lease.to_json() for lease in _net(request, name).dhcp_leases(mac=mac)]
