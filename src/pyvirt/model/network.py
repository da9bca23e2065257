"""``<network>``: a libvirt-compatible virtual network definition. Pure: no I/O.

``Network.from_xml(text)`` parses (hardened) and validates; ``to_xml()`` gives the XML back
with every element pyvirt does not understand kept verbatim (listed in ``warnings``).
Forward modes: ``nat``, ``route``, ``open``, ``bridge``, ``hostdev``; no ``<forward>`` is an
isolated network (:attr:`Network.mode` reads ``isolated`` then).
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuidlib

from pyvirt.errors import Problem
from pyvirt.model.devices.base import Address
from pyvirt.model.devices.interface import mac_problem
from pyvirt.model.xmlmap import (
    XmlDocument,
    XmlNode,
    attr,
    children,
    int_attr,
    text,
)

FORWARD_MODES = ("nat", "route", "open", "bridge", "hostdev", "private", "vepa", "passthrough")
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,15}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.+\-]{1,64}$")
OnOff = ("on", "off")


class DhcpRange(XmlNode):
    """``<dhcp><range start end/>``."""

    TAG = "range"
    start = attr("start", default="")
    end = attr("end", default="")


class DhcpHost(XmlNode):
    """``<dhcp><host mac name ip/>``: a static lease."""

    TAG = "host"
    mac = attr("mac")
    name = attr("name")
    ip = attr("ip")


class DnsForwarder(XmlNode):
    """``<dns><forwarder addr domain/>``."""

    TAG = "forwarder"
    addr = attr("addr")
    domain = attr("domain")


class DnsHost(XmlNode):
    """``<dns><host ip><hostname>..</hostname></host>``."""

    TAG = "host"
    ip = attr("ip", default="")
    EXTRA_KNOWN = ("hostname",)

    @property
    def hostnames(self) -> list[str]:
        """Every ``<hostname>`` text."""
        return [(e.text or "").strip() for e in self.element.findall("hostname")]


class ForwardInterface(XmlNode):
    """``<forward><interface dev/>``: a host interface of a bridge/direct pool."""

    TAG = "interface"
    dev = attr("dev", default="")


class ForwardPf(XmlNode):
    """``<forward><pf dev/>``: the SR-IOV physical function of a hostdev network."""

    TAG = "pf"
    dev = attr("dev", default="")


class NetworkIp(XmlNode):
    """``<ip address netmask|prefix family>`` with its optional ``<dhcp>``."""

    TAG = "ip"
    address = attr("address", default="")
    netmask = attr("netmask")
    prefix_attr = int_attr("prefix")
    family = attr("family", choices=("ipv4", "ipv6"))
    dhcp_ranges = children("dhcp/range", DhcpRange)
    dhcp_hosts = children("dhcp/host", DhcpHost)

    @property
    def prefix(self) -> int:
        """The prefix length from ``prefix`` or ``netmask`` (24 / 64 by default)."""
        if self.prefix_attr is not None:
            return self.prefix_attr
        if self.netmask:
            return ipaddress.IPv4Network(f"0.0.0.0/{self.netmask}").prefixlen
        return 64 if self.family == "ipv6" else 24

    @property
    def interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        """Address plus prefix (``192.168.122.1/24``); raises ValueError when invalid."""
        return ipaddress.ip_interface(f"{self.address}/{self.prefix}")

    @property
    def subnet(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The subnet this address is in."""
        return self.interface.network

    def add_host(self, host: DhcpHost) -> None:
        """Append a static host (creates ``<dhcp>`` when absent)."""
        self.dhcp_hosts = [*self.dhcp_hosts, host]


class Network(XmlDocument):
    """A network definition: a typed, lossless view over a ``<network>`` element tree."""

    TAG = "network"
    WHAT = "network XML"
    GENERATE_UUID = True
    ORDER = (
        "name", "uuid", "metadata", "title", "description", "forward", "bridge", "mac", "mtu",
        "domain", "dns", "ip", "route", "portgroup",
    )  # fmt: skip
    EXTRA_KNOWN = ("forward/nat", "forward/nat/port", "forward/nat/port@start",
                   "forward/nat/port@end", "forward/nat/address", "forward/nat/address@start",
                   "forward/nat/address@end")  # fmt: skip

    name = text("name", default="")
    uuid = text("uuid", default="")
    title = text("title")
    description = text("description")
    forward_mode = attr("mode", "forward", choices=FORWARD_MODES)
    forward_dev = attr("dev", "forward")
    forward_managed = attr("managed", "forward", choices=("yes", "no"))
    forward_interfaces = children("forward/interface", ForwardInterface)
    forward_pfs = children("forward/pf", ForwardPf)
    forward_addresses = children("forward/address", Address)
    bridge_name = attr("name", "bridge")
    stp = attr("stp", "bridge", choices=OnOff)
    delay = int_attr("delay", "bridge")
    mac = attr("address", "mac")
    mtu = int_attr("size", "mtu")
    domain_name = attr("name", "domain")
    domain_local_only = attr("localOnly", "domain", choices=("yes", "no"))
    dns_enable = attr("enable", "dns", choices=("yes", "no"))
    dns_forwarders = children("dns/forwarder", DnsForwarder)
    dns_hosts = children("dns/host", DnsHost)
    ips = children("ip", NetworkIp)

    @property
    def mode(self) -> str:
        """The forward mode, or ``isolated`` without ``<forward>``."""
        if self.element.find("forward") is None:
            return "isolated"
        return self.forward_mode or "nat"

    def ipv4(self) -> NetworkIp | None:
        """The first IPv4 ``<ip>``."""
        for ip in self.ips:
            if ip.family in (None, "ipv4") and ":" not in ip.address:
                return ip
        return None

    def validate(self) -> list[Problem]:
        """Every problem found in this definition (empty when valid)."""
        return check_network(self)


