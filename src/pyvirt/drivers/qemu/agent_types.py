"""Typed values the guest agent returns, parsed from ``qemu-ga``'s JSON replies.

Each class mirrors the part of a ``qemu-ga`` QAPI type pyvirt reads; ``from_wire`` tolerates
missing optional members (older agents, other guest OSes) and ignores unknown ones.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

#: ``guest-get-osinfo`` members in the order virsh's ``guestinfo`` prints them.
OSINFO_KEYS = (
    "id",
    "name",
    "pretty-name",
    "version",
    "version-id",
    "machine",
    "variant",
    "variant-id",
    "kernel-release",
    "kernel-version",
)


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


def _opt_int(value: object) -> int | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def _dicts(raw: object) -> list[Mapping[str, Any]]:
    return [d for d in raw if isinstance(d, Mapping)] if isinstance(raw, list) else []


@dataclass(frozen=True)
class AgentInfo:
    """``guest-info``: the agent's version and its commands (name -> enabled)."""

    version: str
    commands: dict[str, bool]

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> AgentInfo:
        """Parse ``GuestAgentInfo``."""
        cmds = {
            str(c.get("name")): bool(c.get("enabled", True))
            for c in _dicts(raw.get("supported_commands"))
        }
        return cls(str(raw.get("version", "")), cmds)


@dataclass(frozen=True)
class GuestPciAddress:
    """A PCI address as the guest sees it."""

    domain: int
    bus: int
    slot: int
    function: int

    @classmethod
    def from_wire(cls, raw: object) -> GuestPciAddress | None:
        """Parse ``GuestPCIAddress``; ``None`` when absent or incomplete."""
        if not isinstance(raw, Mapping):
            return None
        try:
            return cls(int(raw["domain"]), int(raw["bus"]), int(raw["slot"]), int(raw["function"]))
        except (KeyError, TypeError, ValueError):
            return None

    def key(self) -> tuple[int, int, int, int]:
        """``(domain, bus, slot, function)``."""
        return (self.domain, self.bus, self.slot, self.function)


@dataclass(frozen=True)
class GuestDiskAddress:
    """One disk a guest filesystem lives on (``GuestDiskAddress``).

    :ivar pci_controller: the PCI address of the disk's controller (virtio-blk: the disk)
    :ivar bus_type: ``virtio``, ``scsi``, ``ide``...
    :ivar dev: the guest's device node (``/dev/vda1``), when reported
    :ivar serial: the disk's serial number, when reported
    """

    pci_controller: GuestPciAddress | None
    bus_type: str = ""
    dev: str | None = None
    serial: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestDiskAddress:
        """Parse ``GuestDiskAddress``."""
        return cls(
            GuestPciAddress.from_wire(raw.get("pci-controller")),
            str(raw.get("bus-type", "")),
            _opt_str(raw.get("dev")) or None,
            _opt_str(raw.get("serial")) or None,
        )


@dataclass(frozen=True)
class GuestFilesystem:
    """One mounted filesystem (``guest-get-fsinfo``)."""

    name: str
    mountpoint: str
    type: str
    disks: list[GuestDiskAddress] = field(default_factory=list)
    total_bytes: int | None = None
    used_bytes: int | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestFilesystem:
        """Parse ``GuestFilesystemInfo``."""
        return cls(
            str(raw.get("name", "")),
            str(raw.get("mountpoint", "")),
            str(raw.get("type", "")),
            [GuestDiskAddress.from_wire(d) for d in _dicts(raw.get("disk"))],
            _opt_int(raw.get("total-bytes")),
            _opt_int(raw.get("used-bytes")),
        )


@dataclass(frozen=True)
class GuestIpAddress:
    """One address of a guest interface: ``type`` is ``ipv4`` or ``ipv6``."""

    address: str
    type: str
    prefix: int

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestIpAddress:
        """Parse ``GuestIpAddress``."""
        kind = "ipv6" if raw.get("ip-address-type") == "ipv6" else "ipv4"
        return cls(str(raw.get("ip-address", "")), kind, _opt_int(raw.get("prefix")) or 0)


@dataclass(frozen=True)
class GuestNetworkInterface:
    """One guest network interface (``guest-network-get-interfaces``)."""

    name: str
    hardware_address: str | None
    ip_addresses: list[GuestIpAddress]

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestNetworkInterface:
        """Parse ``GuestNetworkInterface``."""
        return cls(
            str(raw.get("name", "")),
            _opt_str(raw.get("hardware-address")),
            [GuestIpAddress.from_wire(a) for a in _dicts(raw.get("ip-addresses"))],
        )


@dataclass(frozen=True)
class GuestUser:
    """One logged-in user (``guest-get-users``); ``login_time`` in seconds since the epoch."""

    user: str
    login_time: float
    domain: str | None = None

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestUser:
        """Parse ``GuestUser``."""
        try:
            login = float(raw.get("login-time", 0))
        except (TypeError, ValueError):
            login = 0.0
        return cls(str(raw.get("user", "")), login, _opt_str(raw.get("domain")) or None)


@dataclass(frozen=True)
class GuestOsInfo:
    """``guest-get-osinfo``: the members the agent reported, by their wire names."""

    values: dict[str, str]

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestOsInfo:
        """Parse ``GuestOSInfo`` (every member is optional)."""
        return cls({k: str(raw[k]) for k in OSINFO_KEYS if k in raw})

    def items(self) -> Iterator[tuple[str, str]]:
        """The reported members in :data:`OSINFO_KEYS` order."""
        for key in OSINFO_KEYS:
            if key in self.values:
                yield key, self.values[key]


@dataclass(frozen=True)
class GuestTimezone:
    """``guest-get-timezone``: the zone name (if known) and the offset from UTC in seconds."""

    zone: str | None
    offset: int

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> GuestTimezone:
        """Parse ``GuestTimezone``."""
        return cls(_opt_str(raw.get("zone")) or None, _opt_int(raw.get("offset")) or 0)
