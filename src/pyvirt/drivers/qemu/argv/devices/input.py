"""Lowering of ``<input>``: PS/2 devices are built in; USB and virtio ones are added."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Input

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

INPUT_DEVICES = {
    ("tablet", "usb"): "usb-tablet",
    ("mouse", "usb"): "usb-mouse",
    ("keyboard", "usb"): "usb-kbd",
    ("tablet", "virtio"): "virtio-tablet-pci",
    ("mouse", "virtio"): "virtio-mouse-pci",
    ("keyboard", "virtio"): "virtio-keyboard-pci",
}


@lowers(Input)
def lower_input(dev: Input, b: Build) -> list[str]:
    """Lower one ``<input>``."""
    bus = dev.bus or ("usb" if dev.type == "tablet" else "ps2")
    if bus == "ps2":
        return []  # the i8042 controller of pc and q35 already provides them
    if dev.type == "passthrough" and bus == "virtio":
        evdev = dev.element.find("source")
        path = evdev.get("evdev") if evdev is not None else None
        if not path:
            raise InvalidConfigError(f"{dev.xpath('source')}: evdev is required")
        props: dict[str, JsonValue] = {
            "driver": "virtio-input-host-pci",
            "id": b.alias(dev, "input"),
        }
        props["evdev"] = path
        props.update(b.pci(dev.address))
        return ["-device", json_opts(props)]
    driver = INPUT_DEVICES.get((dev.type or "", bus))
    if driver is None:
        raise UnsupportedError(f"input '{dev.type}' on bus '{bus}' is not supported")
    props = {"driver": driver, "id": b.alias(dev, "input")}
    if bus == "virtio":
        props.update(b.pci(dev.address))
    return ["-device", json_opts(props)]
