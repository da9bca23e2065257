"""``<video>``: the emulated display adapter."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr, bool_attr, int_attr


@register_device("video")
class Video(Device):
    """``<video><model type vram heads primary/></video>``."""

    ORDER = ("driver", "model", "alias", "address")

    model_type = attr("type", "model")
    vram = int_attr("vram", "model")
    ram = int_attr("ram", "model")
    vgamem = int_attr("vgamem", "model")
    heads = int_attr("heads", "model")
    primary = bool_attr("primary", "model")
