"""Lowering of ``<interface>``: a ``-netdev`` backend plus a NIC ``-device``.

``network`` and ``bridge`` interfaces become a tap device the network layer sets up
(``ifname`` = ``<target dev>``, no QEMU scripts); ``hostdev`` interfaces are a VFIO function.
``direct`` interfaces (macvtap) are a tap QEMU inherits as fd :func:`direct_fd` (the network
hook opens ``/dev/tapN`` before launch); the number is fixed per NIC so a cached argv stays valid.

:func:`nic_spec` lowers a NIC to data (backend and device properties); the command line and
live hot-plug (``netdev_add`` + ``device_add``) both consume it, so a hot-plugged NIC is the
device the same XML gets at boot.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import (
    JsonValue,
    OptValue,
    json_opts,
    qemu_opts,
    qemu_opts_from,
)
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Interface

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: <model type> -> QEMU device; libvirt's default for x86 is rtl8139
NIC_MODELS = {
    "virtio": "virtio-net-pci",
    "virtio-net": "virtio-net-pci",
    "virtio-transitional": "virtio-net-pci-transitional",
    "virtio-non-transitional": "virtio-net-pci-non-transitional",
    "e1000": "e1000",
    "e1000e": "e1000e",
    "rtl8139": "rtl8139",
    "igb": "igb",
    "vmxnet3": "vmxnet3",
    "ne2k_pci": "ne2k_pci",
    "pcnet": "pcnet",
}
DEFAULT_MODEL = "rtl8139"
TAP_TYPES = ("network", "bridge", "ethernet")
#: socket interface types -> the ``-netdev socket`` property naming the far end
SOCKET_TYPES = {"client": "connect", "server": "listen", "mcast": "mcast", "udp": "udp"}
#: fd number of the macvtap of NIC 0 in QEMU; NIC i gets DIRECT_FD_BASE + i
DIRECT_FD_BASE = 100


def direct_fd(index: int) -> int:
    """The fd number QEMU inherits the macvtap of ``<interface>`` number ``index`` on."""
    return DIRECT_FD_BASE + index


def hostdev_source(iface: Interface) -> str | None:
    """The host PCI address (``0000:03:07.1``) of an ``<interface type='hostdev'>``."""
    from pyvirt.drivers.qemu.argv.builder import parse_num

    addr = iface.source_address
    if addr is None or addr.slot is None:
        return None
    return (
        f"{parse_num(addr.domain):04x}:{parse_num(addr.bus):02x}:{parse_num(addr.slot):02x}."
        f"{parse_num(addr.function)}"
    )


def netdev_props(iface: Interface, netid: str, b: Build) -> dict[str, JsonValue]:
    """The ``-netdev`` backend of *iface* as data: ``type`` first, then the properties in
    command-line order (``None`` values are left out). ``netdev_add`` takes it as is.
    """
    queues = iface.queues if iface.queues and iface.queues > 1 else None
    if iface.type == "user":
        return {"type": "user", "id": netid}
    if iface.type == "direct":
        if queues:
            raise UnsupportedError("multiqueue is not supported on a direct (macvtap) interface")
        fd = direct_fd(b.domain.devices.interfaces.index(iface))
        return {"type": "tap", "id": netid, "fd": str(fd)}
    if iface.type in TAP_TYPES:
        return {
            "type": "tap",
            "id": netid,
            "ifname": iface.target_dev,
            "script": "no",
            "downscript": "no",
            "queues": queues,
            "vhost": True if iface.driver_name == "vhost" else None,
        }
    if iface.type in SOCKET_TYPES:
        return {"type": "socket", **socket_endpoints(iface), "id": netid}
    if iface.type == "vhostuser":
        return {"type": "vhost-user", "chardev": f"char{netid[4:]}", "queues": queues, "id": netid}
    raise UnsupportedError(f"interface type '{iface.type}' is not supported yet")


def socket_endpoints(iface: Interface) -> dict[str, JsonValue]:
    """``connect``/``listen``/``mcast``/``udp`` (+ ``localaddr``) of a socket interface."""
    src = iface.element.find("source")
    if src is None or not src.get("port"):
        raise UnsupportedError(
            f"{iface.xpath('source')}: interface type '{iface.type}' needs a port"
        )
    where = f"{src.get('address') or ''}:{src.get('port')}"
    key = SOCKET_TYPES[str(iface.type)]
    out: dict[str, JsonValue] = {key: where}
    local = src.find("local")
    if iface.type == "udp" and local is not None:
        out["localaddr"] = f"{local.get('address') or ''}:{local.get('port') or ''}"
    return out


def vhostuser_chardev(iface: Interface, alias: str) -> str:
    """The ``-chardev`` of a vhost-user NIC's unix socket (QEMU is the server for mode='server')."""
    src = iface.element.find("source")
    path = src.get("path") if src is not None else None
    if src is None or src.get("type", "unix") != "unix" or not path:
        raise UnsupportedError(
            f"{iface.xpath('source')}: a vhostuser interface needs <source type='unix' path=...>"
        )
    server = src.get("mode") == "server"
    return qemu_opts(
        "socket", id=f"char{alias}", path=path, server=server or None,
        wait=False if server else None,
    )  # fmt: skip


