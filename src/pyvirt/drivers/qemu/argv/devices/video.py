"""Lowering of ``<video>``: the display adapter (``model type='none'`` adds nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model import Video

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: model type -> (device when primary, device when secondary)
VIDEO_MODELS = {
    "vga": ("VGA", None),
    "cirrus": ("cirrus-vga", None),
    "qxl": ("qxl-vga", "qxl"),
    "virtio": ("virtio-vga", "virtio-gpu-pci"),
    "bochs": ("bochs-display", "bochs-display"),
    "ramfb": ("ramfb", None),
    "vmvga": ("vmware-svga", None),
}


@lowers(Video)
def lower_video(dev: Video, b: Build) -> list[str]:
    """Lower one ``<video>``; the first one is the primary (VGA-compatible) adapter."""
    model = dev.model_type or "vga"
    if model == "none":
        return []
    devices = VIDEO_MODELS.get(model)
    if devices is None:
        raise UnsupportedError(f"video model '{model}' is not supported")
    alias = b.alias(dev, "video")
    primary = alias == "video0" or dev.primary is True
    driver = devices[0] if primary else devices[1]
    if driver is None:
        raise UnsupportedError(f"video model '{model}' can only be the primary adapter")
    props: dict[str, JsonValue] = {"driver": driver, "id": alias}
    if model == "qxl":
        props["max_outputs"] = dev.heads
        props["ram_size"] = dev.ram * 1024 if dev.ram else None
        props["vram_size"] = dev.vram * 1024 if dev.vram else None
        props["vgamem_mb"] = dev.vgamem // 1024 if dev.vgamem else None
    elif model in ("vga", "vmvga") and dev.vram:
        props["vgamem_mb"] = dev.vram // 1024
    elif model == "virtio" and dev.heads:
        props["max_outputs"] = dev.heads
    if driver != "ramfb":
        props.update(b.pci(dev.address, video=primary))
    return ["-device", json_opts(props)]
