"""Devices of a domain from libvirt XML: ``attach-device`` and ``detach-device``.

- ``POST /api/v1/domains/{name}/devices`` (XML body): attach; ``?live=&config=&persistent=``
  as the CLI's flags (none: the running domain if it runs, else the definition).
- ``POST /api/v1/domains/{name}/devices/detach`` (XML body): detach the device it names.

A change to the running domain publishes ``device-added`` here and ``device-removed`` from the
supervisor when QEMU reports the device gone, with the device's alias (``virtio-disk1``; the disk target or the MAC when it has none), as virsh's events do; a
change to the definition publishes ``lifecycle`` ``Defined Updated``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel

from pyvirt.api.device_xml import DeviceChange, attach_device, detach_device
from pyvirt.daemon.context import Daemon, daemon_of

__all__ = ["DeviceChangeOut", "router"]

router = APIRouter(tags=["devices"])

_XML = Body(media_type="application/xml", description="the device, as libvirt XML")
_LIVE = Query(description="change the running domain")
_CONFIG = Query(description="change the persistent definition")
_PERSISTENT = Query(description="the definition, and the running domain if it runs")


class DeviceChangeOut(BaseModel):
    """What changed: the device kind, its target or MAC, its alias, the sides changed."""

    device: str
    ident: str
    alias: str | None
    live: bool
    config: bool


def _publish(daemon: Daemon, name: str, change: DeviceChange, kind: str) -> None:
    # QEMU reports a removal itself (DEVICE_DELETED, also for a guest's own unplug): the
    # supervisor publishes that one; an addition has no QEMU event, so it is published here
    if change.live and kind != "device-removed":
        daemon.bus.publish(
            kind, "domain", name, change.alias or change.ident, device=change.device,
            ident=change.ident,
        )  # fmt: skip
    if change.config:
        daemon.bus.publish("lifecycle", "domain", name, "Defined", "Updated")


@router.post("/api/v1/domains/{name}/devices")
def attach(
    request: Request,
    name: str,
    xml: Annotated[bytes, _XML],
    live: Annotated[bool, _LIVE] = False,
    config: Annotated[bool, _CONFIG] = False,
    persistent: Annotated[bool, _PERSISTENT] = False,
) -> DeviceChangeOut:
    """Attach a device (``attach-device``); publishes ``device-added``."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    change = attach_device(dom, xml, live=live, config=config, persistent=persistent)
    _publish(daemon, dom.name, change, "device-added")
    return DeviceChangeOut(**change.to_json())


@router.post("/api/v1/domains/{name}/devices/detach")
def detach(
    request: Request,
    name: str,
    xml: Annotated[bytes, _XML],
    live: Annotated[bool, _LIVE] = False,
    config: Annotated[bool, _CONFIG] = False,
    persistent: Annotated[bool, _PERSISTENT] = False,
) -> DeviceChangeOut:
    """Detach a device (``detach-device``); the supervisor publishes ``device-removed``."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    change = detach_device(dom, xml, live=live, config=config, persistent=persistent)
    _publish(daemon, dom.name, change, "device-removed")
    return DeviceChangeOut(**change.to_json())
