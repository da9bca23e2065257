"""The common base of every ``<devices>`` child: ``<address>``, ``<alias>`` and the registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pyvirt.model.xmlmap import XmlNode, attr, child

D = TypeVar("D", bound="Device")

#: tag -> model class of every device kind pyvirt understands
DEVICE_CLASSES: dict[str, type[Device]] = {}

#: canonical order of ``<devices>`` children (where a new device is inserted)
DEVICE_ORDER: tuple[str, ...] = (
    "emulator",
    "disk",
    "controller",
    "lease",
    "filesystem",
    "interface",
    "smartcard",
    "serial",
    "parallel",
    "console",
    "channel",
    "input",
    "tpm",
    "graphics",
    "sound",
    "audio",
    "video",
    "hostdev",
    "redirdev",
    "redirfilter",
    "hub",
    "watchdog",
    "memballoon",
    "rng",
    "panic",
    "shmem",
    "memory",
    "iommu",
    "vsock",
)


class Address(XmlNode):
    """``<address>``: where a device sits on its bus (pci, drive, usb, virtio-serial, ...)."""

    TAG = "address"
    type = attr("type")
    domain = attr("domain")
    bus = attr("bus")
    slot = attr("slot")
    function = attr("function")
    multifunction = attr("multifunction")
    controller = attr("controller")
    target = attr("target")
    unit = attr("unit")
    port = attr("port")
    base = attr("base")


class Device(XmlNode):
    """Base of every device model; ``address`` and ``alias`` exist on all of them."""

    address = child("address", Address)
    alias = attr("name", "alias")


def register_device(tag: str) -> Callable[[type[D]], type[D]]:
    """Class decorator: register a device model for the ``<devices>`` child ``tag``."""

    def deco(cls: type[D]) -> type[D]:
        cls.TAG = tag
        DEVICE_CLASSES[tag] = cls
        return cls

    return deco
