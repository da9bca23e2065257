"""Plain value types of the network API (no behaviour, safe to serialize)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


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

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class NicAddress:
    """One row of ``domifaddr``."""

    target: str
    mac: str
    protocol: str
    address: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class NicStats:
    """``domifstat`` counters seen from the guest (the tap's rx is the guest's tx)."""

    target: str
    rx_bytes: int
    rx_packets: int
    rx_errs: int
    rx_drop: int
    tx_bytes: int
    tx_packets: int
    tx_errs: int
    tx_drop: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)