def netdev_arg(props: Mapping[str, JsonValue]) -> str:
    """The ``-netdev`` argument text of :func:`netdev_props`' result (keyval: ``tap,id=...``)."""
    kind = props["type"]
    assert isinstance(kind, str)
    items: dict[str, OptValue] = {}
    for key, value in props.items():
        if key != "type":
            assert value is None or isinstance(value, str | int | bool), key
            items[key] = value
    return qemu_opts_from(items, kind)


@dataclass(frozen=True)
class NicSpec:
    """An ``<interface>`` lowered to data, for the argv and for live hot-plug.

    :ivar alias: the NIC's QEMU id (``net0``)
    :ivar netdev: the ``-netdev`` / ``netdev_add`` properties (``None`` for a VFIO NIC)
    :ivar device: the ``-device`` / ``device_add`` properties (``None`` values left out by
        both consumers)
    :ivar chardev: the ``-chardev`` the netdev talks through (vhost-user), else ``None``
    """

    alias: str
    netdev: dict[str, JsonValue] | None
    device: dict[str, JsonValue]
    chardev: str | None = None


def nic_spec(iface: Interface, b: Build) -> NicSpec:
    """Lower *iface* to data (used by :func:`lower_interface` and by NIC hot-plug).

    :raises UnsupportedError: an interface type or NIC model pyvirt cannot lower
    """
    if iface.type == "hostdev":
        host = hostdev_source(iface)
        if host is None:
            raise UnsupportedError("interface type 'hostdev' needs a PCI <source><address>")
        alias = b.alias(iface, "hostdev")
        props: dict[str, JsonValue] = {"driver": "vfio-pci", "host": host, "id": alias}
        props["bootindex"] = b.bootindex(iface)
        props.update(b.pci(iface.address))
        return NicSpec(alias, None, props)
    alias = b.alias(iface, "net")
    netid = f"host{alias}"
    driver = NIC_MODELS.get(iface.model or DEFAULT_MODEL)
    if driver is None:
        raise UnsupportedError(f"NIC model '{iface.model}' is not supported")
    props = {"driver": driver, "netdev": netid, "id": alias, "mac": iface.mac}
    props["bootindex"] = b.bootindex(iface)
    if driver.startswith("virtio-net-pci"):
        if iface.queues and iface.queues > 1:
            props.update(mq=True, vectors=2 * iface.queues + 2)
        props["host_mtu"] = iface.mtu
    if iface.rom_enabled is False:
        props["romfile"] = ""
    elif iface.rom_file:
        props["romfile"] = iface.rom_file
    if iface.rom_bar is not None:
        props["rombar"] = 1 if iface.rom_bar == "on" else 0
    props.update(b.pci(iface.address))
    chardev = vhostuser_chardev(iface, alias) if iface.type == "vhostuser" else None
    return NicSpec(alias, netdev_props(iface, netid, b), props, chardev)


@lowers(Interface)
def lower_interface(iface: Interface, b: Build) -> list[str]:
    """Lower one ``<interface>``."""
    spec = nic_spec(iface, b)
    netdev = ["-netdev", netdev_arg(spec.netdev)] if spec.netdev is not None else []
    chardev = ["-chardev", spec.chardev] if spec.chardev is not None else []
    return [*chardev, *netdev, "-device", json_opts(spec.device)]
