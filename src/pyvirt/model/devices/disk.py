"""``<disk>``: a block device (disk, cdrom, floppy, lun) backed by a file, device or volume."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import XmlNode, attr, children, flag, int_attr, text

DISK_TYPES = ("file", "block", "network", "volume", "dir", "nvme", "vhostuser")
DISK_DEVICES = ("disk", "cdrom", "floppy", "lun")
DISK_BUSES = ("ide", "sata", "scsi", "virtio", "usb", "fdc", "sd")
CACHE_MODES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
IO_MODES = ("threads", "native", "io_uring")


class DiskHost(XmlNode):
    """``<source><host name port/>``: one server of a network disk."""

    TAG = "host"
    name = attr("name")
    port = attr("port")
    transport = attr("transport")
    socket = attr("socket")


@register_device("disk")
class Disk(Device):
    """``<disk>``: ``source_path`` is the file or block device whatever the type."""

    ORDER = (
        "driver",
        "source",
        "backingStore",
        "target",
        "iotune",
        "boot",
        "readonly",
        "shareable",
        "serial",
        "wwn",
        "vendor",
        "product",
        "alias",
        "address",
    )
    #: an RBD source's snapshot and ceph.conf, read by the argv builder
    EXTRA_KNOWN = (
        "source/snapshot", "source/snapshot@name", "source/config", "source/config@file",
    )  # fmt: skip

    type = attr("type", choices=DISK_TYPES)
    device = attr("device", choices=DISK_DEVICES)
    driver_name = attr("name", "driver")
    format = attr("type", "driver")
    cache = attr("cache", "driver", choices=CACHE_MODES)
    io = attr("io", "driver", choices=IO_MODES)
    discard = attr("discard", "driver")
    detect_zeroes = attr("detect_zeroes", "driver")
    copy_on_read = attr("copy_on_read", "driver")
    error_policy = attr("error_policy", "driver")
    rerror_policy = attr("rerror_policy", "driver")
    source_file = attr("file", "source")
    source_dev = attr("dev", "source")
    source_dir = attr("dir", "source")
    source_pool = attr("pool", "source")
    source_volume = attr("volume", "source")
    source_mode = attr("mode", "source")
    source_protocol = attr("protocol", "source")
    source_name = attr("name", "source")
    source_startup_policy = attr("startupPolicy", "source")
    _hosts = children("source/host", DiskHost)
    target_dev = attr("dev", "target")
    target_bus = attr("bus", "target", choices=DISK_BUSES)
    target_tray = attr("tray", "target")
    rotation_rate = int_attr("rotation_rate", "target")
    readonly = flag("readonly")
    shareable = flag("shareable")
    boot_order = int_attr("order", "boot")
    serial = text("serial")
    wwn = text("wwn")
    vendor = text("vendor")
    product = text("product")

    @property
    def source_hosts(self) -> list[tuple[str, int | None]]:
        """``(name, port)`` of every ``<source><host>`` of a network disk."""
        out: list[tuple[str, int | None]] = []
        for host in self._hosts:
            port = host.port
            out.append((host.name or "", int(port) if port and port.isdigit() else None))
        return out

    @source_hosts.setter
    def source_hosts(self, hosts: list[tuple[str, int | None]]) -> None:
        self._hosts = [
            DiskHost(name=name, port=None if port is None else str(port)) for name, port in hosts
        ]

    @property
    def source_path(self) -> str | None:
        """The image file or block device (``source@file`` or ``source@dev``)."""
        return self.source_file if self.source_file is not None else self.source_dev

    @source_path.setter
    def source_path(self, path: str | None) -> None:
        if self.type == "block":
            self.source_dev = path
        else:
            self.source_file = path
