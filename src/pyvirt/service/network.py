"""Virtual networks (``net-*``) and domain NICs (``attach-interface``, ``domif*``).

:class:`NetworkManager` is what :attr:`pyvirt.service.connection.Connection.networks` returns.
Preconditions and user-facing messages live here; the host pieces (bridge, dnsmasq, nftables)
are the backends in :mod:`pyvirt.network.backends`.

Locking: ``RUN/locks/networks.lock`` guards the network namespace (names, UUIDs, subnets,
bridge names); ``RUN/locks/network-NAME.lock`` serializes start/stop of one network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.errors import UnsupportedError
from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.model.network import Network


@dataclass(frozen=True)
class NetworkInfo:
    """What ``net-list`` and ``net-info`` show about one network."""

    name: str
    uuid: str
    active: bool
    persistent: bool
    autostart: bool
    bridge: str | None
    forward_mode: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class DhcpLease:
    """One dnsmasq lease (``net-dhcp-leases``)."""

    expiry: int
    mac: str
    ip: str
    prefix: int
    hostname: str
    client_id: str
    bridge: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class DomainNic:
    """One row of ``domiflist``."""

    target: str
    type: str
    source: str
    model: str
    mac: str


@dataclass(frozen=True)
class NicAddress:
    """One row of ``domifaddr``."""

    target: str
    mac: str
    protocol: str
    address: str


@dataclass(frozen=True)
class NicStats:
    """``domifstat`` counters, seen from the guest (the tap's rx is the guest's tx)."""

    target: str
    rx_bytes: int
    rx_packets: int
    rx_errs: int
    rx_drop: int
    tx_bytes: int
    tx_packets: int
    tx_errs: int
    tx_drop: int


class NetworkManager:
    """All network operations of one connection."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    # -- network definitions ------------------------------------------------------------
    def define_xml(self, xml: str | bytes) -> tuple[Network, list[str]]:
        """Define (or redefine) a persistent network; returns it and warnings."""
        raise UnsupportedError("net-define is not implemented yet")

    def create(self, xml: str | bytes) -> Network:
        """Create and start a transient network."""
        raise UnsupportedError("net-create is not implemented yet")

    def start(self, ident: str) -> NetworkInfo:
        """Start a defined network (bridge, addresses, dnsmasq, firewall)."""
        raise UnsupportedError("net-start is not implemented yet")

    def destroy(self, ident: str) -> None:
        """Stop a network and remove every host piece it made (also after a crash)."""
        raise UnsupportedError("net-destroy is not implemented yet")

    def undefine(self, ident: str) -> None:
        """Remove a persistent definition."""
        raise UnsupportedError("net-undefine is not implemented yet")

    def list(self, *, active: bool | None = None) -> list[NetworkInfo]:
        """Networks, filtered by state when ``active`` is given."""
        raise UnsupportedError("net-list is not implemented yet")

    def info(self, ident: str) -> NetworkInfo:
        """One network by name or UUID."""
        raise UnsupportedError("net-info is not implemented yet")

    def definition(self, ident: str, *, inactive: bool = False) -> Network:
        """The live definition while active unless ``inactive``."""
        raise UnsupportedError("net-dumpxml is not implemented yet")

    def dumpxml(self, ident: str, *, inactive: bool = False) -> str:
        """The definition as XML."""
        return self.definition(ident, inactive=inactive).to_xml()

    def autostart(self, ident: str, enabled: bool) -> None:
        """Mark a persistent network to start on first use."""
        raise UnsupportedError("net-autostart is not implemented yet")

    def dhcp_leases(self, ident: str, *, mac: str | None = None) -> list[DhcpLease]:
        """Current leases from the network's dnsmasq lease file."""
        raise UnsupportedError("net-dhcp-leases is not implemented yet")

    def update(
        self, ident: str, command: str, section: str, xml: str, *, live: bool, config: bool
    ) -> None:
        """``net-update``: add/delete/modify an ``ip-dhcp-host`` (live and/or config)."""
        raise UnsupportedError("net-update is not implemented yet")

    def ensure_default(self) -> None:
        """Define the ``default`` NAT network on first use, like libvirt."""
        raise UnsupportedError("the default network is not implemented yet")

    # -- domain NICs --------------------------------------------------------------------
    def attach_interface(
        self,
        domain: str,
        type: str,
        source: str,
        *,
        model: str | None = None,
        mac: str | None = None,
        target: str | None = None,
        live: bool = False,
        config: bool = False,
    ) -> str:
        """Add a NIC (hotplug via QMP with ``live``); returns its MAC."""
        raise UnsupportedError("attach-interface is not implemented yet")

    def detach_interface(
        self, domain: str, type: str, *, mac: str | None = None, live: bool, config: bool
    ) -> None:
        """Remove a NIC by type (and MAC when several match)."""
        raise UnsupportedError("detach-interface is not implemented yet")

    def iflist(self, domain: str, *, inactive: bool = False) -> list[DomainNic]:
        """``domiflist``."""
        raise UnsupportedError("domiflist is not implemented yet")

    def ifaddr(
        self, domain: str, *, source: str = "lease", interface: str | None = None
    ) -> list[NicAddress]:
        """``domifaddr --source lease|arp``."""
        raise UnsupportedError("domifaddr is not implemented yet")

    def ifstat(self, domain: str, interface: str) -> NicStats:
        """``domifstat`` from the tap's /sys statistics."""
        raise UnsupportedError("domifstat is not implemented yet")

    def set_link(self, domain: str, interface: str, state: str, *, config: bool = False) -> None:
        """``domif-setlink``: QMP ``set_link`` on the NIC."""
        raise UnsupportedError("domif-setlink is not implemented yet")