# --- validation -------------------------------------------------------------------------------


def _ip_problems(net: Network, ip: NetworkIp, problems: list[Problem]) -> None:
    where = ip.xpath()
    try:
        iface = ip.interface
    except ValueError:
        problems.append(Problem(where, f"address '{ip.address}' with prefix is not valid"))
        return
    if ip.netmask and ip.prefix_attr is not None:
        problems.append(Problem(where, "use either netmask or prefix, not both"))
    if iface.ip == iface.network.network_address and iface.network.prefixlen < 31:
        problems.append(Problem(where, f"address '{ip.address}' is the subnet's own address"))
    for rng in ip.dhcp_ranges:
        try:
            start, end = ipaddress.ip_address(rng.start), ipaddress.ip_address(rng.end)
        except ValueError:
            problems.append(Problem(rng.xpath(), f"range '{rng.start}'-'{rng.end}' is not valid"))
            continue
        outside = [a for a in (start, end) if a not in iface.network]
        if outside:
            problems.append(
                Problem(
                    rng.xpath(),
                    f"DHCP range {rng.start}-{rng.end} is outside the subnet {iface.network}",
                )
            )
        elif int(end) < int(start):
            problems.append(Problem(rng.xpath(), f"DHCP range ends ({end}) before it starts"))
    macs: set[str] = set()
    for host in ip.dhcp_hosts:
        if host.mac is not None:
            if not MAC_RE.match(host.mac):
                problems.append(Problem(host.xpath(), f"MAC address '{host.mac}' is not valid"))
            elif host.mac.lower() in macs:
                problems.append(Problem(host.xpath(), f"MAC address '{host.mac}' appears twice"))
            macs.add(host.mac.lower())
        if host.ip is not None:
            try:
                if ipaddress.ip_address(host.ip) not in iface.network:
                    problems.append(
                        Problem(host.xpath(), f"host IP {host.ip} is outside {iface.network}")
                    )
            except ValueError:
                problems.append(Problem(host.xpath(), f"host IP '{host.ip}' is not valid"))
        if host.mac is None and host.name is None:
            problems.append(Problem(host.xpath(), "a DHCP host needs a mac or a name"))


def _check_name_uuid(net: Network, problems: list[Problem]) -> None:
    if not net.name:
        problems.append(Problem("<name>", "name is missing"))
    elif not NAME_RE.match(net.name):
        problems.append(Problem("<name>", f"name '{net.name}' must be 1-64 of A-Z a-z 0-9 _ . + -"))
    try:
        uuidlib.UUID(net.uuid)
    except ValueError:
        problems.append(Problem("<uuid>", f"uuid '{net.uuid}' is not a valid UUID"))


def check_network(net: Network) -> list[Problem]:
    """Structural and semantic checks of a network definition."""
    problems = net.field_problems()
    if problems:
        return problems
    _check_name_uuid(net, problems)
    bridge = net.bridge_name
    if bridge is not None and not IFNAME_RE.match(bridge):
        problems.append(
            Problem(
                "<bridge>",
                f"bridge name '{bridge}' must be 1-15 characters of A-Z a-z 0-9 _ . -",
            )
        )
    if net.mac is not None and not MAC_RE.match(net.mac):
        problems.append(Problem("<mac>", f"MAC address '{net.mac}' is not valid"))
    elif net.mac is not None and mac_problem(net.mac) is not None:
        problems.append(Problem("<mac>", f"MAC address '{net.mac}' {mac_problem(net.mac)}"))
    if net.mtu is not None and not 68 <= net.mtu <= 65535:
        problems.append(Problem("<mtu>", f"mtu {net.mtu} must be within 68-65535"))
    mode = net.mode
    if mode == "bridge" and not bridge and not net.forward_dev and not net.forward_interfaces:
        problems.append(Problem("<forward>", "forward mode 'bridge' needs <bridge name='BR'/>"))
    if mode in ("bridge", "hostdev", "private", "vepa", "passthrough") and net.ips:
        problems.append(Problem("<ip>", f"forward mode '{mode}' takes no <ip>"))
    if mode == "hostdev" and not net.forward_pfs and not net.forward_addresses:
        problems.append(Problem("<forward>", "forward mode 'hostdev' needs <pf dev='...'/>"))
    subnets: list[tuple[NetworkIp, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for ip in net.ips:
        before = len(problems)
        _ip_problems(net, ip, problems)
        if len(problems) == before:
            for other, subnet in subnets:
                if subnet.overlaps(ip.subnet):
                    problems.append(
                        Problem(ip.xpath(), f"subnet {ip.subnet} overlaps {other.xpath()}")
                    )
            subnets.append((ip, ip.subnet))
    if sum(1 for ip in net.ips if ip.dhcp_ranges or ip.dhcp_hosts) > 2:
        problems.append(Problem("<ip>", "at most one <dhcp> per address family"))
    return problems
