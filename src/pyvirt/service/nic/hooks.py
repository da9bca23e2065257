"""The ``network`` lifecycle hook: taps for a domain's NICs around its QEMU.

``compile`` gives every tap-backed ``<interface>`` (types network, bridge, ethernet) a MAC
(generated once and saved in the persistent definition, like libvirt does at define time), an
alias ``netN`` and a deterministic tap name :func:`tap_name` (``pv`` + 8 hex digits of the
domain UUID + ``n`` + index: 12 characters, under the kernel's 15). ``before_launch`` starts
networks marked autostart, refuses a MAC another running domain uses on the same network, and
creates each tap enslaved to its bridge; ``after_stop`` deletes the taps it made.

``direct`` interfaces (macvtap) get a MAC and alias the same way and a link name
:func:`macvtap_name` (``pm`` instead of ``pv``), saved as ``<target dev>``. ``before_launch``
creates the macvtap on ``<source dev>`` in the ``<source mode>`` (default vepa, as libvirt),
opens its character device and hands the fd to QEMU through :func:`pyvirt.service.hooks.pass_fd`
as fd number :func:`~pyvirt.drivers.qemu.argv.devices.interface.direct_fd` (what the argv says);
``after_stop`` deletes the link.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, InvalidStateError, UnsupportedError
from pyvirt.network import mac as macs
from pyvirt.service import hooks
from pyvirt.service.hooks import HookResult, register_hook
from pyvirt.state import qemu_user

if TYPE_CHECKING:
    from pyvirt.model.devices.interface import Interface
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.state.paths import StatePaths

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the NIC hook is imported
# at every start and in the reaper; netlink (pyroute2, ~150 ms), the network manager and the argv
# builder load only when a domain has NICs.

log = logging.getLogger(__name__)

TAP_TYPES = ("network", "bridge", "ethernet")


def tap_name(uuid: str, index: int) -> str:
    """The tap of NIC ``index`` of the domain with ``uuid``."""
    return f"pv{uuid.replace('-', '')[:8].lower()}n{index}"


def macvtap_name(uuid: str, index: int) -> str:
    """The macvtap link of NIC ``index`` of the domain with ``uuid``."""
    return f"pm{uuid.replace('-', '')[:8].lower()}n{index}"


#: libvirt's ``<source mode>`` -> the kernel's macvtap mode name
MACVTAP_MODES = {
    "vepa": "vepa",
    "bridge": "bridge",
    "private": "private",
    "passthrough": "passthru",
}


def direct_entry(dom: Domain, iface: Interface, index: int) -> dict[str, Any]:
    """The JSON data ``before_launch``/``after_stop`` need for one direct NIC."""
    from pyvirt.drivers.qemu.argv.devices.interface import direct_fd  # lazy

    if not iface.source_dev:
        raise InvalidConfigError(
            f"interface {index} of type direct of domain '{dom.name}' needs "
            "<source dev='HOST-INTERFACE'/>"
        )
    mode = iface.source_mode or "vepa"
    if mode not in MACVTAP_MODES:
        raise InvalidConfigError(
            f"interface {index} of domain '{dom.name}' has an unknown direct mode '{mode}'",
            hint="use one of " + ", ".join(MACVTAP_MODES),
        )
    if iface.target_dev is None:
        iface.target_dev = macvtap_name(dom.uuid, index)
    return {
        "tap": iface.target_dev,
        "type": "direct",
        "mac": iface.mac,
        "parent": iface.source_dev,
        "mode": MACVTAP_MODES[mode],
        "fd": direct_fd(index),
        "create": True,
    }


def plug_direct(paths: StatePaths, nic: dict[str, Any], *, owner: str) -> None:
    """Create a direct NIC's macvtap and register its open character device for QEMU."""
    from pyvirt.network import netlink  # lazy

    if not netlink.macvtap_available():
        raise UnsupportedError(
            "interface type 'direct' needs macvtap, which this kernel lacks (CONFIG_MACVTAP)",
            hint="use an interface of type network or bridge",
        )
    tap, parent = str(nic["tap"]), str(nic["parent"])
    if not netlink.exists(parent):
        raise InvalidStateError(
            f"host interface '{parent}' of a direct interface of domain '{owner}' does not exist",
            hint="fix <source dev> in the domain XML (see 'ip link' for the host's interfaces)",
        )
    if netlink.exists(tap):
        netlink.delete(tap)  # ours, left by a crash: the name is derived from the UUID
    netlink.create_macvtap(tap, parent, mode=str(nic["mode"]), mac=str(nic["mac"]))
    try:
        fd = netlink.open_macvtap(tap, paths.domain_run_dir(owner))
    except BaseException:
        netlink.delete(tap)
        raise
    hooks.pass_fd(owner, int(nic["fd"]), fd)


def nic_entry(iface: Interface) -> dict[str, Any]:
    """The JSON data ``before_launch``/``after_stop`` need for one NIC."""
    return {
        "tap": iface.target_dev,
        "type": iface.type,
        "mac": iface.mac,
        "network": iface.source_network if iface.type == "network" else None,
        "bridge": iface.source_bridge if iface.type == "bridge" else None,
        "create": iface.type != "ethernet",
        "mtu": iface.mtu,
    }


