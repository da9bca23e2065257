"""Devices of a domain from libvirt XML, removable media, keys, descriptions and metadata.

- ``POST /api/v1/domains/{name}/devices`` (XML body): attach (``attach-device``);
  ``?live=&config=&current=&persistent=`` as the CLI's flags (none: the running domain if it
  runs, else the definition). Disks, NICs, controllers, input, serial/console, hostdev, RNG,
  watchdog; a kind QEMU cannot hot-plug is refused live with the reason.
- ``POST /api/v1/domains/{name}/devices/detach`` (XML body): detach the device it names.
- ``POST /api/v1/domains/{name}/media`` (JSON): ``change-media``.
- ``POST /api/v1/domains/{name}/keys`` (JSON): ``send-key``.
- ``GET``/``PUT /api/v1/domains/{name}/description``: ``desc`` (``?title=`` for the title).
- ``GET``/``PUT``/``DELETE /api/v1/domains/{name}/metadata?uri=``: ``metadata``.
- ``GET /api/v1/domains/{name}/blkerrors``: ``domblkerror``; ``GET .../control``: ``domcontrol``.

A change to the running domain publishes ``device-added`` here and ``device-removed`` from the
supervisor when QEMU reports the device gone, with the device's alias (``virtio-disk1``,
``rng0``; the disk target or the MAC when it has none), as virsh's events do; a change to the
definition publishes ``lifecycle`` ``Defined Updated``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field

from pyvirt.api.device_xml import DeviceChange
from pyvirt.daemon.context import Daemon, daemon_of

__all__ = ["DeviceChangeOut", "router"]

router = APIRouter(tags=["devices"])

_XML = Body(media_type="application/xml", description="the device, as libvirt XML")
_LIVE = Query(description="change the running domain")
_CONFIG = Query(description="change the persistent definition")
_CURRENT = Query(description="the running domain if it runs, else the definition")
_PERSISTENT = Query(description="the definition, and the running domain if it runs")


class DeviceChangeOut(BaseModel):
    """What changed: the device kind, its target or MAC, its alias, the sides changed."""

    device: str
    ident: str
    alias: str | None
    live: bool
    config: bool


class Affect(BaseModel):
    """The affect flags of a change (all false: the running domain if it runs)."""

    live: bool = False
    config: bool = False
    current: bool = False


class MediaIn(Affect):
    """``change-media``: the drive (target or source path), the new source, the action."""

    target: str
    source: str | None = None
    action: str = Field("update", pattern="^(eject|insert|update)$")
    force: bool = False
    print_xml: bool = Field(False, description="change nothing; answer the new <disk> XML")


class MediaOut(BaseModel):
    """What change-media did: ``ejected``, ``inserted`` or ``updated`` (with
    ``print_xml``: ``print-xml`` and the drive's new XML)."""

    action: str
    xml: str | None = None


class KeysIn(BaseModel):
    """``send-key``: the keys (numbers in ``codeset`` or Linux names), the hold time."""

    keys: list[str] = Field(min_length=1, max_length=16)
    codeset: str = "linux"
    holdtime: int | None = None


class KeysOut(BaseModel):
    """QEMU's key numbers sent."""

    qnums: list[int]


class TextIn(Affect):
    """A new description or title (empty: remove it)."""

    text: str
    title: bool = False


class TextOut(BaseModel):
    """A description or title (empty: none)."""

    text: str


class MetadataIn(Affect):
    """A metadata element for namespace ``uri`` under prefix ``key``."""

    uri: str
    key: str
    xml: str


class BlockErrorOut(BaseModel):
    """A drive in an I/O error state."""

    target: str
    error: str


class ControlOut(BaseModel):
    """``domcontrol``: ``ok``, ``occupied`` or ``error``, with a reason."""

    state: str
    reason: str
    duration: float | None


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
    current: Annotated[bool, _CURRENT] = False,
    persistent: Annotated[bool, _PERSISTENT] = False,
) -> DeviceChangeOut:
    """Attach a device (``attach-device``); publishes ``device-added``."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    change = dom.attach_device(
        xml, live=live, config=config, current=current, persistent=persistent
    )
    _publish(daemon, dom.name, change, "device-added")
    return DeviceChangeOut(**change.to_json())


@router.post("/api/v1/domains/{name}/devices/detach")
def detach(
    request: Request,
    name: str,
    xml: Annotated[bytes, _XML],
    live: Annotated[bool, _LIVE] = False,
    config: Annotated[bool, _CONFIG] = False,
    current: Annotated[bool, _CURRENT] = False,
    persistent: Annotated[bool, _PERSISTENT] = False,
) -> DeviceChangeOut:
    """Detach a device (``detach-device``); the supervisor publishes ``device-removed``."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    change = dom.detach_device(
        xml, live=live, config=config, current=current, persistent=persistent
    )
    _publish(daemon, dom.name, change, "device-removed")
    return DeviceChangeOut(**change.to_json())


