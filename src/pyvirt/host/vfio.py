"""Hand a PCI function to ``vfio-pci`` and back through sysfs (``nodedev-detach``,
``nodedev-reattach``, ``nodedev-reset``).

Detach, for function ``ADDR`` under ``ROOT/sys/bus/pci``:

1. ``devices/ADDR/driver_override`` <- ``vfio-pci`` (only that driver may take it);
2. ``devices/ADDR/driver/unbind`` <- ``ADDR`` when a host driver has it;
3. ``drivers_probe`` <- ``ADDR`` (the kernel binds it to the override);
4. read ``devices/ADDR/driver`` back: it must be ``vfio-pci``.

Reattach clears the override, unbinds from ``vfio-pci`` and probes again, so the host driver
takes the function back. Reset writes ``1`` to ``devices/ADDR/reset``. Nothing is written when
the kernel has no VFIO (no ``vfio-pci`` driver, no ``vfio_pci`` module) or the function has no
IOMMU group: pyvirt refuses instead of reporting a detach that did not happen. Every write
goes through :func:`write_attr`, which the unit tests replace with a fake kernel.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.errors import (
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
    UnsupportedError,
)
from pyvirt.host.nodedev import PciAddress

__all__ = ["VFIO_DRIVER", "detach", "reattach", "reset", "vfio_available", "write_attr"]

VFIO_DRIVER = "vfio-pci"


def write_attr(path: Path, value: str) -> None:
    """Write ``value`` to the sysfs attribute ``path`` (one ``write()``, as sysfs wants).

    :raises OperationFailedError: the kernel refused it
    """
    try:
        fd = os.open(path, os.O_WRONLY)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise OperationFailedError(
            f"writing '{value.strip()}' to {path} failed: {(err.strerror or str(err)).lower()}",
            hint="detaching host devices needs root",
        ) from err


def _pci(root: Path) -> Path:
    return root / "sys/bus/pci"


def vfio_available(root: Path = Path("/")) -> bool:
    """Whether the kernel has the ``vfio-pci`` driver (loaded, or built in)."""
    return (_pci(root) / "drivers" / VFIO_DRIVER).is_dir() or (
        root / "sys/module/vfio_pci"
    ).is_dir()


def _driver(dev: Path) -> str | None:
    try:
        return os.path.basename(os.readlink(dev / "driver"))
    except OSError:
        return None


def _device(root: Path, addr: PciAddress) -> Path:
    dev = _pci(root) / "devices" / str(addr)
    if not dev.exists():
        raise NotFoundError(f"PCI device {addr} does not exist on this host")
    return dev


def _require_vfio(root: Path, addr: PciAddress, verb: str) -> None:
    if not vfio_available(root):
        raise UnsupportedError(
            f"cannot {verb} PCI device {addr}: the kernel has no VFIO (no vfio-pci driver)",
            hint="load the vfio-pci module (modprobe vfio-pci) on a kernel built with VFIO, "
            "with the IOMMU enabled (intel_iommu=on or amd_iommu=on)",
        )


def detach(root: Path, addr: PciAddress) -> str | None:
    """Bind PCI function ``addr`` to ``vfio-pci``; returns the host driver it had.

    :raises NotFoundError: no such function
    :raises UnsupportedError: no VFIO in the kernel, or the function has no IOMMU group
    :raises OperationFailedError: a write failed, or the kernel did not bind it to vfio-pci
    """
    dev = _device(root, addr)
    _require_vfio(root, addr, "detach")
    if not (dev / "iommu_group").exists():
        raise UnsupportedError(
            f"cannot detach PCI device {addr}: it has no IOMMU group, so VFIO cannot use it",
            hint="enable the IOMMU (intel_iommu=on or amd_iommu=on) and reboot",
        )
    before = _driver(dev)
    if before == VFIO_DRIVER:
        return before
    write_attr(dev / "driver_override", VFIO_DRIVER)
    if before is not None:
        write_attr(dev / "driver" / "unbind", str(addr))
    write_attr(_pci(root) / "drivers_probe", str(addr))
    now = _driver(dev)
    if now != VFIO_DRIVER:
        raise OperationFailedError(
            f"PCI device {addr} is bound to {now or 'no driver'}, not vfio-pci, after detaching",
            hint="see the kernel log (dmesg) for why vfio-pci refused it",
        )
    return before


def reattach(root: Path, addr: PciAddress) -> str | None:
    """Give PCI function ``addr`` back to its host driver; returns the driver it has now.

    :raises NotFoundError: no such function
    :raises UnsupportedError: no VFIO in the kernel
    :raises OperationFailedError: a write failed, or it stayed with vfio-pci
    """
    dev = _device(root, addr)
    _require_vfio(root, addr, "reattach")
    write_attr(dev / "driver_override", "\n")
    if _driver(dev) == VFIO_DRIVER:
        write_attr(dev / "driver" / "unbind", str(addr))
    write_attr(_pci(root) / "drivers_probe", str(addr))
    now = _driver(dev)
    if now == VFIO_DRIVER:
        raise OperationFailedError(f"PCI device {addr} is still bound to vfio-pci")
    return now


def reset(root: Path, addr: PciAddress) -> None:
    """Reset PCI function ``addr`` (it must be detached: bound to vfio-pci or no driver).

    :raises NotFoundError: no such function
    :raises UnsupportedError: no VFIO in the kernel, or the function cannot be reset
    :raises InvalidStateError: a host driver still uses it
    """
    dev = _device(root, addr)
    _require_vfio(root, addr, "reset")
    driver = _driver(dev)
    if driver not in (None, VFIO_DRIVER):
        raise InvalidStateError(
            f"PCI device {addr} is in use by the host driver {driver}",
            hint=f"detach it first: pyvirt nodedev-detach {addr.nodedev_name}",
        )
    if not (dev / "reset").exists():
        raise UnsupportedError(f"PCI device {addr} has no reset method")
    write_attr(dev / "reset", "1")
