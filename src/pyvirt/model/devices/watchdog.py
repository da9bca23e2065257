"""``<watchdog>``: a virtual hardware watchdog timer and what happens when it fires."""

from __future__ import annotations

from pyvirt.model.devices.base import Device, register_device
from pyvirt.model.xmlmap import attr

#: what the watchdog does when the guest stops feeding it (libvirt's values)
WATCHDOG_ACTIONS = ("reset", "shutdown", "poweroff", "pause", "none", "dump", "inject-nmi")


@register_device("watchdog")
class Watchdog(Device):
    """``<watchdog model action>``: ``i6300esb`` (PCI) or ``ib700`` (ISA)."""

    ORDER = ("alias", "address")

    model = attr("model", choices=("i6300esb", "ib700", "diag288", "itco"))
    action = attr("action", choices=WATCHDOG_ACTIONS)
