"""Lowering of ``<hub>`` (``usb-hub``) and ``<panic>`` (``pvpanic``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.devices.controller import parse_num
from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model.devices.misc import Hub, Panic

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build


@lowers(Hub)
def lower_hub(dev: Hub, b: Build) -> list[str]:
    """Lower one ``<hub type='usb'>`` (QEMU picks its USB port)."""
    return ["-device", json_opts({"driver": "usb-hub", "id": b.alias(dev, "hub")})]


@lowers(Panic)
def lower_panic(dev: Panic, b: Build) -> list[str]:
    """Lower one ``<panic>``: ``isa`` (the default on x86) is ``pvpanic`` at its I/O port,
    ``pvpanic`` the PCI device; ``hyperv`` is a CPU enlightenment (``hv-crash``), not a
    device."""
    model = dev.model or "isa"
    if model == "hyperv":
        raise UnsupportedError("panic model 'hyperv' is not supported", hint="use model='isa'")
    if model == "isa":
        props: dict[str, JsonValue] = {"driver": "pvpanic"}
        addr = dev.address
        if addr is not None and addr.type == "isa":
            iobase = addr.element.get("iobase")
            if iobase:
                props["ioport"] = parse_num(iobase)
        return ["-device", json_opts(props)]
    if model == "pvpanic":
        props = {"driver": "pvpanic-pci"}
        props.update(b.pci(dev.address))
        return ["-device", json_opts(props)]
    raise UnsupportedError(f"panic model '{model}' is not supported on x86", hint="use isa")
