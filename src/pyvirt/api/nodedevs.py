"""Host devices (virsh's ``nodedev-*`` verbs): PCI functions, SR-IOV PFs/VFs, network
interfaces, found in sysfs (``$PYVIRT_HOST_ROOT`` points at a copied tree).

>>> [d.name for d in conn.nodedevs.list(caps=("net",))]
['net_eth0_52_54_00_12_34_56']
>>> print(conn.nodedevs.get("computer").xml_desc())

:meth:`NodeDeviceCollection.list` returns
:class:`~pyvirt.service.host.nodedev.NodeDevice` values (``to_json()``);
:meth:`NodeDeviceCollection.get` a :class:`NodeDevice` handle.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pyvirt.errors import UnsupportedError
from pyvirt.service.host import vfio
from pyvirt.service.host.nodedev import CAPS, to_xml
from pyvirt.service.host.nodedev import NodeDevice as NodeDeviceInfo

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.host.nodedev import NodeDeviceManager

__all__ = ["CAPS", "NodeDevice", "NodeDeviceCollection", "NodeDeviceInfo"]


class NodeDeviceCollection:
    """``conn.nodedevs``: the host's devices."""

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    @property
    def _mgr(self) -> NodeDeviceManager:
        return self._service.nodedevs

    def list(self, caps: Sequence[str] = ()) -> builtins.list[NodeDeviceInfo]:
        """``nodedev-list``: devices with any of ``caps`` (all when empty), sorted by name.

        A cap is one of :data:`CAPS` (``sriov`` means PFs and VFs); an entry may hold several
        separated by commas.

        :raises InvalidConfigError: an unknown capability name
        """
        return self._mgr.list(tuple(caps))

    def get(self, name: str) -> NodeDevice:
        """One device by its node device name (``pci_0000_03_00_0``, ``computer``...).

        :raises NotFoundError: no such device
        """
        return NodeDevice(self._service, self._mgr.get(name))

    def tree(self) -> str:
        """The device tree as ``nodedev-list --tree`` prints it."""
        return self._mgr.tree()


class NodeDevice:
    """One host device, as found when it was looked up."""

    def __init__(self, service: ServiceConnection, info: NodeDeviceInfo) -> None:
        self._service = service
        self._info = info

    def __repr__(self) -> str:
        return f"<NodeDevice {self._info.name!r}>"

    @property
    def name(self) -> str:
        """The node device name."""
        return self._info.name

    @property
    def parent(self) -> str | None:
        """The parent device's name (``None`` for ``computer``)."""
        return self._info.parent

    def info(self) -> NodeDeviceInfo:
        """What sysfs said about the device (capabilities, PCI and network details)."""
        return self._info

    def xml_desc(self) -> str:
        """``nodedev-dumpxml``: libvirt's ``<device>`` XML."""
        return to_xml(self._info)

    def _this_host(self) -> ServiceConnection:
        service: ServiceConnection | None = self._service
        if service is None:  # a connection to a pyvirtd on another host
            raise UnsupportedError(
                "host devices can be detached only on the host itself",
                hint="run pyvirt on the daemon's host",
            )
        return service

    def detach(self) -> str | None:
        """``nodedev-detach``: bind this PCI device to vfio-pci (for ``<hostdev>``); returns
        the host driver it had.

        :raises UnsupportedError: the kernel has no VFIO, or the device no IOMMU group
        :raises InvalidConfigError: not a PCI device
        :raises OperationFailedError: the kernel did not bind it
        """
        return vfio.detach(self._this_host().nodedevs, self._info.name)

    def reattach(self) -> str | None:
        """``nodedev-reattach``: give this PCI device back to its host driver (returned).

        :raises UnsupportedError: the kernel has no VFIO
        """
        return vfio.reattach(self._this_host().nodedevs, self._info.name)

    def reset(self) -> None:
        """``nodedev-reset``: reset this detached PCI device.

        :raises UnsupportedError: no VFIO, or no reset method
        :raises InvalidStateError: a host driver still uses it
        """
        vfio.reset(self._this_host().nodedevs, self._info.name)
