"""``update-device`` over REST: ``POST /api/v1/domains/{name}/devices/update`` (XML body;
``?live=&config=&current=&persistent=`` as the CLI's flags) changes a device in place
(graphics password or keymap, CD-ROM media, a NIC's link state; the definition of a NIC,
controller, input, serial/console, hostdev, RNG or watchdog). A change to the definition
publishes ``lifecycle Defined Updated``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response

from pyvirt.daemon.context import daemon_of

__all__ = ["router"]

router = APIRouter(tags=["devices"])


@router.post(
    "/api/v1/domains/{name}/devices/update",
    status_code=204,
    responses={404: {"description": "no such domain or device"}},
)
def update_device(
    request: Request,
    name: str,
    xml: Annotated[bytes, Body(media_type="application/xml", description="the device XML")],
    live: Annotated[bool, Query(description="change the running domain")] = False,
    config: Annotated[bool, Query(description="change the persistent definition")] = False,
    current: Annotated[bool, Query(description="the running domain, else the definition")] = False,
    persistent: Annotated[bool, Query(description="the definition, and the running one")] = False,
) -> Response:
    """Change a device in place (``update-device``)."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    running = dom.is_active()
    dom.update_device(xml, live=live, config=config, current=current, persistent=persistent)
    if config or persistent or (not live and not running):
        daemon.bus.publish("lifecycle", "domain", dom.name, "Defined", "Updated")
    return Response(status_code=204)
