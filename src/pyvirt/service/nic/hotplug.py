"""Live NIC hot-plug: tap, then the backend and the device, and the reverse.

The NIC is lowered by the argv builder's own code
(:func:`pyvirt.drivers.qemu.argv.devices.interface.nic_spec`) on the live definition with the
NIC added and a free PCI slot given to it, so ``netdev_add`` and ``device_add`` get exactly
the ``-netdev`` and ``-device`` properties the same XML gets at boot. A refused device takes
its backend back out.

The hot-plugged NIC joins the live definition (``RUN/qemu/NAME/domain.xml``) and the network
hook's data (``hooks.json``), so its tap is removed when the domain stops like any other.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.devices.interface import SOCKET_TYPES, nic_spec
from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import MonitorError, UnsupportedError
from pyvirt.model.devices.interface import Interface
from pyvirt.model.xmltree import copy_element
from pyvirt.service.domain import dac
from pyvirt.service.domain.hotplug import build_for, free_pci_slot
from pyvirt.service.nic import hooks as nic_hooks
from pyvirt.service.nic import ops as nics
from pyvirt.service.nic.hooks import TAP_TYPES, tap_name

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager


#: NIC types QEMU takes live
HOTPLUG_TYPES = (*TAP_TYPES, "user", *SOCKET_TYPES)


def _free_index(dom_aliases: set[str], taps: set[str], uuid: str) -> int:
    k = 0
    while f"net{k}" in dom_aliases or tap_name(uuid, k) in taps:
        k += 1
    return k


def _copy(iface: Interface) -> Interface:
    return Interface(copy_element(iface.element))


def check_hotpluggable(iface: Interface) -> None:
    """Refuse a NIC type QEMU cannot take live (naming it).

    Tap types, ``user`` and the socket types (``server``/``client``/``mcast``/``udp``:
    ``netdev_add type=socket``) plug live; ``vhostuser`` does not (its memory must be shared
    from the start and its chardev added first): it goes into the definition for the next
    start.

    :raises UnsupportedError: another type
    """
    if iface.type not in HOTPLUG_TYPES:
        raise UnsupportedError(
            f"interface type '{iface.type}' cannot be hot-plugged",
            hint="add it to the definition (--config) and restart the domain",
        )


def hotplug(dm: DomainManager, name: str, iface: Interface) -> None:
    """Plug ``iface`` into the running domain ``name``."""
    check_hotpluggable(iface)
    needs_tap = iface.type in TAP_TYPES
    name, rec = dm.running(name)
    with dm.locked(name):
        dom = dm.definition(name)
        aliases = {i.alias for i in dom.devices.interfaces if i.alias}
        with Monitor(rec.qmp_socket, name=name) as mon:
            # the ids QEMU really has too: a live XML written before every device carried its
            # alias (an older pyvirt) names no boot NIC, and its net0 would clash
            aliases |= mon.peripheral_ids()
        taps = {i.target_dev for i in dom.devices.interfaces if i.target_dev}
        k = _free_index(aliases, taps, dom.uuid)
        iface.alias = f"net{k}"
        if needs_tap and iface.target_dev is None:
            iface.target_dev = nic_hooks.tap_name(dom.uuid, k)
        entry = nic_hooks.nic_entry(iface)
        if needs_tap:
            nic_hooks.plug(dm.paths, entry, owner=name)
        try:
            with Monitor(rec.qmp_socket, name=name) as mon:
                if iface.address is None:
                    iface.address = free_pci_slot(dom, mon, "interface")
                work, lowered = dom.copy(), _copy(iface)
                work.devices.add(lowered)
                spec = nic_spec(lowered, build_for(dm, work))
                assert spec.netdev is not None, "hot-plug of a VFIO NIC"
                dac.pass_tap(dm, mon, spec.netdev)  # an unprivileged QEMU gets the open tap
                mon.netdev_add(spec.netdev)
                try:
                    mon.device_add(spec.device)
                except MonitorError:
                    with contextlib.suppress(MonitorError):
                        mon.netdev_del(str(spec.netdev["id"]))
                    raise
        except BaseException:
            if needs_tap:
                nic_hooks.unplug(dm.paths, entry)
            raise
        dom.devices.add(iface)
        nics.write_live(dm, name, dom)
        if needs_tap:
            nics.update_hook_nics(dm, name, lambda old: [*old, entry])


def unplug_live(dm: DomainManager, name: str, iface: Interface) -> None:
    """Unplug ``iface`` from the running domain and wait until the guest released it."""
    name, rec = dm.running(name)
    alias = iface.alias
    if not alias:
        raise MonitorError(f"interface {iface.mac} of domain '{name}' has no alias")
    with dm.locked(name):
        with Monitor(rec.qmp_socket, name=name) as mon:
            mon.device_del(alias)

            def gone() -> bool:
                return alias not in mon.peripheral_ids()

            nics.wait_gone(gone, f"unplugging interface '{alias}' of domain '{name}'")
            # QEMU may already have dropped the backend with the device
            with contextlib.suppress(MonitorError):
                mon.netdev_del(f"host{alias}")
        entry = nic_hooks.nic_entry(iface)
        if iface.type in TAP_TYPES:
            nic_hooks.unplug(dm.paths, entry)
            tap = entry["tap"]
            nics.update_hook_nics(dm, name, lambda old: [n for n in old if n.get("tap") != tap])
        dom = dm.definition(name)
        for cand in dom.devices.interfaces:
            if cand.alias == alias:
                dom.devices.remove(cand)
        nics.write_live(dm, name, dom)
