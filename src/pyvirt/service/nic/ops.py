"""Domain NIC operations: domiflist, domifaddr, domifstat, domif-setlink, and the helpers
the NIC hook, hotplug and attach/detach (:mod:`pyvirt.service.nic.attach`) share. The API
calls them as domain verbs (:class:`pyvirt.api.domain_devices.DomainDevices`).

``--live/--config/--current/--persistent`` follow the one rule of
:mod:`pyvirt.service.domain.affect`; the live definition and the network hook's data are
written through the run directory's owner (:class:`pyvirt.drivers.qemu.rundir.RunDir`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
)
from pyvirt.service.domain import agent
from pyvirt.service.domain.manager import DomainManager
from pyvirt.service.network.types import DomainNic, NicAddress, NicStats

if TYPE_CHECKING:
    from pyvirt.model.devices.interface import Interface
    from pyvirt.model.domain import Domain
    from pyvirt.service.network.networks import NetworkManager
    from pyvirt.state.paths import StatePaths

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: netlink (pyroute2, ~150
# ms), QMP and pyvirt.model load only for the verbs that need them (``start`` imports this
# module).

HOTPLUG_TIMEOUT = 30.0


def all_macs(paths: StatePaths) -> set[str]:
    """Every NIC MAC in any definition or running domain of this host."""
    dm = DomainManager(paths)
    macs: set[str] = set()
    doms = [d for _, d in DomainManager(paths).running_definitions()]
    for name in dm.store.names():
        try:
            doms.append(dm.definition(name, inactive=True))
        except (NotFoundError, InvalidConfigError):
            continue
    for dom in doms:
        macs |= {i.mac.lower() for i in dom.devices.interfaces if i.mac}
    return macs


def check_mac_free(paths: StatePaths, mac: str, network: str, *, owner: str) -> None:
    """Refuse ``mac`` when another running domain uses it on ``network``."""
    for name, dom in DomainManager(paths).running_definitions():
        if name == owner:
            continue
        for i in dom.devices.interfaces:
            if i.type == "network" and i.source_network == network and (i.mac or "") == mac:
                raise AlreadyExistsError(
                    f"MAC address {mac} is already used by domain '{name}' on network '{network}'",
                    hint="give the interface another <mac address>, or leave it out",
                )


def save_generated_macs(mgr: DomainManager, name: str, macs: dict[int, str]) -> None:
    """Write MACs generated at start into the persistent definition (libvirt does it at define)."""
    if not mgr.store.exists(name):
        return
    dom, revision = mgr.read_config(name)
    ifaces = dom.devices.interfaces
    for idx, mac in macs.items():
        if idx < len(ifaces) and ifaces[idx].mac is None:
            ifaces[idx].mac = mac
    mgr.write_config(name, dom, revision)


def _source(iface: Interface) -> str:
    return iface.source_network or iface.source_bridge or iface.source_dev or "-"


def iflist(nets: NetworkManager, domain: str, *, inactive: bool = False) -> list[DomainNic]:
    """``domiflist`` rows."""
    dom = DomainManager(nets.paths).definition(domain, inactive=inactive)
    return [
        DomainNic(
            target=(i.target_dev if not inactive else None) or "-",
            type=i.type or "-",
            source=_source(i),
            model=i.model or "-",
            mac=i.mac or "-",
        )
        for i in dom.devices.interfaces
    ]


def _find(dom: Domain, ident: str) -> Interface:
    for i in dom.devices.interfaces:
        if ident in (i.target_dev, i.alias) or (i.mac or "").lower() == ident.lower():
            return i
    raise NotFoundError(
        f"domain '{dom.name}' has no interface '{ident}'",
        hint="use a name or MAC shown by 'domiflist'",
    )


def ifaddr(
    nets: NetworkManager, domain: str, *, source: str = "lease", interface: str | None = None
) -> list[NicAddress]:
    """Addresses of the domain's NICs from dnsmasq leases or the neighbour table."""
    from pyvirt.network import netlink  # lazy

    dm = DomainManager(nets.paths)
    name, _ = dm.running(domain)
    dom = dm.definition(name)
    ifaces = [_find(dom, interface)] if interface else dom.devices.interfaces
    out = []
    if source == "lease":
        for i in ifaces:
            if i.type != "network" or not i.source_network or not i.mac:
                continue
            for lease in nets.dhcp_leases(i.source_network, mac=i.mac):
                addr = f"{lease.ip}/{lease.prefix}"
                out.append(NicAddress(i.target_dev or "-", i.mac, "ipv4", addr))
    elif source == "arp":
        neigh = netlink.neighbours()
        for i in ifaces:
            for n in neigh:
                if i.mac and n.mac.lower() == i.mac.lower():
                    out.append(NicAddress(i.target_dev or "-", i.mac, "ipv4", f"{n.ip}/0"))
    else:
        raise InvalidConfigError(
            f"address source '{source}' is not supported", hint="use lease or arp"
        )
    return out


