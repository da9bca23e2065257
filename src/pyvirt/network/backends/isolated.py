"""No ``<forward>``: an isolated network; guests talk to each other and the host only."""

from pyvirt.network.base import BackendInfo, NetworkBackend
from pyvirt.network.registry import register_backend


@register_backend("isolated")
class IsolatedBackend(NetworkBackend):
    """Everything forwarded into or out of the bridge is rejected."""

    info = BackendInfo(mode="isolated")
