"""``net-update``: change a network's static DHCP hosts live (dnsmasq reload) and/or in its
persistent definition, without restarting it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError, UnsupportedError
from pyvirt.model.network import MAC_RE, DhcpHost
from pyvirt.model.xmlmap import parse_xml
from pyvirt.network import dnsmasq
from pyvirt.state.atomic import atomic_write

if TYPE_CHECKING:
    from pyvirt.model.network import Network
    from pyvirt.service.network.networks import NetworkManager

COMMANDS = ("add", "add-last", "add-first", "delete", "modify")
SECTIONS = ("ip-dhcp-host",)


def _parse_host(xml: str) -> tuple[str | None, str | None, str | None]:

    el = parse_xml(xml, what="ip-dhcp-host XML")
    if el.tag != "host":
        raise InvalidConfigError("net-update ip-dhcp-host needs a <host mac=... ip=.../> element")
    host = DhcpHost(el)
    if host.mac is not None and not MAC_RE.match(host.mac):
        raise InvalidConfigError(f"MAC address '{host.mac}' is not valid")
    if host.mac is None and host.name is None:
        raise InvalidConfigError("a DHCP host needs a mac or a name")
    return (host.mac.lower() if host.mac else None), host.name, host.ip


def _change(net: Network, command: str, xml: str) -> None:
    mac, name, ip = _parse_host(xml)
    target = None
    for cand in net.ips:
        if cand.dhcp_ranges or cand.dhcp_hosts:
            target = cand
            break
    if target is None:
        raise InvalidStateError(f"network '{net.name}' has no <dhcp> section to update")

    def same(h: DhcpHost) -> bool:
        return (mac is not None and (h.mac or "").lower() == mac) or (
            mac is None and h.name == name
        )

    hosts = target.dhcp_hosts
    found = [h for h in hosts if same(h)]
    if command.startswith("add"):
        if found:
            raise InvalidConfigError(
                f"network '{net.name}' already has a DHCP host with MAC {mac or name}",
                hint="use 'modify' to change it",
            )
        if ip is not None and any(h.ip == ip for h in hosts):
            raise InvalidConfigError(f"network '{net.name}' already has a DHCP host with IP {ip}")
        new = DhcpHost(mac=mac, name=name, ip=ip)
        target.dhcp_hosts = [new, *hosts] if command == "add-first" else [*hosts, new]
    elif command == "delete":
        if not found:
            raise NotFoundError(f"network '{net.name}' has no DHCP host {mac or name}")
        target.dhcp_hosts = [h for h in hosts if not same(h)]
    else:
        if not found:
            raise NotFoundError(f"network '{net.name}' has no DHCP host {mac or name}")
        found[0].name, found[0].ip = name, ip
    problems = net.validate()
    if problems:
        raise InvalidConfigError(problems=problems)


def apply_update(
    mgr: NetworkManager, name: str, command: str, section: str, xml: str, *, live: bool,
    config: bool,
) -> None:  # fmt: skip
    """Apply one update (caller holds the namespace lock); neither flag means current state."""
    if command not in COMMANDS:
        raise InvalidConfigError(
            f"net-update command '{command}' is not one of {', '.join(COMMANDS)}"
        )
    if section not in SECTIONS:
        raise UnsupportedError(
            f"net-update section '{section}' is not supported", hint="use ip-dhcp-host"
        )
    active = mgr.is_active(name)
    persistent = mgr.paths.network_xml(name).exists()
    if not live and not config:
        live, config = active, not active
    if live and not active:
        raise InvalidStateError(f"network '{name}' is not active; use --config")
    if config and not persistent:
        raise InvalidStateError(f"network '{name}' is transient; use --live")
    changes: list[tuple[str, Network]] = []
    if config:
        net = mgr.definition(name, inactive=True)
        _change(net, command, xml)
        changes.append(("config", net))
    if live:
        net = mgr.definition(name)
        _change(net, command, xml)
        changes.append(("live", net))
    for kind, net in changes:
        if kind == "config":
            atomic_write(mgr.paths.network_xml(name), net.to_xml().encode())
        else:
            atomic_write(mgr.paths.network_run_root / f"{name}.xml", net.to_xml().encode())
            dnsmasq.reload_hosts(net, dnsmasq.Files(mgr.paths.network_run_dir(name)))
