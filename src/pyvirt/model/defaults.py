"""The defaults libvirt fills into a domain at define, so ``dumpxml`` shows what virsh shows.

:func:`fill_defaults` makes implicit things explicit, each the way pyvirt's argv builder
already treats its absence (the command line does not change, except where pyvirt used to
differ from libvirt: a NIC without ``<mac>`` now gets a stored address instead of QEMU's one
fixed default, and a domain without ``<memballoon>`` or with graphics but no ``<video>`` gets
libvirt's virtio balloon and Cirrus adapter):

* ``<currentMemory>``, ``<clock offset='utc'>``, ``<os><boot dev='hd'/>`` (without a boot
  order elsewhere), and for a TCG domain without ``<cpu>`` QEMU's ``qemu64`` (``486`` on
  ``isapc``) written out;
* every controller's ``index`` (numbered as the argv builder numbers them);
* ``<os><type arch machine>`` (``x86_64``, ``pc``; a machine alias expanded to the name it
  stands for, ``pc`` → ``pc-i440fx-7.2``, when the caller knows the emulator's aliases);
* ``<on_poweroff>``/``<on_reboot>``/``<on_crash>``;
* a ``<mac address>`` for each NIC without one (52:54:00:xx:xx:xx, unique in the domain);
* ``<target bus>`` of disks from their name (``vda`` → virtio) and ``<driver name='qemu'
  type='raw'/>`` for file and block disks without a format (QEMU opens them raw);
* the machine's controllers: ``pci-root`` (i440fx) or ``pcie-root`` (q35), a USB controller
  (``piix3-uhci``/``qemu-xhci``, its model filled in when missing), the IDE controller of
  i440fx when an IDE disk uses it, q35's SATA controller, the floppy controller for floppies;
* x86's PS/2 mouse and keyboard, a Cirrus ``<video>`` with a display, a virtio
  ``<memballoon>``, a silent ``<audio id='1' type='none'/>`` backend (``-audiodev none``: what
  the sound cards and the VNC display play through unless the XML has another);
* serial ports and consoles paired as libvirt pairs them: a serial port gets a ``<console
  type=... ><target type='serial' port='N'/>`` twin (same source) and a serial console
  without a serial port gets one; serial targets become ``isa-serial`` with their port.

The children of ``<domain>`` and ``<devices>`` are put in libvirt's order. Filling twice
changes nothing (``define(dumpxml(define(x)))`` is stable). On i440fx each device that goes
on ``pci.0`` gets its slot as libvirt assigns it (:func:`pyvirt.model.pcie.complete_i440fx`);
q35's topology is :func:`pyvirt.model.pcie.complete_domain`'s, which ``define`` runs around this.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping

from lxml import etree

from pyvirt.model.devices import DEVICE_CLASSES, Chardev, Controller, Input, Memballoon
from pyvirt.model.devices.base import DEVICE_ORDER
from pyvirt.model.devices.controller import controller_indexes
from pyvirt.model.domain import Domain
from pyvirt.model.pcie import complete_i440fx
from pyvirt.model.xmltree import insert_element

__all__ = ["fill_defaults"]

#: target name prefix -> bus, as the argv builder infers it
PREFIX_BUS = (("hd", "ide"), ("sd", "scsi"), ("vd", "virtio"), ("fd", "fdc"), ("ub", "usb"))
X86 = ("x86_64", "i686")


def fill_defaults(
    dom: Domain,
    *,
    machine_aliases: Mapping[str, str] | None = None,
    rng: random.Random | None = None,
) -> None:
    """Fill libvirt's defaults into ``dom`` in place (see the module's description).

    :param machine_aliases: alias -> canonical machine name of the domain's emulator
    :param rng: the source of generated MAC addresses (tests pass a seeded one)
    """
    _os(dom, machine_aliases or {})
    _basics(dom)
    for action, default in (("poweroff", "destroy"), ("reboot", "restart"), ("crash", "destroy")):
        setattr(dom, f"on_{action}", getattr(dom, f"on_{action}") or default)
    _macs(dom, rng or random.Random())
    _disks(dom)
    _controllers(dom)
    _chardevs(dom)
    _inputs_video_balloon(dom)
    _order(dom)
    complete_i440fx(dom)  # i440fx: each device's slot of pci.0 (q35: model.pcie, at define)


def _family(dom: Domain) -> str:
    machine = dom.os.machine or "pc"
    for family in ("q35", "isapc", "microvm"):
        if family in machine:
            return family
    return "pc" if dom.os.arch in (None, *X86) else "other"


def _os(dom: Domain, aliases: Mapping[str, str]) -> None:
    if dom.os.type != "hvm":
        return
    if not dom.os.arch:
        dom.os.arch = "x86_64"
    if not dom.os.machine and dom.os.arch in X86:
        dom.os.machine = "pc"
    machine = dom.os.machine
    if machine is not None and machine in aliases:
        dom.os.machine = aliases[machine]


def _basics(dom: Domain) -> None:
    """``<currentMemory>``, ``<clock offset>``, ``<boot dev='hd'/>``, TCG's ``qemu64`` CPU."""
    if dom.element.find("memory") is not None and dom.element.find("currentMemory") is None:
        dom.current_memory_kib = dom.memory_kib
    dom.clock.offset = dom.clock.offset
    devs = dom.devices
    orders = [
        *(d.boot_order for d in devs.disks),
        *(i.boot_order for i in devs.interfaces),
        *(h.boot_order for h in devs.hostdevs),
    ]
    if dom.os.type == "hvm" and not dom.os.boot_devs and all(o is None for o in orders):
        dom.os.boot_devs = ["hd"]
    if dom.type == "qemu" and dom.cpu is None and dom.os.arch in (None, *X86):
        cpu = etree.Element("cpu", mode="custom", match="exact", check="none")
        # QEMU's default CPU of the machine: the ISA-only PC has a 486
        model = "486" if dom.os.machine == "isapc" else "qemu64"
        etree.SubElement(cpu, "model", fallback="forbid").text = model
        insert_element(dom.element, cpu, Domain.ORDER)


