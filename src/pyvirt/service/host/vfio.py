"""``nodedev-detach``, ``nodedev-reattach``, ``nodedev-reset``: a host PCI function handed to
``vfio-pci`` and back (the sysfs steps are :mod:`pyvirt.host.vfio`)."""

from __future__ import annotations

import contextlib

from pyvirt.errors import InvalidConfigError
from pyvirt.host import vfio
from pyvirt.host.nodedev import PciAddress
from pyvirt.service.host.nodedev import NodeDeviceManager

__all__ = ["detach", "reattach", "reset"]


def _address(mgr: NodeDeviceManager, name: str) -> PciAddress:
    """The PCI address of node device ``name`` (``pci_0000_03_00_0``, or ``0000:03:00.0``).

    :raises NotFoundError: no such device
    :raises InvalidConfigError: it is not a PCI device
    """
    with contextlib.suppress(ValueError):
        name = PciAddress.parse(name).nodedev_name
    dev = mgr.get(name)
    if dev.pci is None:
        raise InvalidConfigError(
            f"device '{name}' is not a PCI device",
            hint="only PCI devices can be detached ('nodedev-list --cap pci' lists them)",
        )
    return dev.pci.address


def detach(mgr: NodeDeviceManager, name: str) -> str | None:
    """Bind the device to vfio-pci; returns the host driver it had."""
    return vfio.detach(mgr.root, _address(mgr, name))


def reattach(mgr: NodeDeviceManager, name: str) -> str | None:
    """Give the device back to its host driver; returns that driver."""
    return vfio.reattach(mgr.root, _address(mgr, name))


def reset(mgr: NodeDeviceManager, name: str) -> None:
    """Reset the (detached) device."""
    vfio.reset(mgr.root, _address(mgr, name))
