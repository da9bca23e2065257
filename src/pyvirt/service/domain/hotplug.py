"""What every live device hot-plug shares: the argv builder's state for the live definition,
and a free PCI slot for the new device.

Hot-plug lowers a device with the argv builder's own lowerings
(:func:`pyvirt.drivers.qemu.argv.devices.disk.device_spec`,
:func:`pyvirt.drivers.qemu.argv.devices.interface.nic_spec`) run on the live definition with
the new device added, and gives the device an explicit ``<address>`` first, so the live XML
records where it sits and starting that XML later yields the same device.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv import ArgvContext
from pyvirt.drivers.qemu.argv.builder import Build
from pyvirt.errors import UnsupportedError
from pyvirt.model import Address

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager


def build_for(mgr: DomainManager, dom: Domain) -> Build:
    """The argv builder's state for *dom* with the paths its start used."""

    ctx = ArgvContext(
        run_dir=mgr.paths.domain_run_dir(dom.name), log_dir=mgr.paths.domain_log_dir(dom.name)
    )
    return Build(dom, ctx)


def free_pci_slot(dom: Domain, mon: Monitor, what: str) -> Address:
    """An ``<address type='pci'>`` of a free hot-plug slot: the first free slot of the root
    bus of ``pc``, or an empty ``pcie-root-port`` of ``q35`` (``pcie.0`` has no hot-plug).

    :param what: the kind of device, for messages (``disk``, ``interface``)
    :raises UnsupportedError: no slot is free
    """
    buses = mon.query_pci()
    root = buses[0].devices if buses else []
    if "q35" not in (dom.os.machine or ""):
        used = {d.slot for d in root}
        for slot in range(1, 32):
            if slot not in used:
                return Address(
                    type="pci", domain="0x0000", bus="0x00", slot=f"{slot:#04x}", function="0x0"
                )
        raise UnsupportedError(f"domain '{dom.name}' has no free PCI slot for a hotplug {what}")
    for dev in root:
        if dev.bridge_devices == [] and dev.qdev_id.startswith("pci."):
            index = int(dev.qdev_id.removeprefix("pci."))
            return Address(
                type="pci", domain="0x0000", bus=f"{index:#04x}", slot="0x00", function="0x0"
            )
    raise UnsupportedError(
        f"domain '{dom.name}' has no empty PCIe root port for a hotplug {what}",
        hint="add <controller type='pci' model='pcie-root-port'/> elements to its "
        f"definition (one per {what} to hot-plug) and restart it",
    )
