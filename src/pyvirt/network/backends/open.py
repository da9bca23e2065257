"""``<forward mode='open'>``: own bridge and addresses, no firewall rules at all."""

from pyvirt.network.base import BackendInfo, NetworkBackend
from pyvirt.network.registry import register_backend


@register_backend("open")
class OpenBackend(NetworkBackend):
    """pyvirt adds no rules; the host's own firewall decides."""

    info = BackendInfo(mode="open", firewall=False, ip_forward=True)