def ifstat(nets: NetworkManager, domain: str, interface: str) -> NicStats:
    """Counters of the NIC's tap, seen from the guest (rx and tx swapped)."""
    from pyvirt.network import netlink  # lazy

    dm = DomainManager(nets.paths)
    name, _ = dm.running(domain)
    iface = _find(dm.definition(name), interface)
    if not iface.target_dev:
        raise InvalidStateError(f"interface '{interface}' of domain '{name}' has no host device")
    s = netlink.stats(iface.target_dev)
    return NicStats(
        iface.target_dev, s["tx_bytes"], s["tx_packets"], s["tx_errors"], s["tx_dropped"],
        s["rx_bytes"], s["rx_packets"], s["rx_errors"], s["rx_dropped"],
    )  # fmt: skip


def write_live(dm: DomainManager, name: str, dom: Domain) -> None:
    """Replace the live definition (caller holds the domain lock)."""
    dm.save_live(name, dom)


def update_hook_nics(dm: DomainManager, name: str, change: Any) -> None:
    """Update the NIC list of the network hook's data (caller holds the domain lock)."""

    def section(old: dict[str, Any]) -> dict[str, Any]:
        return {**old, "nics": change(old.get("nics", []))}

    dm.rundir(name).update_hooks("network", section)


def set_link(
    nets: NetworkManager,
    domain: str,
    interface: str,
    state: str,
    *,
    live: bool = False,
    config: bool = False,
) -> None:
    """Set a NIC's link up or down (virsh ``domif-setlink``): QMP ``set_link`` live, and/or
    ``<link state>`` in the definition.

    As in virsh, ``config`` changes only the definition; without flags the running domain
    changes (the definition of a shut-off one).
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    if state not in ("up", "down"):
        raise InvalidConfigError(f"link state '{state}' is not up or down")
    dm = DomainManager(nets.paths)
    name = dm.resolve(domain)
    ident = interface
    with dm.locked(name):
        scope = dm.affect(name, live=live, config=config)
        if scope.live:
            rec = dm.record(name)
            assert rec is not None
            dom = dm.live_definition(name)
            iface = _find(dom, interface)
            if not iface.alias:
                raise InvalidStateError(f"interface '{interface}' of domain '{name}' has no alias")
            with Monitor(rec.qmp_socket) as mon:
                mon.set_link(iface.alias, state == "up")
            iface.link_state = state
            write_live(dm, name, dom)
            ident = iface.mac or interface  # the definition has no tap name
    if scope.config:
        pdom, revision = dm.read_config(name)
        _find(pdom, ident).link_state = state
        dm.define(pdom.to_xml(), expect_revision=revision)


def wait_gone(check: Any, what: str, timeout: float = HOTPLUG_TIMEOUT) -> None:
    """Poll ``check()`` until True."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise OperationFailedError(
        f"{what} did not finish within {timeout:.0f} s",
        hint="the guest must accept the unplug request (ACPI PCI hotplug)",
    )


def interface_addresses(
    mgr: DomainManager,
    ident: str,
    interface: str | None = None,
    *,
    timeout: float = agent.DEFAULT_TIMEOUT,
) -> list[NicAddress]:
    """Addresses of the guest's interfaces as the agent reports them (``domifaddr --source
    agent``): one row per address, the interface's guest name as ``target``."""
    with agent.session(mgr, ident, timeout=timeout) as ga:
        result = ga.network_get_interfaces()
    rows = []
    for nic in result:
        if interface and nic.name != interface:
            continue
        mac = nic.hardware_address or "00:00:00:00:00:00"
        for ip in nic.ip_addresses:
            rows.append(NicAddress(nic.name, mac, ip.type, f"{ip.address}/{ip.prefix}"))
    return rows