def bridge_for(paths: StatePaths, nic: dict[str, Any]) -> str | None:
    """The bridge a NIC joins (starting an autostart network); None for ethernet."""
    from pyvirt.network import netlink  # lazy
    from pyvirt.service.network.networks import NetworkManager  # lazy

    if nic["type"] == "network":
        net = NetworkManager(paths).ensure_active(str(nic["network"]))
        if net.mode == "hostdev":
            raise UnsupportedError(
                f"network '{net.name}' is a hostdev (SR-IOV) network; its NICs are not taps"
            )
        return net.bridge_name
    if nic["type"] == "bridge":
        bridge = str(nic["bridge"])
        found = netlink.link(bridge)
        if found is None or found.kind != "bridge":
            raise InvalidStateError(
                f"host bridge '{bridge}' does not exist",
                hint="create it on the host, or use an interface of type network",
            )
        return bridge
    return None


def plug(paths: StatePaths, nic: dict[str, Any], *, owner: str) -> None:
    """Create the NIC's tap and enslave it to its bridge (ethernet: check the tap exists)."""
    from pyvirt.network import netlink  # lazy
    from pyvirt.service.nic import ops as nics  # lazy

    if nic["type"] == "direct":
        plug_direct(paths, nic, owner=owner)
        return
    tap = str(nic["tap"])
    if nic["type"] == "network" and nic.get("mac"):
        nics.check_mac_free(paths, str(nic["mac"]), str(nic["network"]), owner=owner)
    bridge = bridge_for(paths, nic)
    if not nic["create"]:
        if not netlink.exists(tap):
            raise InvalidStateError(
                f"tap '{tap}' of an ethernet interface of domain '{owner}' does not exist",
                hint="create it first (ip tuntap add dev TAP mode tap) or use type network",
            )
        return
    if netlink.exists(tap):
        netlink.delete(tap)  # ours, left by a crash: the name is derived from the UUID
    qemu = qemu_user.resolve(
        paths.config
    )  # an unprivileged QEMU must own its tap (hot-plug opens it)
    tap_owner: dict[str, int] = {"uid": qemu.uid, "gid": qemu.gid} if qemu.separate else {}
    netlink.create_tap(tap, mtu=nic.get("mtu"), **tap_owner)
    try:
        if bridge is not None:
            netlink.set_master(tap, bridge)
        else:
            netlink.set_up(tap)
        if nic["type"] == "network":
            from pyvirt.service.network.networks import NetworkManager  # lazy

            NetworkManager(paths).add_tap(str(nic["network"]), tap)
    except BaseException:
        netlink.delete(tap)
        raise


def unplug(paths: StatePaths, nic: dict[str, Any]) -> None:
    """Delete a tap pyvirt made (never a pre-made ethernet tap); idempotent."""
    from pyvirt.network import netlink  # lazy

    if not nic.get("create") or not nic.get("tap"):
        return
    netlink.delete(str(nic["tap"]))
    if nic["type"] == "network":
        from pyvirt.service.network.networks import NetworkManager  # lazy

        NetworkManager(paths).add_tap(str(nic["network"]), str(nic["tap"]), remove=True)


class NicHook:
    """Taps for tap-backed NICs; see the module docstring."""

    name = "network"

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None:
        from pyvirt.service.nic import ops as nics  # lazy

        entries = []
        generated: dict[int, str] = {}
        taken: set[str] | None = None
        for i, iface in enumerate(dom.devices.interfaces):
            if iface.type not in (*TAP_TYPES, "direct"):
                continue
            if iface.mac is None:
                if taken is None:
                    taken = nics.all_macs(mgr.paths)
                iface.mac = macs.generate(taken)
                taken.add(iface.mac)
                generated[i] = iface.mac
            else:
                iface.mac = macs.normalize(iface.mac)
            if iface.alias is None:
                iface.alias = f"net{i}"
            if iface.type == "direct":
                entries.append(direct_entry(dom, iface, i))
                continue
            if iface.target_dev is None:
                if iface.type == "ethernet":
                    raise InvalidConfigError(
                        f"interface {i} of type ethernet of domain '{dom.name}' needs "
                        "<target dev='TAP'/> naming a pre-made tap"
                    )
                iface.target_dev = tap_name(dom.uuid, i)
            entries.append(nic_entry(iface))
        if generated:
            nics.save_generated_macs(mgr, dom.name, generated)
        if not entries:
            return None
        return HookResult(data={"nics": entries})

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        done: list[dict[str, Any]] = []
        try:
            for nic in data.get("nics", []):
                plug(mgr.paths, nic, owner=name)
                done.append(nic)
        except BaseException:
            for nic in done:
                unplug(mgr.paths, nic)
            raise

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        return None

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        for nic in data.get("nics", []):
            try:
                unplug(mgr.paths, nic)
            except Exception:
                log.exception("removing tap %s of domain %s failed", nic.get("tap"), name)


register_hook(NicHook())
