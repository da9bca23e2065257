"""``<controller>``: a bus controller (ide, sata, scsi, usb, pci, virtio-serial, ...)."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr, int_attr

CONTROLLER_TYPES = (
    "ide",
    "fdc",
    "sata",
    "scsi",
    "usb",
    "pci",
    "virtio-serial",
    "ccid",
    "xenbus",
    "isa",
)


@register_device("controller")
class Controller(Device):
    """``<controller>``: ``index`` defaults to 0; ``model`` like ``virtio-scsi``."""

    ORDER = ("driver", "model", "target", "pcihole64", "alias", "address")

    type = attr("type", choices=CONTROLLER_TYPES)
    index = int_attr("index", default=0)
    model = attr("model")
    ports = int_attr("ports")
    vectors = int_attr("vectors")
    driver_queues = int_attr("queues", "driver")
    driver_iothread = int_attr("iothread", "driver")
    target_chassis = int_attr("chassis", "target")
    target_port = attr("port", "target")
    model_name = attr("name", "model")
