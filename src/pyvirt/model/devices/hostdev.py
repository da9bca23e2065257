"""``<hostdev>``: a host device (PCI, USB, SCSI) passed through to the guest."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr, bool_attr, int_attr


@register_device("hostdev")
class Hostdev(Device):
    """``<hostdev mode='subsystem' type='pci'>``; ``pci_*`` is the host address."""

    ORDER = ("driver", "source", "boot", "rom", "alias", "address")

    mode = attr("mode", default="subsystem", choices=("subsystem", "capabilities"))
    type = attr("type")
    _managed = bool_attr("managed")
    driver_name = attr("name", "driver")
    pci_domain = int_attr("domain", "source/address", hex_width=4)
    pci_bus = int_attr("bus", "source/address", hex_width=2)
    pci_slot = int_attr("slot", "source/address", hex_width=2)
    pci_function = int_attr("function", "source/address", hex_width=1)
    usb_vendor = attr("id", "source/vendor")
    usb_product = attr("id", "source/product")
    boot_order = int_attr("order", "boot")
    rom_bar = attr("bar", "rom", choices=("on", "off"))
    rom_file = attr("file", "rom")
    rom_enabled = bool_attr("enabled", "rom")

    @property
    def managed(self) -> bool:
        """``managed='yes'``: pyvirt detaches the device from its host driver."""
        return bool(self._managed)

    @managed.setter
    def managed(self, value: bool) -> None:
        self._managed = value
