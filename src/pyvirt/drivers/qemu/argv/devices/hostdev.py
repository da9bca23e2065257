"""Lowering of ``<hostdev>``: PCI functions and mediated devices passed through with VFIO,
host USB devices."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Hostdev

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build


@lowers(Hostdev)
def lower_hostdev(dev: Hostdev, b: Build) -> list[str]:
    """Lower one ``<hostdev mode='subsystem' type='pci'>`` to ``vfio-pci``, ``type='usb'``
    to ``usb-host``."""
    if dev.mode == "subsystem" and dev.type == "usb":
        return lower_usb_host(dev, b)
    if dev.mode == "subsystem" and dev.type == "mdev":
        return lower_mdev(dev, b)
    if dev.mode != "subsystem" or dev.type != "pci":
        raise UnsupportedError(f"hostdev of type '{dev.type}' is not supported yet")
    if dev.pci_slot is None:
        raise InvalidConfigError("PCI hostdev has no <source><address slot>")
    alias = b.alias(dev, "hostdev")
    if dev.address is not None and dev.address.type == "unassigned":
        return []  # detached from the host but deliberately not given to the guest
    host = (
        f"{dev.pci_domain or 0:04x}:{dev.pci_bus or 0:02x}:{dev.pci_slot:02x}."
        f"{dev.pci_function or 0}"
    )
    props: dict[str, JsonValue] = {"driver": "vfio-pci", "host": host, "id": alias}
    props["bootindex"] = b.bootindex(dev)
    if dev.rom_enabled is False:
        props["romfile"] = ""
    elif dev.rom_file:
        props["romfile"] = dev.rom_file
    if dev.rom_bar is not None:
        props["rombar"] = 1 if dev.rom_bar == "on" else 0
    props.update(b.pci(dev.address))
    return ["-device", json_opts(props)]


def lower_usb_host(dev: Hostdev, b: Build) -> list[str]:
    """A host USB device, by bus/device number or by vendor/product id."""
    props: dict[str, JsonValue] = {"driver": "usb-host"}
    src = dev.element.find("source/address")
    if src is not None and src.get("bus") and src.get("device"):
        bus, device = int(src.get("bus") or "0", 0), int(src.get("device") or "0", 0)
        props["hostdevice"] = f"/dev/bus/usb/{bus:03d}/{device:03d}"
    elif dev.usb_vendor and dev.usb_product:
        props.update(vendorid=int(dev.usb_vendor, 16), productid=int(dev.usb_product, 16))
    else:
        raise InvalidConfigError(
            f"{dev.xpath('source')}: a USB host device needs <address bus device> or "
            "<vendor>/<product>"
        )
    props["id"] = b.alias(dev, "hostdev")
    props.update(usb_bus(dev, b))
    props["bootindex"] = b.bootindex(dev)
    return ["-device", json_opts(props)]


def usb_bus(dev: Hostdev, b: Build) -> dict[str, JsonValue]:
    """``bus``/``port`` of a device with an ``<address type='usb'>``."""
    from pyvirt.drivers.qemu.argv.devices.controller import controller_id

    addr = dev.address
    if addr is None or addr.type != "usb":
        return {}
    out: dict[str, JsonValue] = {"bus": f"{controller_id(b, 'usb', int(addr.bus or 0))}.0"}
    if addr.port:
        out["port"] = addr.port
    return out


def lower_mdev(dev: Hostdev, b: Build) -> list[str]:
    """A mediated device (vGPU...) by its UUID, as ``vfio-pci`` on the sysfs device."""
    model = dev.element.get("model")
    if model != "vfio-pci":
        raise UnsupportedError(f"{dev.xpath()}: mdev model '{model}' is not supported on x86")
    src = dev.element.find("source/address")
    uuid = src.get("uuid") if src is not None else None
    if not uuid:
        raise InvalidConfigError(f"{dev.xpath('source')}: an mdev needs <address uuid=...>")
    props: dict[str, JsonValue] = {"driver": "vfio-pci", "id": b.alias(dev, "hostdev")}
    props["sysfsdev"] = f"/sys/bus/mdev/devices/{uuid}"
    props["display"] = dev.element.get("display") or "off"
    if dev.element.get("ramfb") == "on":
        props["ramfb"] = True
    props["bootindex"] = b.bootindex(dev)
    props.update(b.pci(dev.address))
    return ["-device", json_opts(props)]
