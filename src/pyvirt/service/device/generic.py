"""``attach-device``/``detach-device`` of the device kinds that are neither disks nor NICs.

What QEMU can hot-plug is data (:data:`RULES`): a kind with a refusal reason is refused live
with that reason and accepted with ``--config``. A live device is lowered by the argv
builder's own lowering (:func:`pyvirt.drivers.qemu.argv.lowering_for`) on the live definition
with the device added, an explicit alias and (for PCI devices) an explicit free slot, so the
``-object``/``-device`` properties sent are those the same XML gets at boot, and the live XML
records where it sits.

A device to detach is found by matching: every attribute and child element the given XML has
must be equal in the candidate (``<alias>`` names it directly); no match is ``not found``,
several are ambiguous.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, MonitorError, NotFoundError, UnsupportedError

if TYPE_CHECKING:
    from lxml.etree import _Element as Element

    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.devices import Device
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (QMP, the argv builder).

#: seconds the guest gets to release a device on detach
DETACH_TIMEOUT = 30.0


@dataclass(frozen=True)
class Rule:
    """How one device kind hot-plugs: its alias prefix, and why it cannot (None: it can)."""

    prefix: str
    refuse: str | None = None


#: tag -> hot-plug rule (kinds not here are refused by attach-device altogether)
RULES: dict[str, Rule] = {
    "controller": Rule(
        "ctl", "QEMU cannot hot-plug controllers: the guest firmware and OS enumerate buses "
        "and their controllers at boot",
    ),
    "input": Rule("input"),
    "serial": Rule("serial", "QEMU cannot hot-plug serial ports (ISA devices) on x86"),
    "console": Rule("console", "QEMU cannot hot-plug consoles (serial ports) on x86"),
    "hostdev": Rule(
        "hostdev", "pyvirt does not hot-plug host devices: passing one to a running guest "
        "needs VFIO hot-plug, which is not supported yet",
    ),
    "rng": Rule("rng"),
    "watchdog": Rule("watchdog"),
}  # fmt: skip


def live_refusal(tag: str, dev: Device) -> str | None:
    """Why the device *dev* (a ``<tag>``) cannot be hot-plugged, or None if it can."""
    rule = RULES.get(tag)
    if rule is None:
        return f"<{tag}> devices cannot be hot-plugged by pyvirt"
    if rule.refuse:
        return rule.refuse
    bus = getattr(dev, "bus", None)
    if (
        tag == "input"
        and (bus or ("usb" if getattr(dev, "type", None) == "tablet" else "ps2")) == "ps2"
    ):
        return "PS/2 input devices are part of the machine and cannot be hot-plugged"
    if tag == "watchdog" and getattr(dev, "model", None) == "ib700":
        return "the ib700 watchdog is an ISA device, which QEMU cannot hot-plug"
    return None


def _refuse_live(name: str, tag: str, reason: str) -> UnsupportedError:
    return UnsupportedError(
        f"cannot hot-plug <{tag}> into running domain '{name}': {reason}",
        hint="use --config to add it to the definition, then restart the domain",
    )


# -- matching ----------------------------------------------------------------------------------
def _text(el: Element) -> str:
    return (el.text or "").strip()


def _contains(have: Element, want: Element) -> bool:
    """Whether *have* has every attribute, text and child element of *want*."""
    if have.tag != want.tag or (_text(want) and _text(have) != _text(want)):
        return False
    if any(have.get(k) != v for k, v in want.attrib.items()):
        return False
    pool = [c for c in have if isinstance(c.tag, str)]
    for sub in want:
        if not isinstance(sub.tag, str):
            continue
        hit = next((c for c in pool if _contains(c, sub)), None)
        if hit is None:
            return False
        pool.remove(hit)
    return True


def find_device(dom: Domain, want: Element) -> Device:
    """The one device of *dom* that *want* describes.

    :raises NotFoundError: none matches
    :raises InvalidConfigError: several match
    """
    from pyvirt.model.devices import DEVICE_CLASSES  # lazy

    tag = str(want.tag)
    hits = [d for d in dom.devices if d.element.tag == tag and _contains(d.element, want)]
    if not hits:
        raise NotFoundError(f"domain '{dom.name}' has no matching <{tag}> device")
    if len(hits) > 1:
        raise InvalidConfigError(
            f"{len(hits)} <{tag}> devices of domain '{dom.name}' match the XML",
            hint="add more of the device's XML (its <alias name=...> or <address>)",
        )
    assert isinstance(hits[0], DEVICE_CLASSES[tag])
    return hits[0]


# -- config ------------------------------------------------------------------------------------
def _model(el: Element) -> Device:
    from pyvirt.model.devices import DEVICE_CLASSES  # lazy
    from pyvirt.model.xmltree import copy_element  # lazy

    return DEVICE_CLASSES[str(el.tag)](copy_element(el))


def _check(dom: Domain) -> None:
    """Validate *dom* after a change, as ``define`` would."""
    from pyvirt.model.domain import Domain  # lazy

    Domain.from_xml(dom.to_xml())


def config_with(mgr: DomainManager, name: str, el: Element) -> tuple[Domain, str]:
    """The persistent definition with the device *el* added, validated, and the revision it
    was read at (caller holds the lock and writes it with ``write_config``)."""
    dom, rev = mgr.read_config(name)
    dev = _model(el)
    dev.alias = None  # aliases name devices of a running QEMU
    dom.devices.add(dev)
    _check(dom)
    return dom, rev


def config_detach(mgr: DomainManager, name: str, el: Element) -> None:
    """Remove the device *el* describes from the persistent definition (caller holds the lock)."""
    dom, rev = mgr.read_config(name)
    dom.devices.remove(find_device(dom, el))
    mgr.write_config(name, dom, rev)


# -- live --------------------------------------------------------------------------------------
def _free_alias(taken: set[str], prefix: str) -> str:
    k = 0
    while f"{prefix}{k}" in taken:
        k += 1
    return f"{prefix}{k}"


def _is_pci(argv: list[str]) -> bool:
    return any('"addr"' in a for a in argv)


def _send(mon: Monitor, argv: list[str]) -> None:
    """Send the ``-object``/``-device``/``-action`` pairs of a lowering to QEMU."""
    added: list[str] = []
    try:
        for opt, value in zip(argv[::2], argv[1::2], strict=True):
            if opt == "-object":
                props = json.loads(value)
                mon.object_add(props)
                added.append(str(props["id"]))
            elif opt == "-device":
                mon.device_add(json.loads(value))
            elif opt == "-action" and value.startswith("watchdog="):
                mon.set_watchdog_action(value.partition("=")[2])
            else:
                raise UnsupportedError(f"cannot hot-plug a device that needs '{opt} {value}'")
    except BaseException:
        for obj in reversed(added):
            with contextlib.suppress(MonitorError):
                mon.object_del(obj)
        raise


def live_attach(mgr: DomainManager, name: str, el: Element) -> str:
    """Hot-plug the device *el* into running domain *name* (caller holds the lock);
    returns its alias.

    :raises UnsupportedError: QEMU cannot hot-plug that kind of device
    """
    from pyvirt.drivers.qemu.argv import lowering_for  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain.hotplug import build_for, free_pci_slot  # lazy

    tag = str(el.tag)
    dev = _model(el)
    reason = live_refusal(tag, dev)
    if reason:
        raise _refuse_live(name, tag, reason)
    _, rec = mgr.running(name)
    dom = mgr.live_definition(name)
    with Monitor(rec.qmp_socket, name=name) as mon:
        taken = {d.alias for d in dom.devices if d.alias} | mon.peripheral_ids()
        dev.alias = _free_alias(taken, RULES[tag].prefix)
        probe = dom.copy()
        trial = probe.devices.add(_model(dev.element))
        if _is_pci(lowering_for(trial)(trial, build_for(mgr, probe))) and dev.address is None:
            dev.address = free_pci_slot(dom, mon, tag)
        work = dom.copy()
        lowered = work.devices.add(_model(dev.element))
        _send(mon, lowering_for(lowered)(lowered, build_for(mgr, work)))
    dom.devices.add(dev)
    mgr.save_live(name, dom)
    return str(dev.alias)


def live_detach(mgr: DomainManager, name: str, el: Element, timeout: float = DETACH_TIMEOUT) -> str:
    """Unplug the device *el* describes from running domain *name* (caller holds the lock);
    returns its alias.

    :raises OperationFailedError: the guest did not release it within *timeout* seconds
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.errors import OperationFailedError  # lazy

    tag = str(el.tag)
    dom = mgr.live_definition(name)
    dev = find_device(dom, el)
    reason = live_refusal(tag, dev)
    if reason:
        raise UnsupportedError(
            f"cannot unplug <{tag}> from running domain '{name}': {reason}",
            hint="use --config to remove it from the definition, then restart the domain",
        )
    alias = dev.alias
    if not alias:
        raise InvalidConfigError(f"the <{tag}> of running domain '{name}' has no alias")
    _, rec = mgr.running(name)
    with Monitor(rec.qmp_socket, name=name) as mon:
        if alias in mon.peripheral_ids() and not mon.device_del_wait(alias, timeout):
            raise OperationFailedError(
                f"the guest of domain '{name}' did not release <{tag}> '{alias}' within "
                f"{timeout:.0f} s",
                hint="the guest must accept the unplug request (ACPI PCI hotplug)",
            )
        if tag == "rng":
            with contextlib.suppress(MonitorError):
                mon.object_del(f"obj{alias}")  # its backend (gone with it on some QEMUs)
    dom.devices.remove(dev)
    mgr.save_live(name, dom)
    return alias


