"""Lowering of ``<hostdev>``: PCI functions passed through with VFIO."""

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
    """Lower one ``<hostdev mode='subsystem' type='pci'>`` to ``vfio-pci``."""
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
