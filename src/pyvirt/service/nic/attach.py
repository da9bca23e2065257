"""Domain NIC attach and detach (virsh ``attach-interface``/``detach-interface``): the
definition with ``--config``, QMP hotplug (:mod:`pyvirt.service.nic.hotplug`) with ``--live``.

``--live/--config/--current/--persistent`` follow the one rule of
:mod:`pyvirt.service.domain.affect`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.devices.interface import NIC_MODELS
from pyvirt.errors import AlreadyExistsError, InvalidConfigError, NotFoundError
from pyvirt.model.devices.interface import Interface
from pyvirt.network import mac as macs
from pyvirt.service.domain.manager import DomainManager
from pyvirt.service.nic.hotplug import hotplug, unplug_live
from pyvirt.service.nic.ops import all_macs

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.affect import Affect
    from pyvirt.service.network.networks import NetworkManager

ATTACH_TYPES = ("network", "bridge", "ethernet", "user")


def _affect(
    dm: DomainManager, name: str, *, live: bool, config: bool, current: bool, persistent: bool
) -> Affect:
    with dm.locked(name):
        return dm.affect(name, live=live, config=config, current=current, persistent=persistent)


def _new_iface(
    type: str, source: str, model: str | None, mac: str, target: str | None
) -> Interface:
    iface = Interface(type=type, mac=mac)
    if type == "network":
        iface.source_network = source
    elif type == "bridge":
        iface.source_bridge = source
    if model:
        iface.model = model
    if target:
        iface.target_dev = target
    return iface


def attach(
    nets: NetworkManager, domain: str, type: str, source: str, *, model: str | None,
    mac: str | None, target: str | None, live: bool = False, config: bool = False,
    current: bool = False, persistent: bool = False,
) -> str:  # fmt: skip
    """Add a NIC live (hotplug), to the persistent definition, or both; returns its MAC.

    :param persistent: virsh's ``--persistent``: the definition, and live when running
    """

    if type not in ATTACH_TYPES:
        raise InvalidConfigError(
            f"interface type '{type}' cannot be attached", hint="use network, bridge or ethernet"
        )
    if model and model not in NIC_MODELS:
        raise InvalidConfigError(
            f"NIC model '{model}' is not supported", hint="use virtio, e1000, e1000e or rtl8139"
        )
    dm = DomainManager(nets.paths)
    name = dm.resolve(domain)
    scope = _affect(dm, name, live=live, config=config, current=current, persistent=persistent)
    live, config = scope.live, scope.config
    if type == "network":
        nets.resolve(source)
    if mac is not None:
        mac = macs.normalize(mac)
        if mac in all_macs(nets.paths):
            raise AlreadyExistsError(
                f"MAC address {mac} is already used by a NIC on this host",
                hint="leave --mac out to get a generated one",
            )
    else:
        mac = macs.generate(all_macs(nets.paths))
    pdom, revision = None, ""
    if config:
        pdom, revision = dm.read_config(name)
        pdom.devices.add(_new_iface(type, source, model, mac, target))
    if live:
        hotplug(dm, name, _new_iface(type, source, model, mac, target))
    if pdom is not None:
        dm.define(pdom.to_xml(), expect_revision=revision)
    return mac


def detach(
    nets: NetworkManager, domain: str, type: str, *, mac: str | None, live: bool = False,
    config: bool = False, current: bool = False, persistent: bool = False,
) -> None:  # fmt: skip
    """Remove the NIC of ``type`` (and ``mac``) live, from the definition, or both.

    :param persistent: virsh's ``--persistent``: the definition, and live when running
    """
    dm = DomainManager(nets.paths)
    name = dm.resolve(domain)
    scope = _affect(dm, name, live=live, config=config, current=current, persistent=persistent)
    live, config = scope.live, scope.config

    def pick(dom: Domain) -> Interface:
        found = [
            i
            for i in dom.devices.interfaces
            if i.type == type and (mac is None or (i.mac or "").lower() == mac.lower())
        ]
        if not found:
            raise NotFoundError(
                f"domain '{name}' has no interface of type {type}"
                + (f" with MAC {mac}" if mac else "")
            )
        if len(found) > 1:
            raise InvalidConfigError(
                f"domain '{name}' has {len(found)} interfaces of type {type}",
                hint="pick one with --mac",
            )
        return found[0]

    pdom, revision = None, ""
    if config:
        pdom, revision = dm.read_config(name)
        pdom.devices.remove(pick(pdom))
    if live:
        dom = dm.definition(name)
        unplug_live(dm, name, pick(dom))
    if pdom is not None:
        dm.define(pdom.to_xml(), expect_revision=revision)
