"""``<interface>``: a network interface card and how it reaches the host network."""

from __future__ import annotations

import re

from pyvirt.model.devices.base import Address, Device, register_device
from pyvirt.model.xmlmap import attr, bool_attr, child, int_attr

INTERFACE_TYPES = (
    "network", "bridge", "user", "ethernet", "direct", "hostdev", "vhostuser", "server",
    "client", "mcast", "udp", "vdpa", "null",
)  # fmt: skip
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def mac_problem(mac: str) -> str | None:
    """Why ``mac`` cannot be a NIC's address (``"is a multicast address"``), or None.

    Refused: anything but six ':'-separated hex octets, all zeros, the broadcast address and
    multicast addresses (first octet odd).
    """
    if not MAC_RE.match(mac):
        return "is not a valid MAC address"
    octets = mac.lower()
    if octets == "00:00:00:00:00:00":
        return "is all zeros"
    if octets == "ff:ff:ff:ff:ff:ff":
        return "is the broadcast address"
    if int(mac[:2], 16) & 1:
        return "is a multicast address"
    return None


@register_device("interface")
class Interface(Device):
    """``<interface>``: ``source_network``/``source_bridge``/``source_dev`` by ``type``."""

    ORDER = (
        "mac", "source", "vlan", "virtualport", "ip", "route", "script", "target", "guest",
        "model", "driver", "backend", "mtu", "boot", "rom", "link", "alias", "address",
    )  # fmt: skip

    type = attr("type", choices=INTERFACE_TYPES)
    mac = attr("address", "mac")
    model = attr("type", "model")
    source_network = attr("network", "source")
    source_bridge = attr("bridge", "source")
    source_dev = attr("dev", "source")
    source_mode = attr("mode", "source")
    source_portgroup = attr("portgroup", "source")
    source_address = child("source/address", Address)
    managed = bool_attr("managed")
    target_dev = attr("dev", "target")
    target_managed = bool_attr("managed", "target")
    boot_order = int_attr("order", "boot")
    driver_name = attr("name", "driver")
    queues = int_attr("queues", "driver")
    mtu = int_attr("size", "mtu")
    rom_bar = attr("bar", "rom", choices=("on", "off"))
    rom_enabled = bool_attr("enabled", "rom")
    rom_file = attr("file", "rom")
    link_state = attr("state", "link", choices=("up", "down"))
