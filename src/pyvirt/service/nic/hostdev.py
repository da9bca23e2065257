"""The ``hostdev`` lifecycle hook: SR-IOV VFs and PCI functions passed through with VFIO.

What it does for a starting domain (see :mod:`pyvirt.service.hooks` for the phases):

``compile``
    refuses at once when the host has no VFIO (naming the missing kernel feature); gives each
    ``<interface type='network'>`` on a ``<forward mode='hostdev'>`` network a free VF of the
    network's pool (:class:`pyvirt.network.sriov.VfPool`, recorded under ``RUN/sriov``) and
    rewrites that NIC in the live definition to ``<interface type='hostdev'>`` with the VF's
    ``<source><address>``, so the argv builder emits ``vfio-pci,host=DDDD:BB:SS.F``. The plan is
    not cached when a VF was allocated (the choice belongs to this start).
``before_launch``
    checks VFIO and each function's IOMMU group again (plans of static ``<hostdev>`` are cached),
    programs the VF's MAC/VLAN through its PF, and binds ``managed='yes'`` functions to
    ``vfio-pci``. On failure it undoes its own work, since ``after_stop`` is not called for it.
``after_stop``
    gives functions back to their previous driver and frees the VFs.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import NotFoundError, OperationFailedError, PyvirtError, UnsupportedError
from pyvirt.host import nodedev
from pyvirt.host.nodedev import PciAddress
from pyvirt.network import sriov
from pyvirt.service import hooks
from pyvirt.state.locks import file_lock

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.model.network import Network
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the hostdev hook is
# imported at every start; the network manager, pyvirt.model and the argv builder load only when a
# domain has hostdev NICs or devices.

#: sysfs and /dev are read below this root (tests point it at a fake tree)
HOST_ROOT = Path("/")
#: where pyvirt before the versioned hook data recorded the functions it bound to vfio-pci
#: (now ``bound`` in the hook's data); read for domains started by it
BOUND_FILE = "hostdev.json"


def vf_pool(mgr: DomainManager) -> sriov.VfPool:
    """The VF allocation records of ``mgr``'s state root."""

    def busy(domain: str) -> bool:
        if mgr.record(domain) is not None:
            return True

        try:
            with file_lock(mgr.paths.lock_dir / f"domain-{domain}.lock", timeout=0):
                return False
        except OperationFailedError:
            return True

    return sriov.VfPool(mgr.paths.run / "sriov", mgr.paths.lock_dir, busy=busy)


def _hostdev_network(mgr: DomainManager, name: str | None) -> Network | None:
    """The definition of network ``name`` when its forward mode is ``hostdev``."""
    if not name:
        return None
    try:
        from pyvirt.service.network.networks import NetworkManager  # lazy

        net = NetworkManager(mgr.paths).definition(name)
    except (NotFoundError, UnsupportedError, ImportError):
        return None
    return net if net.forward_mode == "hostdev" else None


def _active_hostdev_network(mgr: DomainManager, name: str | None) -> Network | None:
    """Like :func:`_hostdev_network`, but the network must be active (or autostart).

    :raises InvalidStateError: the hostdev network is not active
    """
    net = _hostdev_network(mgr, name)
    if net is None:
        return None
    from pyvirt.service.network.networks import NetworkManager  # lazy

    return NetworkManager(mgr.paths).ensure_active(net.name)


def _pci(addr: Any) -> PciAddress | None:
    from pyvirt.drivers.qemu.argv.builder import parse_num  # lazy

    if addr is None or addr.slot is None:
        return None
    return PciAddress(
        parse_num(addr.domain), parse_num(addr.bus), parse_num(addr.slot), parse_num(addr.function)
    )


def _vlan(element: Any) -> int | None:
    tag = element.find("vlan/tag")
    return int(tag.get("id")) if tag is not None and tag.get("id", "").isdigit() else None


def _mac() -> str:
    return "52:54:00:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def allocate_vfs(
    mgr: DomainManager,
    dom: Domain,
    *,
    root: Path = HOST_ROOT,
    networks: Callable[[str | None], Network | None] | None = None,
) -> list[dict[str, Any]]:
    """Give each NIC on a hostdev network a VF and rewrite it as ``type='hostdev'``.

    :param networks: looks up a hostdev network by name (default: the connection's networks)

    :returns: one JSON-able entry per VFIO function of the domain (allocated VFs, static
        ``<interface type='hostdev'>`` and ``<hostdev type='pci'>``)
    :raises OperationFailedError: a network's pool is exhausted
    """
    from pyvirt.model.devices.base import Address  # lazy

    pool = vf_pool(mgr)
    pool.release(dom.name)  # the domain is not running: whatever it held is stale
    entries: list[dict[str, Any]] = []
    for index, iface in enumerate(dom.devices.interfaces):
        if iface.type == "network":
            lookup = networks or (lambda name: _active_hostdev_network(mgr, name))
            net = lookup(iface.source_network)
            if net is None:
                continue
            candidates = sriov.pool_addresses(
                root,
                [pf.dev for pf in net.forward_pfs],
                [a for a in (_pci(x) for x in net.forward_addresses) if a is not None],
                network=net.name,
            )
            mac = iface.mac or _mac()
            addr = pool.allocate(candidates, domain=dom.name, network=net.name, nic=index, mac=mac)
            vlan = _vlan(iface.element) or _vlan(net.element)
            iface.type = "hostdev"
            iface.source_network = None
            iface.mac = mac
            iface.managed = net.forward_managed != "no"
            iface.source_address = Address(
                type="pci",
                domain=f"0x{addr.domain:04x}",
                bus=f"0x{addr.bus:02x}",
                slot=f"0x{addr.slot:02x}",
                function=f"0x{addr.function:x}",
            )
            entries.append(_entry(root, addr, mac, vlan, bool(iface.managed), net.name))
        elif iface.type == "hostdev":
            static = _pci(iface.source_address)
            if static is not None:
                entry = _entry(root, static, iface.mac, _vlan(iface.element), bool(iface.managed))
                entries.append(entry)
    for hd in dom.devices.hostdevs:
        if hd.type == "pci" and hd.pci_slot is not None:
            addr = PciAddress(
                hd.pci_domain or 0, hd.pci_bus or 0, hd.pci_slot, hd.pci_function or 0
            )
            entries.append(_entry(root, addr, None, None, hd.managed))
    return entries


