""":class:`virNetwork`: libvirt-python's network object over
:class:`pyvirt.api.networks.Network`."""

from __future__ import annotations

import uuid as uuidlib
from typing import TYPE_CHECKING, Any

from pyvirt.libvirt import constants as c
from pyvirt.libvirt.errors import error, wrap

if TYPE_CHECKING:
    from pyvirt.api.networks import Network
    from pyvirt.libvirt.connect import virConnect

__all__ = ["virNetwork"]

_COMMANDS = {
    c.VIR_NETWORK_UPDATE_COMMAND_MODIFY: "modify", c.VIR_NETWORK_UPDATE_COMMAND_DELETE: "delete",
    c.VIR_NETWORK_UPDATE_COMMAND_ADD_LAST: "add-last",
    c.VIR_NETWORK_UPDATE_COMMAND_ADD_FIRST: "add-first",
}  # fmt: skip
_SECTIONS = {
    c.VIR_NETWORK_SECTION_BRIDGE: "bridge", c.VIR_NETWORK_SECTION_DOMAIN: "domain",
    c.VIR_NETWORK_SECTION_IP: "ip", c.VIR_NETWORK_SECTION_IP_DHCP_HOST: "ip-dhcp-host",
    c.VIR_NETWORK_SECTION_IP_DHCP_RANGE: "ip-dhcp-range", c.VIR_NETWORK_SECTION_FORWARD: "forward",
    c.VIR_NETWORK_SECTION_FORWARD_INTERFACE: "forward-interface",
    c.VIR_NETWORK_SECTION_FORWARD_PF: "forward-pf", c.VIR_NETWORK_SECTION_PORTGROUP: "portgroup",
    c.VIR_NETWORK_SECTION_DNS_HOST: "dns-host", c.VIR_NETWORK_SECTION_DNS_TXT: "dns-txt",
    c.VIR_NETWORK_SECTION_DNS_SRV: "dns-srv",
}  # fmt: skip


class virNetwork:
    """One virtual network; get it from ``conn.networkLookupByName(name)``."""

    def __init__(self, conn: virConnect, net: Network) -> None:
        self._conn = conn
        self._net = net

    def __repr__(self) -> str:
        return f"<virNetwork {self._net.name!r}>"

    def connect(self) -> virConnect:
        """The connection."""
        return self._conn

    def name(self) -> str:
        """The name."""
        return self._net.name

    @wrap("network")
    def UUIDString(self) -> str:
        """The UUID as text."""
        return self._net.uuid

    def UUID(self) -> bytes:
        """The UUID as 16 bytes."""
        return uuidlib.UUID(self.UUIDString()).bytes

    @wrap("network")
    def XMLDesc(self, flags: int = 0) -> str:
        """The definition (``VIR_NETWORK_XML_INACTIVE``: the persistent one)."""
        return self._net.xml_desc(inactive=bool(flags & c.VIR_NETWORK_XML_INACTIVE))

    @wrap("network")
    def bridgeName(self) -> str:
        """The host bridge's name."""
        bridge = self._net.info().bridge
        if not bridge:
            raise error(
                c.VIR_ERR_OPERATION_INVALID, f"network '{self.name()}' has no bridge", "network"
            )
        return bridge

    @wrap("network")
    def isActive(self) -> int:
        """1 while it runs."""
        return int(self._net.info().active)

    @wrap("network")
    def isPersistent(self) -> int:
        """1 when it has a persistent definition."""
        return int(self._net.info().persistent)

    @wrap("network")
    def autostart(self) -> int:
        """1 when it starts with the host."""
        return int(self._net.info().autostart)

    @wrap("network", writes=True)
    def setAutostart(self, autostart: int) -> int:
        """Start it (or not) with the host."""
        self._net.set_autostart(bool(autostart))
        return 0

    @wrap("network", writes=True)
    def create(self) -> int:
        """Start it."""
        self._net.start()
        return 0

    @wrap("network", writes=True)
    def destroy(self) -> int:
        """Stop it."""
        self._net.destroy()
        return 0

    @wrap("network", writes=True)
    def undefine(self) -> int:
        """Remove its persistent definition."""
        self._net.undefine()
        return 0

    @wrap("network", xml=True, writes=True)
    def update(
        self,
        command: int,
        section: int,
        parentIndex: int,
        xml: str,
        flags: int = 0,
    ) -> int:
        """Change one part of the live network and/or its definition (``net-update``)."""
        if command not in _COMMANDS or section not in _SECTIONS:
            raise error(
                c.VIR_ERR_ARGUMENT_UNSUPPORTED,
                f"network update command {command} of section {section}",
                "network",
            )
        self._net.update(
            _COMMANDS[command], _SECTIONS[section], xml,
            live=bool(flags & c.VIR_NETWORK_UPDATE_AFFECT_LIVE),
            config=bool(flags & c.VIR_NETWORK_UPDATE_AFFECT_CONFIG),
        )  # fmt: skip
        return 0

    @wrap("network")
    def DHCPLeases(self, mac: str | None = None, flags: int = 0) -> list[dict[str, Any]]:
        """The DHCP leases (of one MAC address), as libvirt-python's dicts; none while the
        network is inactive (as libvirt)."""
        if not self._net.info().active:
            return []
        return [
            {
                "iface": lease.bridge,
                "expirytime": lease.expiry,
                "type": c.VIR_IP_ADDR_TYPE_IPV6 if ":" in lease.ip else c.VIR_IP_ADDR_TYPE_IPV4,
                "mac": lease.mac,
                "iaid": None,
                "ipaddr": lease.ip,
                "prefix": lease.prefix,
                "hostname": lease.hostname or None,
                "clientid": lease.client_id or None,
            }
            for lease in self._net.dhcp_leases(mac=mac)
        ]
