"""``<forward mode='bridge'>``: NICs join an existing host bridge that pyvirt never changes."""

from __future__ import annotations

from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.model.network import Network
from pyvirt.network import netlink
from pyvirt.network.base import BackendInfo, NetworkBackend, StartContext
from pyvirt.network.registry import register_backend
from pyvirt.network.runtime import NetRecord


@register_backend("bridge")
class BridgeBackend(NetworkBackend):
    """Attach to ``<bridge name='BR'/>``, which must already exist and be a bridge."""

    info = BackendInfo(mode="bridge", makes_bridge=False, addresses=False, dhcp=False,
                       firewall=False)  # fmt: skip

    def bridge_of(self, net: Network) -> str:
        if not net.bridge_name:
            raise InvalidConfigError(
                f"network '{net.name}' in mode 'bridge' needs <bridge name='BR'/>"
            )
        return net.bridge_name

    def start(self, net: Network, rec: NetRecord, ctx: StartContext) -> None:
        bridge = self.bridge_of(net)
        found = netlink.link(bridge)
        if found is None or found.kind != "bridge":
            raise InvalidStateError(
                f"host bridge '{bridge}' of network '{net.name}' does not exist",
                hint="create the bridge on the host first (or use forward mode nat)",
            )
        rec.bridge = bridge
        rec.bridge_created = False
