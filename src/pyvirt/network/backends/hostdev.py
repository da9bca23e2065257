"""``<forward mode='hostdev'>``: a pool of SR-IOV VFs (``<pf dev>`` or ``<address>`` list).

Starting the network builds nothing on the host; it checks that the pool exists (the PF is an
SR-IOV physical function with VFs enabled, or each listed function exists), so a domain start
fails early with a clear message. VFs are handed out per domain NIC by the ``hostdev``
lifecycle hook (:mod:`pyvirt.service.nic.hostdev`, allocations in :mod:`pyvirt.network.sriov`).
"""

from __future__ import annotations

from pathlib import Path

from pyvirt.errors import InvalidStateError
from pyvirt.host import nodedev
from pyvirt.host.nodedev import PciAddress
from pyvirt.model.network import Network
from pyvirt.network import sriov
from pyvirt.network.base import BackendInfo, NetworkBackend, StartContext
from pyvirt.network.registry import register_backend
from pyvirt.network.runtime import NetRecord

HOST_ROOT = Path("/")


def pool_of(net: Network, root: Path = HOST_ROOT) -> list[PciAddress]:
    """The functions of ``net``'s pool, checked against sysfs under ``root``.

    :raises InvalidConfigError: a PF is missing or has no VFs
    :raises InvalidStateError: a listed function does not exist on this host
    """
    listed: list[PciAddress] = []
    for a in net.forward_addresses:
        addr = PciAddress(
            int(a.domain or "0", 0), int(a.bus or "0", 0), int(a.slot or "0", 0),
            int(a.function or "0", 0),
        )  # fmt: skip
        if nodedev.read_pci_device(root, addr) is None:
            raise InvalidStateError(
                f"network '{net.name}': PCI function {addr} does not exist on this host",
                hint="list host devices with 'nodedev-list --cap pci'",
            )
        listed.append(addr)
    return sriov.pool_addresses(root, [pf.dev for pf in net.forward_pfs], listed, network=net.name)


@register_backend("hostdev")
class HostdevBackend(NetworkBackend):
    """No bridge, no addresses, no firewall: only a checked pool of VFs."""

    info = BackendInfo(mode="hostdev", makes_bridge=False, addresses=False, dhcp=False,
                       firewall=False)  # fmt: skip

    def start(self, net: Network, rec: NetRecord, ctx: StartContext) -> None:
        pool_of(net)
        rec.bridge = None
        rec.bridge_created = False
