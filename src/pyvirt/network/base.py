"""The network backend interface and the shared bridge-based implementation.

A backend's :class:`BackendInfo` says what it builds; :meth:`NetworkBackend.start` builds it,
recording each piece in the :class:`~pyvirt.network.runtime.NetRecord` *before* making it, and
:meth:`NetworkBackend.stop` removes whatever a record lists (idempotent: pieces already gone
are skipped), which is also how stale pieces of a crashed start are cleaned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.model.network import Network
from pyvirt.network import dnsmasq, firewall, netlink
from pyvirt.network.runtime import NetRecord


@dataclass(frozen=True)
class BackendInfo:
    """What a forward mode builds on the host."""

    mode: str
    makes_bridge: bool = True  # creates (and later deletes) its own bridge
    addresses: bool = True  # puts the <ip> addresses on the bridge
    dhcp: bool = True  # runs dnsmasq when the network has addresses
    firewall: bool = True  # installs the nft table for its mode
    ip_forward: bool = False  # turns on net.ipv4.ip_forward
    needs_ip: bool = False  # refuses to start without an <ip>


@dataclass
class StartContext:
    """Where the backend keeps files and how it persists its record."""

    run_dir: Path
    save: Callable[[NetRecord], None]


class NetworkBackend:
    """A bridge-based network; subclasses set :attr:`info` (and rarely override methods)."""

    info: ClassVar[BackendInfo]

    def bridge_of(self, net: Network) -> str:
        """The bridge the network's NICs join."""
        if not net.bridge_name:
            raise InvalidConfigError(f"network '{net.name}' has no bridge name")
        return net.bridge_name

    def start(self, net: Network, rec: NetRecord, ctx: StartContext) -> None:
        """Build every host piece of ``net``, recording each in ``rec`` first."""
        bridge = self.bridge_of(net)
        if self.info.needs_ip and net.ipv4() is None and not net.ips:
            raise InvalidConfigError(
                f"network '{net.name}' in mode '{self.info.mode}' needs an <ip> address"
            )
        rec.bridge = bridge
        if self.info.makes_bridge:
            if netlink.exists(bridge):
                raise InvalidStateError(
                    f"bridge '{bridge}' of network '{net.name}' is already in use on this host",
                    hint="choose another <bridge name=...> or remove the existing bridge",
                )
            rec.bridge_created = True
            ctx.save(rec)
            netlink.create_bridge(
                bridge,
                stp=net.stp != "off",
                delay=net.delay or 0,
                mtu=net.mtu,
                mac=net.mac,
            )
            if self.info.addresses:
                for ip in net.ips:
                    netlink.add_address(bridge, ip.interface)
            netlink.set_up(bridge)
        if self.info.ip_forward:
            netlink.set_ip_forward()
        if self.info.firewall:
            rec.table = firewall.table_name(net.name)
            ctx.save(rec)
            firewall.apply(net.name, self.info.mode, bridge, [ip.subnet for ip in net.ips])
        if self.info.dhcp and dnsmasq.needed(net):
            rec.dnsmasq_dir = str(ctx.run_dir)
            ctx.save(rec)
            dnsmasq.start(net, dnsmasq.Files(ctx.run_dir), bridge)

    def stop(self, rec: NetRecord) -> None:
        """Remove every piece listed in ``rec`` that still exists."""
        if rec.dnsmasq_dir:
            dnsmasq.stop(dnsmasq.Files(Path(rec.dnsmasq_dir)))
        if rec.table:
            firewall.remove(rec.name)
        for tap in rec.taps:
            netlink.delete(tap)
        if rec.bridge_created and rec.bridge:
            netlink.delete(rec.bridge)