def _entry(
    root: Path,
    addr: PciAddress,
    mac: str | None,
    vlan: int | None,
    managed: bool,
    network: str | None = None,
) -> dict[str, Any]:
    pf_ifname: str | None = None
    vf: int | None = None
    found = nodedev.vf_index(root, addr)
    if found is not None:
        pf = nodedev.read_pci_device(root, found[0])
        pf_ifname = pf.net[0] if pf is not None and pf.net else None
        vf = found[1]
    return {
        "address": str(addr),
        "mac": mac,
        "vlan": vlan,
        "managed": managed,
        "network": network,
        "pf": pf_ifname,
        "vf": vf,
    }


def refuse_without_vfio(dom_name: str, root: Path = HOST_ROOT) -> None:
    """:raises UnsupportedError: naming the missing kernel feature when VFIO is unusable"""
    problem = sriov.vfio_problem(root)
    if problem is not None:
        raise UnsupportedError(
            f"domain '{dom_name}' needs PCI passthrough: {problem}",
            hint="load vfio-pci on a kernel with CONFIG_VFIO_PCI and an IOMMU, "
            "or use a virtio NIC on a bridged network instead",
        )


class HostdevHook:
    """VF allocation, VFIO binding and VF MAC/VLAN setup around a domain's QEMU."""

    name = "hostdev"

    def compile(self, mgr: DomainManager, dom: Domain) -> hooks.HookResult | None:
        """Refuse without VFIO; allocate VFs and rewrite hostdev-network NICs."""
        if not _needs_vfio(mgr, dom):
            return None
        refuse_without_vfio(dom.name)
        entries = allocate_vfs(mgr, dom)
        dynamic = any(e["network"] for e in entries)
        return hooks.HookResult(data={"functions": entries}, cacheable=not dynamic)

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Check VFIO and IOMMU groups; set VF MAC/VLAN; bind managed functions."""
        bound: list[dict[str, Any]] = []
        try:
            refuse_without_vfio(name)
            for entry in data.get("functions", []):
                problem = sriov.iommu_problem(HOST_ROOT, PciAddress.parse(entry["address"]))
                if problem is not None:
                    raise UnsupportedError(f"domain '{name}' cannot use {problem}")
            for entry in data.get("functions", []):
                if entry["pf"] is not None and (entry["mac"] or entry["vlan"] is not None):
                    sriov.set_vf_mac_vlan(entry["pf"], entry["vf"], entry["mac"], entry["vlan"])
                if entry["managed"]:
                    addr = PciAddress.parse(entry["address"])
                    previous = sriov.bind_vfio(HOST_ROOT, addr)
                    bound.append({"address": entry["address"], "previous_driver": previous})
                    _save_bound(mgr, name, bound)
        except BaseException:
            _unbind(bound)
            vf_pool(mgr).release(name)
            raise

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do once QEMU runs."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Give managed functions back to their driver and free the domain's VFs."""
        bound = data.get("bound")
        if not isinstance(bound, list):  # a domain started by an older pyvirt
            try:
                bound = json.loads((mgr.paths.domain_run_dir(name) / BOUND_FILE).read_text())
            except (OSError, ValueError):
                bound = []
        _unbind(bound)
        vf_pool(mgr).release(name)


def _save_bound(mgr: DomainManager, name: str, bound: list[dict[str, Any]]) -> None:
    """Record the functions bound to vfio-pci so far in the hook's data (for after_stop)."""
    saved = [dict(item) for item in bound]
    mgr.rundir(name).update_hooks("hostdev", lambda old: {**old, "bound": saved})


def _unbind(bound: list[dict[str, Any]]) -> None:
    """Give each function bound to vfio-pci by us back to its previous driver."""
    for item in bound:
        if item.get("previous_driver") == "vfio-pci":
            continue
        try:
            addr = PciAddress.parse(item["address"])
            sriov.unbind_vfio(HOST_ROOT, addr, item.get("previous_driver"))
        except (PyvirtError, ValueError, KeyError):
            continue


def _needs_vfio(mgr: DomainManager, dom: Domain) -> bool:
    if any(h.type == "pci" for h in dom.devices.hostdevs):
        return True
    for iface in dom.devices.interfaces:
        if iface.type == "hostdev":
            return True
        if iface.type == "network" and _hostdev_network(mgr, iface.source_network) is not None:
            return True
    return False


hooks.register_hook(HostdevHook())
