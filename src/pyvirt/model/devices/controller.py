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


#: USB 1 companions of an ICH9 EHCI master (they share its index and bus)
USB_COMPANION_MODELS = ("ich9-uhci1", "ich9-uhci2", "ich9-uhci3")


def is_usb_companion(ctl: Controller) -> bool:
    """A UHCI companion of an EHCI controller (by model, or by ``<master startport>``)."""
    return ctl.type == "usb" and (
        ctl.model in USB_COMPANION_MODELS or ctl.element.find("master") is not None
    )


def controller_indexes(controllers: list[Controller]) -> dict[Controller, int]:
    """The index of every controller, numbering those without one as libvirt does.

    An explicit ``index`` is kept. A PCI (or other) controller without one gets the lowest
    index of its type still free, in document order. A USB controller without one joins the
    group of the USB controller before it when that group is an ICH9 EHCI set still missing
    this model (``ich9-ehci1`` + ``ich9-uhci1..3``), else it starts a new group.
    """
    taken: dict[str, set[int]] = {}
    for c in controllers:
        if c.element.get("index") is not None:
            taken.setdefault(c.type or "", set()).add(c.index)
    out: dict[Controller, int] = {}
    groups: dict[int, set[str]] = {}  # usb index -> models in it
    last_usb: int | None = None
    ich9 = ("ich9-ehci1", *USB_COMPANION_MODELS)
    for c in controllers:
        ctype = c.type or ""
        used = taken.setdefault(ctype, set())
        if c.element.get("index") is not None:
            index = c.index
        elif (
            ctype == "usb"
            and last_usb is not None
            and c.model in ich9
            and groups.get(last_usb, set()) <= set(ich9)
            and c.model not in groups.get(last_usb, set())
        ):
            index = last_usb
        else:
            index = 0
            while index in used:
                index += 1
            used.add(index)
        out[c] = index
        if ctype == "usb":
            groups.setdefault(index, set()).add(c.model or "")
            last_usb = index
    return out
