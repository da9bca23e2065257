"""Live NIC hotplug over QMP: tap + ``netdev_add`` + ``device_add``, and the reverse.

The hotplugged NIC joins the live definition (``RUN/qemu/NAME/domain.xml``) and the network
hook's data (``hooks.json``), so its tap is removed when the domain stops like any other.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from pyvirt.errors import MonitorError

if TYPE_CHECKING:
    from pyvirt.model.devices.interface import Interface
    from pyvirt.service.domain.manager import DomainManager


def _free_index(dom_aliases: set[str], taps: set[str], uuid: str) -> int:
    from pyvirt.service.nic.hooks import tap_name

    k = 0
    while f"net{k}" in dom_aliases or tap_name(uuid, k) in taps:
        k += 1
    return k


def hotplug(dm: DomainManager, name: str, iface: Interface) -> None:
    """Plug ``iface`` into the running domain ``name``."""
    from pyvirt.drivers.qemu.argv.devices.interface import DEFAULT_MODEL, NIC_MODELS
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.service.nic import hooks as nic_hooks
    from pyvirt.service.nic import ops as nics

    name, rec = dm.running(name)
    with dm._locked(name):
        dom = dm.definition(name)
        aliases = {i.alias for i in dom.devices.interfaces if i.alias}
        taps = {i.target_dev for i in dom.devices.interfaces if i.target_dev}
        k = _free_index(aliases, taps, dom.uuid)
        iface.alias = f"net{k}"
        if iface.type != "user" and iface.target_dev is None:
            iface.target_dev = nic_hooks.tap_name(dom.uuid, k)
        entry = nic_hooks.nic_entry(iface)
        netdev: dict[str, Any] = {"type": "user", "id": f"host{iface.alias}"}
        if iface.type != "user":
            nic_hooks.plug(dm.paths, entry, owner=name)
            netdev = {
                "type": "tap",
                "id": f"host{iface.alias}",
                "ifname": iface.target_dev,
                "script": "no",
                "downscript": "no",
            }
        device = {
            "driver": NIC_MODELS[iface.model or DEFAULT_MODEL],
            "netdev": f"host{iface.alias}",
            "id": iface.alias,
            "mac": iface.mac,
        }
        try:
            with Monitor(rec.qmp_socket) as mon:
                mon.execute("netdev_add", netdev)
                try:
                    mon.execute("device_add", device)
                except MonitorError:
                    mon.execute("netdev_del", {"id": f"host{iface.alias}"})
                    raise
        except BaseException:
            if iface.type != "user":
                nic_hooks.unplug(dm.paths, entry)
            raise
        dom.devices.add(iface)
        nics._write_live(dm, name, dom)
        if iface.type != "user":
            nics._hook_nics(dm, name, lambda old: [*old, entry])


def unplug_live(dm: DomainManager, name: str, iface: Interface) -> None:
    """Unplug ``iface`` from the running domain and wait until the guest released it."""
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.service.nic import hooks as nic_hooks
    from pyvirt.service.nic import ops as nics

    name, rec = dm.running(name)
    alias = iface.alias
    if not alias:
        raise MonitorError(f"interface {iface.mac} of domain '{name}' has no alias")
    with dm._locked(name):
        with Monitor(rec.qmp_socket) as mon:
            mon.execute("device_del", {"id": alias})

            def gone() -> bool:
                items = mon.execute("qom-list", {"path": "/machine/peripheral"})
                return all(item.get("name") != alias for item in items)

            nics.wait_gone(gone, f"unplugging interface '{alias}' of domain '{name}'")
            # QEMU may already have dropped the backend with the device
            with contextlib.suppress(MonitorError):
                mon.execute("netdev_del", {"id": f"host{alias}"})
        entry = nic_hooks.nic_entry(iface)
        if iface.type != "user":
            nic_hooks.unplug(dm.paths, entry)
            nics._hook_nics(dm, name, lambda old: [n for n in old if n.get("tap") != entry["tap"]])
        dom = dm.definition(name)
        for cand in dom.devices.interfaces:
            if cand.alias == alias:
                dom.devices.remove(cand)
        nics._write_live(dm, name, dom)
