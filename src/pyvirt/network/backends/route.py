"""``<forward mode='route'>``: own bridge and subnet, routed by the host without NAT."""

from pyvirt.network.base import BackendInfo, NetworkBackend
from pyvirt.network.registry import register_backend


@register_backend("route")
class RouteBackend(NetworkBackend):
    """Guests are reachable from other networks by their own addresses."""

    info = BackendInfo(mode="route", ip_forward=True, needs_ip=True)
