"""Lowering of ``<interface>``: a ``-netdev`` backend plus a NIC ``-device``.

``network`` and ``bridge`` interfaces become a tap device the network layer sets up
(``ifname`` = ``<target dev>``, no QEMU scripts); ``hostdev`` interfaces are a VFIO function.
``direct`` interfaces (macvtap) are a tap QEMU inherits as fd :func:`direct_fd` (the network
hook opens ``/dev/tapN`` before launch); the number is fixed per NIC so a cached argv stays valid.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Interface

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: <model type> -> QEMU device; libvirt's default for x86 is rtl8139
NIC_MODELS = {
    "virtio": "virtio-net-pci",
    "virtio-net": "virtio-net-pci",
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


def _netdev(iface: Interface, netid: str, b: Build) -> list[str]:
    queues = iface.queues if iface.queues and iface.queues > 1 else None
    if iface.type == "user":
        return ["-netdev", qemu_opts("user", id=netid)]
    if iface.type == "direct":
        if queues:
            raise UnsupportedError("multiqueue is not supported on a direct (macvtap) interface")
        fd = direct_fd(b.domain.devices.interfaces.index(iface))
        return ["-netdev", qemu_opts("tap", id=netid, fd=str(fd))]
    if iface.type in TAP_TYPES:
        return [
            "-netdev",
            qemu_opts(
                "tap",
                id=netid,
                ifname=iface.target_dev,
                script="no",
                downscript="no",
                queues=queues,
                vhost=True if iface.driver_name == "vhost" else None,
            ),
        ]
    raise UnsupportedError(f"interface type '{iface.type}' is not supported yet")


@lowers(Interface)
def lower_interface(iface: Interface, b: Build) -> list[str]:
    """Lower one ``<interface>``."""
    if iface.type == "hostdev":
        host = hostdev_source(iface)
        if host is None:
            raise UnsupportedError("interface type 'hostdev' needs a PCI <source><address>")
        alias = b.alias(iface, "hostdev")
        props: dict[str, JsonValue] = {"driver": "vfio-pci", "host": host, "id": alias}
        props["bootindex"] = b.bootindex(iface)
        props.update(b.pci(iface.address))
        return ["-device", json_opts(props)]
    alias = b.alias(iface, "net")
    netid = f"host{alias}"
    driver = NIC_MODELS.get(iface.model or DEFAULT_MODEL)
    if driver is None:
        raise UnsupportedError(f"NIC model '{iface.model}' is not supported")
    props = {"driver": driver, "netdev": netid, "id": alias, "mac": iface.mac}
    props["bootindex"] = b.bootindex(iface)
    if driver == "virtio-net-pci":
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
    return [*_netdev(iface, netid, b), "-device", json_opts(props)]
