"""``<forward mode='nat'>``: own bridge, dnsmasq, masquerade and forward rules, ip_forward."""

from pyvirt.network.base import BackendInfo, NetworkBackend
from pyvirt.network.registry import register_backend


@register_backend("nat")
class NatBackend(NetworkBackend):
    """Guests reach other networks through the host's address (masquerade)."""

    info = BackendInfo(mode="nat", ip_forward=True, needs_ip=True)