# -- the verbs ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Change:
    """What :func:`attach`/:func:`detach` did: the live alias (None: not live), the sides."""

    alias: str | None
    live: bool
    config: bool


def attach(
    mgr: DomainManager,
    ident: str,
    el: Element,
    *,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent: bool = False,
) -> Change:
    """Attach the device *el* (not a disk or NIC); flags as :mod:`pyvirt.service.domain.affect`.

    Both sides are checked before anything changes (a refused hot-plug or an invalid
    definition changes nothing); the running guest changes first, then the definition.
    """
    name = mgr.resolve(ident)
    with mgr.locked(name):
        scope = mgr.affect(name, live=live, config=config, current=current, persistent=persistent)
        if scope.live:
            reason = live_refusal(str(el.tag), _model(el))
            if reason:
                raise _refuse_live(name, str(el.tag), reason)
        new = config_with(mgr, name, el) if scope.config else None  # invalid: nothing changes
        alias = live_attach(mgr, name, el) if scope.live else None
        if new is not None:
            mgr.write_config(name, *new)
    return Change(alias, scope.live, scope.config)


def detach(
    mgr: DomainManager,
    ident: str,
    el: Element,
    *,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent: bool = False,
    timeout: float = DETACH_TIMEOUT,
) -> Change:
    """Detach the device *el* describes (not a disk or NIC)."""
    name = mgr.resolve(ident)
    with mgr.locked(name):
        scope = mgr.affect(name, live=live, config=config, current=current, persistent=persistent)
        if scope.config:
            find_device(mgr.read_config(name)[0], el)  # not found: nothing changes
        alias = live_detach(mgr, name, el, timeout) if scope.live else None
        if scope.config:
            config_detach(mgr, name, el)
    return Change(alias, scope.live, scope.config)