def _macs(dom: Domain, rng: random.Random) -> None:
    taken = {str(i.mac).lower() for i in dom.devices.interfaces if i.mac}
    for iface in dom.devices.interfaces:
        if iface.mac:
            continue
        while True:
            mac = "52:54:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
            if mac not in taken:
                break
        taken.add(mac)
        iface.mac = mac


def _disks(dom: Domain) -> None:
    for disk in dom.devices.disks:
        dev = disk.target_dev or ""
        if not disk.target_bus:
            bus = next((b for prefix, b in PREFIX_BUS if dev.startswith(prefix)), None)
            if bus is not None:
                disk.target_bus = bus
        if (
            disk.type in ("file", "block")
            and disk.format is None
            and disk.device in (None, "disk", "cdrom", "floppy", "lun")
        ):
            if disk.driver_name is None:
                disk.driver_name = "qemu"
            disk.format = "raw"


def _has_controller(dom: Domain, type_: str, index: int | None = None) -> bool:
    return any(
        c.type == type_ and (index is None or c.index == index) for c in dom.devices.controllers
    )


def _add_controller(dom: Domain, type_: str, model: str | None = None) -> None:
    ctl = Controller(etree.Element("controller"))
    ctl.type = type_
    ctl.index = 0
    if model is not None:
        ctl.model = model
    dom.devices.add(ctl)


def _controllers(dom: Domain) -> None:
    for ctl, index in controller_indexes(list(dom.devices.controllers)).items():
        if ctl.element.get("index") is None:
            ctl.index = index
    family = _family(dom)
    if family not in ("pc", "q35"):
        return
    q35 = family == "q35"
    buses = {d.target_bus for d in dom.devices.disks}
    usb_model = "qemu-xhci" if q35 else "piix3-uhci"
    if not _has_controller(dom, "usb"):
        _add_controller(dom, "usb", usb_model)
    else:
        for c in dom.devices.controllers:
            if c.type == "usb" and c.index == 0 and c.model is None:
                c.model = usb_model
    if not q35 and "ide" in buses and not _has_controller(dom, "ide", 0):
        _add_controller(dom, "ide")
    if q35 and not _has_controller(dom, "sata", 0):
        _add_controller(dom, "sata")
    if not q35 and "fdc" in buses and not _has_controller(dom, "fdc", 0):
        _add_controller(dom, "fdc")
    roots = ("pcie-root", "pci-root")
    has_root = any(c.type == "pci" and c.model in roots for c in dom.devices.controllers)
    if not has_root and not _has_controller(dom, "pci", 0):
        _add_controller(dom, "pci", "pcie-root" if q35 else "pci-root")


