"""``<devices>``: one model module per device kind, registered in :data:`DEVICE_CLASSES`."""

from __future__ import annotations

from collections.abc import Iterator

from pyvirt.model.devices.base import DEVICE_CLASSES, DEVICE_ORDER, Address, Device, register_device
from pyvirt.model.devices.chardev import Channel, Chardev, Console, Parallel, Serial
from pyvirt.model.devices.controller import Controller
from pyvirt.model.devices.disk import Disk, DiskHost
from pyvirt.model.devices.filesystem import Filesystem
from pyvirt.model.devices.graphics import Graphics, Listen
from pyvirt.model.devices.hostdev import Hostdev
from pyvirt.model.devices.interface import Interface
from pyvirt.model.devices.memory import MemoryDevice
from pyvirt.model.devices.misc import Hub, Input, Memballoon, Panic, Rng
from pyvirt.model.devices.sound import Audio, Sound
from pyvirt.model.devices.tpm import Tpm
from pyvirt.model.devices.video import Video
from pyvirt.model.devices.watchdog import Watchdog
from pyvirt.model.xmlmap import XmlNode, child, children, insert_element, remove_element, text

__all__ = [
    "DEVICE_CLASSES",
    "Address",
    "Audio",
    "Channel",
    "Chardev",
    "Console",
    "Controller",
    "Device",
    "Devices",
    "Disk",
    "DiskHost",
    "Filesystem",
    "Graphics",
    "Hostdev",
    "Hub",
    "Input",
    "Interface",
    "Listen",
    "Memballoon",
    "MemoryDevice",
    "Panic",
    "Parallel",
    "Rng",
    "Serial",
    "Sound",
    "Tpm",
    "Video",
    "Watchdog",
    "register_device",
]


class Devices(XmlNode):
    """``<devices>``: typed lists per kind; unknown children are kept and only warned about."""

    TAG = "devices"
    ORDER = DEVICE_ORDER

    emulator = text("emulator")
    disks = children("disk", Disk)
    controllers = children("controller", Controller)
    interfaces = children("interface", Interface)
    serials = children("serial", Serial)
    consoles = children("console", Console)
    channels = children("channel", Channel)
    graphics = children("graphics", Graphics)
    videos = children("video", Video)
    inputs = children("input", Input)
    memballoon = child("memballoon", Memballoon)
    rngs = children("rng", Rng)
    hostdevs = children("hostdev", Hostdev)
    watchdogs = children("watchdog", Watchdog)
    sounds = children("sound", Sound)
    parallels = children("parallel", Parallel)
    hubs = children("hub", Hub)
    panics = children("panic", Panic)
    memories = children("memory", MemoryDevice)
    audios = children("audio", Audio)
    filesystems = children("filesystem", Filesystem)
    tpms = children("tpm", Tpm)

    def __iter__(self) -> Iterator[Device]:
        """Every understood device, in document order."""
        for el in self.element:
            cls = DEVICE_CLASSES.get(el.tag) if isinstance(el.tag, str) else None
            if cls is not None:
                yield cls(el)

    def add(self, device: Device) -> Device:
        """Insert ``device`` after the existing devices of its kind and return it."""
        tag = str(device.element.tag)
        if tag not in DEVICE_CLASSES:
            raise TypeError(f"<{tag}> is not a device pyvirt can add")
        if device.element.getparent() is not None:
            remove_element(device.element)
        self.attach()
        insert_element(self.element, device.element, DEVICE_ORDER)
        return device

    def remove(self, device: Device) -> None:
        """Remove ``device`` (a view of one of this domain's devices).

        :raises ValueError: the device is not part of these devices
        """
        if device.element.getparent() is not self.element:
            raise ValueError(f"<{device.element.tag}> is not one of these devices")
        remove_element(device.element)
