"""``update-device`` for the kinds beyond graphics and CD-ROM/floppy media (those stay in
:mod:`pyvirt.service.domain.display`): NICs, controllers, input, serial/console, hostdev, RNG
and watchdog.

The device to update is found by its identity (:func:`identify`): a NIC by its MAC, a
controller by type and index, a serial port or console by target port, a host device by its
source, any device by ``<alias>``, else the only one of its kind. The definition side
replaces the device whole (validated as ``define`` would). Live, QEMU can change a NIC's link
state and nothing else: any other difference from the running device is refused with that
reason (``--config`` is the way).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError

if TYPE_CHECKING:
    from lxml.etree import _Element as Element

    from pyvirt.model.devices import Device
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast (lxml, QMP).

#: the kinds this module updates
KINDS = frozenset({"interface", "controller", "input", "serial", "console", "hostdev", "rng",
                   "watchdog"})  # fmt: skip
#: parts of a device that say where it sits or what QEMU calls it, not what it is
_PLACEMENT = ("alias", "address", "target")


def _key(el: Element) -> tuple[str, ...] | None:
    """The identity of a device element (None: none beyond its kind)."""
    tag = str(el.tag)
    if tag == "interface":
        mac = el.find("mac")
        return ("mac", (mac.get("address") or "").lower()) if mac is not None else None
    if tag == "controller":
        return ("ctl", el.get("type") or "", el.get("index") or "0")
    if tag in ("serial", "console"):
        target = el.find("target")
        return ("port", target.get("port") or "0") if target is not None else None
    if tag == "hostdev":
        addr = el.find("source/address")
        if addr is not None:
            return ("src", *(str(addr.get(k) or "") for k in ("domain", "bus", "slot", "function")))
    return None


def identify(dom: Domain, new: Element) -> Device:
    """The device of *dom* that *new* updates.

    :raises NotFoundError: none has its identity
    :raises InvalidConfigError: several could be meant
    """
    tag = str(new.tag)
    same = [d for d in dom.devices if d.element.tag == tag]
    alias = new.find("alias")
    if alias is not None and alias.get("name"):
        hits = [d for d in same if d.alias == alias.get("name")]
    elif (key := _key(new)) is not None:
        hits = [d for d in same if _key(d.element) == key]
    else:
        hits = same
    if not hits:
        raise NotFoundError(f"domain '{dom.name}' has no matching <{tag}> to update")
    if len(hits) > 1:
        raise InvalidConfigError(
            f"{len(hits)} <{tag}> devices of domain '{dom.name}' could be meant",
            hint="name the device by its <alias name=...> (see dumpxml)",
        )
    return hits[0]


def _replace(dom: Domain, old: Device, new: Element) -> None:
    from pyvirt.model.xmltree import copy_element  # lazy

    fresh = copy_element(new)
    fresh.tail = old.element.tail
    parent = old.element.getparent()
    assert parent is not None
    parent.replace(old.element, fresh)


def _essence(el: Element) -> str:
    """*el* without placement and link state, as comparable text."""
    from pyvirt.model.xmltree import copy_element, to_string  # lazy

    work = copy_element(el)
    for name in (*_PLACEMENT, "link"):
        for sub in work.findall(name):
            work.remove(sub)
    return "".join(to_string(work).split())


def _live(mgr: DomainManager, name: str, new: Element) -> None:
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.model.xmltree import copy_element  # lazy

    dom = mgr.live_definition(name)
    old = identify(dom, new)
    tag = str(new.tag)
    if _essence(old.element) != _essence(new):
        what = "only its link state" if tag == "interface" else "nothing"
        raise UnsupportedError(
            f"cannot change this <{tag}> of running domain '{name}' live: QEMU can change "
            f"{what} of a running <{tag}>",
            hint="use --config to change the definition, then restart the domain",
        )
    link = new.find("link")
    state = (link.get("state") if link is not None else None) or "up"
    old_link = old.element.find("link")
    if tag == "interface" and state != (
        (old_link.get("state") if old_link is not None else None) or "up"
    ):
        if not old.alias:
            raise InvalidConfigError(f"the <interface> of running domain '{name}' has no alias")
        _, rec = mgr.running(name)
        with Monitor(rec.qmp_socket, name=name) as mon:
            mon.set_link(old.alias, state == "up")
    merged = copy_element(new)
    for part in _PLACEMENT:  # keep where it sits and its tap: the running device's
        for sub in merged.findall(part):
            merged.remove(sub)
        for sub in old.element.findall(part):
            merged.append(copy_element(sub))
    _replace(dom, old, merged)
    mgr.save_live(name, dom)


def handles(xml: str | bytes) -> bool:
    """Whether *xml* is a device this module updates (the others go to
    :func:`pyvirt.service.domain.display.update_device`)."""
    from pyvirt.model.xmltree import parse_xml  # lazy

    return str(parse_xml(xml, what="device XML").tag) in KINDS


def update_device(
    mgr: DomainManager,
    ident: str,
    xml: str | bytes,
    *,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent: bool = False,
) -> None:
    """Update one NIC, controller, input, serial/console, hostdev, RNG or watchdog."""
    from pyvirt.model.domain import Domain  # lazy
    from pyvirt.model.xmltree import parse_xml  # lazy

    new = parse_xml(xml, what="device XML")
    name = mgr.resolve(ident)
    if str(new.tag) not in KINDS:
        raise UnsupportedError(
            f"update-device cannot update <{new.tag}> devices",
            hint="graphics, CD-ROM/floppy media, " + ", ".join(sorted(KINDS)),
        )
    with mgr.locked(name):
        scope = mgr.affect(name, live=live, config=config, current=current, persistent=persistent)
        if scope.config:
            identify(mgr.read_config(name)[0], new)  # not found: nothing changes
        if scope.live:
            _live(mgr, name, new)
        if scope.config:
            from pyvirt.model.xmltree import copy_element  # lazy

            stored = copy_element(new)
            for sub in stored.findall("alias"):  # aliases name devices of a running QEMU
                stored.remove(sub)
            dom, rev = mgr.read_config(name)
            _replace(dom, identify(dom, new), stored)
            Domain.from_xml(dom.to_xml())
            mgr.write_config(name, dom, rev)