def _serial_target(dev: Chardev, port: int) -> None:
    if dev.target_type in (None, "serial"):
        dev.target_type = "isa-serial"
    if dev.target_type == "isa-serial":
        if dev.target_port is None:
            dev.target_port = port
        if dev.target_model is None:
            dev.target_model = "isa-serial"


def _twin(src: Chardev, tag: str) -> etree._Element:
    """A copy of ``src``'s element as ``tag`` with its host side only (no target/alias/address)."""
    el = copy.deepcopy(src.element)
    el.tag = tag
    for child in list(el):
        if child.tag in ("target", "alias", "address"):
            el.remove(child)
    el.tail = None
    if "tty" in el.attrib:
        del el.attrib["tty"]
    return el


def _chardevs(dom: Domain) -> None:
    if _family(dom) not in ("pc", "q35"):
        return
    devs = dom.devices
    used = {s.target_port for s in devs.serials if s.target_port is not None}
    for serial in devs.serials:
        if serial.target_port is None and serial.target_type in (None, "serial", "isa-serial"):
            port = next(p for p in range(len(used) + 1) if p not in used)
            used.add(port)
            _serial_target(serial, port)
        else:
            _serial_target(serial, serial.target_port or 0)
    consoles = list(devs.consoles)
    first = consoles[0] if consoles else None
    if first is not None and first.target_type in (None, "serial"):
        first.target_type = "serial"
        port = first.target_port or 0
        if not any((s.target_port or 0) == port for s in devs.serials):
            twin = DEVICE_CLASSES["serial"](_twin(first, "serial"))
            assert isinstance(twin, Chardev)
            _serial_target(twin, port)
            devs.add(twin)
        if first.target_port is None:
            first.target_port = port
    if first is None and devs.serials:
        serial = devs.serials[0]
        console = DEVICE_CLASSES["console"](_twin(serial, "console"))
        assert isinstance(console, Chardev)
        console.target_type = "serial"
        console.target_port = serial.target_port or 0
        devs.add(console)


def _inputs_video_balloon(dom: Domain) -> None:
    devs = dom.devices
    if _family(dom) in ("pc", "q35"):
        have = {(i.type, i.bus or "ps2") for i in devs.inputs if i.type in ("mouse", "keyboard")}
        for kind in ("mouse", "keyboard"):
            if (kind, "ps2") not in have:
                dev = Input(etree.Element("input"))
                dev.type = kind
                dev.bus = "ps2"
                devs.add(dev)
        for i in devs.inputs:
            if i.type in ("mouse", "keyboard") and i.bus is None:
                i.bus = "ps2"
    videos = devs.videos
    if videos and not any(v.primary for v in videos) and videos[0].model_type != "none":
        videos[0].primary = True
    if devs.graphics and not devs.videos:
        video = etree.Element("video")
        etree.SubElement(video, "model", type="cirrus", vram="16384", heads="1", primary="yes")
        devs.add(DEVICE_CLASSES["video"](video))
    if devs.memballoon is None:
        balloon = Memballoon(etree.Element("memballoon"))
        balloon.model = "virtio"
        devs.add(balloon)
    # an audio backend for the sound cards and the VNC display: libvirt's silent one
    own_audio = {"spice", "sdl", "dbus"}  # displays that bring their own audio backend
    if not devs.audios and not any(g.type in own_audio for g in devs.graphics):
        devs.add(DEVICE_CLASSES["audio"](etree.Element("audio", id="1", type="none")))


def _rank(order: tuple[str, ...], children: list[etree._Element]) -> list[etree._Element]:
    """``children`` in ``order``; an unknown element stays right after its predecessor."""
    ranked: list[tuple[int, int, etree._Element]] = []
    last = -1
    for i, el in enumerate(children):
        tag = el.tag if isinstance(el.tag, str) else ""
        if tag in order:
            last = order.index(tag)
        ranked.append((last, i, el))
    return [el for _, _, el in sorted(ranked, key=lambda t: (t[0], t[1]))]


def _order(dom: Domain) -> None:
    for parent, order in ((dom.element, Domain.ORDER), (dom.devices.element, DEVICE_ORDER)):
        children = [c for c in parent if isinstance(c.tag, str)]
        ranked = _rank(tuple(order), children)
        if ranked == children:
            continue
        for el in children:
            parent.remove(el)
        for el in ranked:
            parent.append(el)
    etree.indent(dom.element, space="  ")