@router.post("/api/v1/domains/{name}/media", response_model_exclude_none=True)
def change_media(request: Request, name: str, body: MediaIn) -> MediaOut:
    """Eject, insert or replace a CD-ROM or floppy medium (``change-media``)."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)
    done = dom.change_media(
        body.target, body.source, action=body.action, force=body.force, live=body.live,
        config=body.config, current=body.current, print_xml=body.print_xml,
    )  # fmt: skip
    if body.print_xml:
        return MediaOut(action="print-xml", xml=done)
    if body.config or not dom.is_active():
        daemon.bus.publish("lifecycle", "domain", dom.name, "Defined", "Updated")
    return MediaOut(action=done)


@router.post("/api/v1/domains/{name}/keys")
def send_key(request: Request, name: str, body: KeysIn) -> KeysOut:
    """Press keys on the guest (``send-key``)."""
    dom = daemon_of(request).conn.domains.get(name)
    return KeysOut(qnums=dom.send_key(body.keys, codeset=body.codeset, holdtime=body.holdtime))


@router.get("/api/v1/domains/{name}/description")
def get_desc(request: Request, name: str, title: bool = False, config: bool = False) -> TextOut:
    """The description (``?title=true``: the title) of the domain (``desc``)."""
    dom = daemon_of(request).conn.domains.get(name)
    return TextOut(text=dom.desc(title=title, config=config))


@router.put("/api/v1/domains/{name}/description", status_code=204)
def set_desc(request: Request, name: str, body: TextIn) -> Response:
    """Set the description or title (``desc --new-desc``)."""
    dom = daemon_of(request).conn.domains.get(name)
    dom.set_desc(
        body.text, title=body.title, live=body.live, config=body.config, current=body.current
    )
    return Response(status_code=204)


@router.get("/api/v1/domains/{name}/metadata")
def get_metadata(request: Request, name: str, uri: str, config: bool = False) -> Response:
    """The metadata element of namespace ``uri``, as XML (``metadata``)."""
    dom = daemon_of(request).conn.domains.get(name)
    return Response(dom.metadata(uri, config=config), media_type="application/xml")


@router.put("/api/v1/domains/{name}/metadata", status_code=204)
def set_metadata(request: Request, name: str, body: MetadataIn) -> Response:
    """Set the metadata element of a namespace (``metadata --set``)."""
    dom = daemon_of(request).conn.domains.get(name)
    dom.set_metadata(
        body.uri, body.xml, key=body.key, live=body.live, config=body.config,
        current=body.current,
    )  # fmt: skip
    return Response(status_code=204)


@router.delete("/api/v1/domains/{name}/metadata", status_code=204)
def remove_metadata(
    request: Request,
    name: str,
    uri: str,
    live: Annotated[bool, _LIVE] = False,
    config: Annotated[bool, _CONFIG] = False,
    current: Annotated[bool, _CURRENT] = False,
) -> Response:
    """Remove the metadata element of a namespace (``metadata --remove``)."""
    dom = daemon_of(request).conn.domains.get(name)
    dom.set_metadata(uri, None, live=live, config=config, current=current)
    return Response(status_code=204)


@router.get("/api/v1/domains/{name}/blkerrors")
def blkerrors(request: Request, name: str) -> list[BlockErrorOut]:
    """Drives of the running domain in an I/O error state (``domblkerror``)."""
    dom = daemon_of(request).conn.domains.get(name)
    return [BlockErrorOut(**e.to_json()) for e in dom.blkerror()]


@router.get("/api/v1/domains/{name}/control")
def control(request: Request, name: str) -> ControlOut:
    """Whether the domain can be controlled now (``domcontrol``)."""
    dom = daemon_of(request).conn.domains.get(name)
    return ControlOut(**dom.control_info().to_json())
