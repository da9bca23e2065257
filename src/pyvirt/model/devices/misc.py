"""Small devices: ``<input>``, ``<memballoon>``, ``<rng>``, ``<hub>`` and ``<panic>``."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr, int_attr, text


@register_device("input")
class Input(Device):
    """``<input type bus>``: a keyboard, mouse or tablet."""

    ORDER = ("source", "driver", "alias", "address")

    type = attr("type", choices=("mouse", "keyboard", "tablet", "passthrough", "evdev"))
    bus = attr("bus")
    model = attr("model")


@register_device("memballoon")
class Memballoon(Device):
    """``<memballoon model>``: ``model='none'`` means no balloon device."""

    ORDER = ("alias", "stats", "address", "driver")

    model = attr("model")
    autodeflate = attr("autodeflate", choices=("on", "off"))
    free_page_reporting = attr("freePageReporting", choices=("on", "off"))
    period = int_attr("period", "stats")


@register_device("rng")
class Rng(Device):
    """``<rng model><backend model>PATH</backend></rng>``."""

    ORDER = ("rate", "backend", "driver", "alias", "address")

    model = attr("model")
    backend_model = attr("model", "backend")
    backend_path = text("backend")
    rate_bytes = int_attr("bytes", "rate")
    rate_period = int_attr("period", "rate")


@register_device("hub")
class Hub(Device):
    """``<hub type='usb'>``: a USB hub."""

    ORDER = ("alias", "address")

    type = attr("type", choices=("usb",))


@register_device("panic")
class Panic(Device):
    """``<panic model>``: how the guest reports a kernel panic to the host."""

    ORDER = ("alias", "address")

    model = attr("model", choices=("isa", "pseries", "hyperv", "s390", "pvpanic"))
