"""PCI Express topology of a ``q35`` guest, completed as libvirt completes it at define time.

:func:`complete_q35` adds to a ``q35`` definition what the guest needs and writes it into the
XML: ``pcie-root`` (index 0), the ICH9 SATA controller at ``0x1f.2``, a ``qemu-xhci`` USB
controller when the guest has none, the SCSI/virtio-serial controllers its devices need, one
``pcie-root-port`` per PCIe device without an address (empty ports of the XML first; new ones
packed eight functions to a slot of ``pcie.0``, ``chassis`` = index, ``port`` = slot * 8 +
function), a ``pcie-to-pci-bridge`` (on its own root port) for legacy PCI devices, and, when the
XML has no PCI controller but the root (libvirt made the whole topology), one spare empty root
port for hot-plug. Switch ports without an address go where libvirt puts them (an upstream port
in an empty root port, downstream ports on its slots). Devices are placed in libvirt's order
(filesystems, NICs, controllers, disks, host devices, balloon, RNG, watchdog, videos, inputs,
PCI serials). Addresses already in the XML are kept; an address naming a bus the guest lacks is
refused, naming the element. Expander buses (pxb) are left to the argv builder.

It is idempotent: a definition it completed is left unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml import etree

from pyvirt.errors import InvalidConfigError
from pyvirt.model.devices.base import DEVICE_ORDER
from pyvirt.model.devices.controller import Controller, controller_indexes
from pyvirt.model.xmltree import Element, insert_element

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain

#: PCI controller models a PCIe endpoint plugs into (one device each, at slot 0)
PCIE_PORT_MODELS = ("pcie-root-port", "pcie-switch-downstream-port")
#: PCI controller models whose bus takes legacy (conventional) PCI devices, slots 1-31
PCI_BRIDGE_MODELS = ("pci-bridge", "pcie-to-pci-bridge")
#: controller models pyvirt does not place itself (the builder places them, or they are refused)
_HANDS_OFF = ("pcie-expander-bus", "pci-expander-bus")
#: NIC models that are conventional PCI devices (libvirt puts them behind a PCI bridge on q35)
LEGACY_NICS = ("e1000", "rtl8139", "ne2k_pci", "pcnet", "virtio-transitional", "i82551",
               "i82557b", "i82559er", "vmxnet3")  # fmt: skip
LEGACY_USB = ("piix3-uhci", "piix4-uhci", "ehci", "ich9-ehci1", "ich9-uhci1", "ich9-uhci2",
              "ich9-uhci3", "vt82c686b-uhci", "pci-ohci")  # fmt: skip
LEGACY_SCSI = ("lsilogic", "lsisas1068", "lsisas1078", "megasas", "vmpvscsi", "am53c974",
               "dc390", "virtio-transitional")  # fmt: skip
#: ICH9 USB controllers libvirt puts on their real slots of pcie.0 (index -> slot)
_ICH9_USB_SLOTS = {0: 0x1D, 1: 0x1A}
_ICH9_USB_FUNCTIONS = {"ich9-ehci1": 7, "ich9-uhci1": 0, "ich9-uhci2": 1, "ich9-uhci3": 2}
#: the DMI-to-PCI bridge's slot on pcie.0, as libvirt places it
DMI_SLOT = 0x1E
#: slot 0x1f of pcie.0: ICH9 LPC (0), SATA (2), SMBus (3)
ICH9_SLOT = 0x1F


def is_q35(machine: str | None) -> bool:
    """Whether *machine* is a q35 machine type (``q35``, ``pc-q35-7.2``...)."""
    return machine is not None and "q35" in machine


def _num(text: str | None, default: int = 0) -> int:
    if text is None:
        return default
    t = text.strip().lower()
    try:
        return int(t, 16) if t.startswith("0x") else int(t)
    except ValueError:
        raise InvalidConfigError(
            f"'{text}' is not a number", hint="PCI addresses and indexes are decimal or 0x hex"
        ) from None


@dataclass
class _Bus:
    """One PCI bus of the guest: its controller's model and which slot/functions are taken."""

    index: int
    model: str
    used: dict[int, set[int]] = field(default_factory=dict)
    hotplug: bool = True

    def take(self, slot: int, function: int = 0) -> None:
        self.used.setdefault(slot, set()).add(function)

    def empty(self) -> bool:
        return not self.used


@dataclass
class _Topology:
    """The buses of a q35 guest and where things sit on them, while devices are placed."""

    devices: Element
    buses: dict[int, _Bus] = field(default_factory=dict)
    #: slots of pcie.0 holding root ports pyvirt may add functions to
    port_slots: set[int] = field(default_factory=set)
    #: slots of pcie.0 reserved for a device that has no address yet (primary video)
    reserved: set[int] = field(default_factory=set)

    @property
    def root(self) -> _Bus:
        return self.buses[0]

    def next_index(self) -> int:
        n = 1
        while n in self.buses:
            n += 1
        return n

    def root_port_spot(self) -> tuple[int, int]:
        """The next function of pcie.0 for a root port: a free function of a slot that holds
        only root ports (function 0 multifunction), else function 0 of the first free slot."""
        for slot in range(1, 32):
            if slot in self.reserved or slot in (DMI_SLOT, ICH9_SLOT):
                continue
            funcs = self.root.used.get(slot)
            if funcs is None:
                return slot, 0
            if slot in self.port_slots and len(funcs) < 8:
                return slot, min(set(range(8)) - funcs)
        raise InvalidConfigError(
            "no free slot left on pcie.0 for another pcie-root-port",
            hint="use a PCIe switch or pcie-expander-bus and give devices addresses",
        )

    def add_controller(self, model: str) -> tuple[int, Element]:
        """Add ``<controller type='pci' model=...>`` with the next free index."""
        index = self.next_index()
        ctl = etree.Element("controller", type="pci", index=str(index), model=model)
        _insert_controller(self.devices, ctl)
        self.buses[index] = _Bus(index, model)
        return index, ctl

    def add_root_port(self) -> int:
        """Add a ``pcie-root-port`` on pcie.0; returns its index (its bus number)."""
        index, ctl = self.add_controller("pcie-root-port")
        slot, fn = self.root_port_spot()
        self.root.take(slot, fn)
        self.port_slots.add(slot)
        _set_target(ctl, index, slot, fn)
        _set_address(ctl, 0, slot, fn)
        return index

    def empty_port(self, *, hotplug: bool = False) -> int | None:
        """The lowest-index PCIe port with nothing in it (*hotplug*: one that hot-plugs)."""
        for index in sorted(self.buses):
            bus = self.buses[index]
            if bus.model in PCIE_PORT_MODELS and bus.empty() and (bus.hotplug or not hotplug):
                return index
        return None

    def bridge_slot(self, models: tuple[str, ...]) -> tuple[int, int] | None:
        for index in sorted(self.buses):
            bus = self.buses[index]
            if bus.model in models:
                low = 0 if bus.model == "dmi-to-pci-bridge" else 1
                for slot in range(low, 32):
                    if slot not in bus.used:
                        return index, slot
        return None


def _insert_controller(devices: Element, ctl: Element) -> None:
    """Insert *ctl* after the last ``<controller>`` (or where controllers go)."""
    last = None
    for el in devices.iterchildren("controller"):
        last = el
    if last is not None:
        last.addnext(ctl)
        ctl.tail = last.tail
    else:
        insert_element(devices, ctl, DEVICE_ORDER)


def _set_address(dev: Element, bus: int, slot: int, fn: int, multifunction: bool = False) -> None:
    addr = dev.find("address")
    if addr is None:
        addr = etree.SubElement(dev, "address")
    addr.attrib.clear()
    addr.set("type", "pci")
    addr.set("domain", "0x0000")
    addr.set("bus", f"{bus:#04x}")
    addr.set("slot", f"{slot:#04x}")
    addr.set("function", f"{fn:#x}")
    if multifunction:
        addr.set("multifunction", "on")


def _set_target(ctl: Element, index: int, slot: int, fn: int) -> None:
    """``<target chassis port>`` of a root port, as libvirt numbers them."""
    target = ctl.find("target")
    if target is None:
        target = etree.Element("target")
        model = ctl.find("model")
        if model is not None:
            model.addnext(target)
        else:
            ctl.insert(0, target)
    target.set("chassis", target.get("chassis") or str(index))
    target.set("port", target.get("port") or f"{slot * 8 + fn:#x}")


def _pci_address(dev: Element) -> Element | None:
    addr = dev.find("address")
    if addr is not None and addr.get("type") == "pci" and addr.get("slot") is not None:
        return addr
    return None


def _has_address(dev: Element) -> bool:
    return dev.find("address") is not None


def _model(dev: Element) -> str | None:
    m = dev.find("model")
    return m.get("type") if m is not None else None


def _kind(dev: Element) -> str | None:
    """``pcie`` (an endpoint for a root port), ``pci`` (a conventional PCI device), or None
    (not a PCI device, or one pyvirt leaves alone)."""
    tag = dev.tag
    if tag == "filesystem":
        return "pcie"
    if tag == "interface":
        if dev.get("type") == "hostdev":
            return "pcie"
        model = _model(dev) or "rtl8139"
        if model == "usb-net":
            return None
        return "pci" if model in LEGACY_NICS else "pcie"
    if tag == "controller":
        ctype, cmodel, index = dev.get("type"), dev.get("model"), _num(dev.get("index"))
        if ctype == "usb":
            if cmodel == "none":
                return None
            return "pci" if cmodel in LEGACY_USB else "pcie"
        if ctype == "scsi":
            return "pci" if cmodel in LEGACY_SCSI else "pcie"
        if ctype == "sata":
            return None if index == 0 else "pcie"
        if ctype == "virtio-serial":
            return "pcie"
        return None
    if tag == "disk":
        target = dev.find("target")
        return "pcie" if target is not None and target.get("bus") == "virtio" else None
    if tag == "hostdev":
        return "pcie" if dev.get("type") in ("pci", "mdev") else None
    if tag in ("memballoon", "rng"):
        return None if dev.get("model") == "none" else "pcie"
    if tag == "watchdog":
        return "pci" if (dev.get("model") or "i6300esb") == "i6300esb" else None
    if tag == "video":
        model = _model(dev) or "vga"
        if model in ("none", "ramfb"):
            return None
        return "pcie" if model == "virtio" else "pci"
    if tag == "input":
        return "pcie" if dev.get("bus") == "virtio" else None
    if tag == "sound":
        return "pci" if dev.get("model") in ("es1370", "ac97", "ich6", "ich7", "ich9") else None
    if tag in ("serial", "console"):
        target = dev.find("target")
        return "pci" if target is not None and target.get("type") == "pci-serial" else None
    return None


#: libvirt's placement order of device kinds (controllers in document order)
_ORDER = ("filesystem", "interface", "sound", "controller", "disk", "hostdev", "memballoon",
          "rng", "watchdog", "video", "input", "serial", "console")  # fmt: skip


def _in_order(devices: Element, *, sort_disks: bool = False) -> Iterator[Element]:
    """*devices*' children in libvirt's placement order; with *sort_disks* the disks of one
    bus by target name (``vda`` < ``vdb`` < ``vdaa``), the order libvirt keeps them in."""
    for tag in _ORDER:
        if tag == "disk" and sort_disks:
            yield from sorted(devices.iterchildren(tag), key=_disk_key)
        else:
            yield from devices.iterchildren(tag)


def _disk_key(disk: Element) -> tuple[int, str]:
    target = disk.find("target")
    dev = (target.get("dev") if target is not None else None) or ""
    return len(dev), dev


def _add_virtio_serial(devices: Element) -> bool:
    """Add the virtio-serial controllers the virtio consoles and channels use (an address's
    ``controller``, else 0) and the XML lacks, as libvirt does; returns whether it added any."""
    have = {_num(c.get("index")) for c in devices.iterchildren("controller")
            if c.get("type") == "virtio-serial"}  # fmt: skip
    wanted: set[int] = set()
    for tag in ("console", "channel"):
        for el in devices.iterchildren(tag):
            target = el.find("target")
            if target is None or target.get("type") != "virtio":
                continue
            addr = el.find("address")
            serial = addr is not None and addr.get("type") == "virtio-serial"
            wanted.add(_num(addr.get("controller")) if serial and addr is not None else 0)
    for index in sorted(wanted - have):
        ctl = etree.Element("controller", type="virtio-serial", index=str(index))
        _insert_controller(devices, ctl)
    return bool(wanted - have)


def _add_default_controllers(devices: Element) -> None:
    """pcie-root, SATA 0 (ICH9's AHCI), a default USB controller and the SCSI/virtio-serial
    controllers the devices need, as libvirt writes them."""
    ctls = list(devices.iterchildren("controller"))
    have = {(c.get("type"), _num(c.get("index"))) for c in ctls}
    types = {c.get("type") for c in ctls}

    def add(type_: str, index: int, model: str | None = None) -> Element:
        attrs = {"type": type_, "index": str(index)}
        if model is not None:
            attrs["model"] = model
        ctl = etree.Element("controller", attrs)
        _insert_controller(devices, ctl)
        have.add((type_, index))
        types.add(type_)
        return ctl

    if "usb" not in types:
        add("usb", 0, "qemu-xhci")
    for c in ctls:  # a USB controller the XML gives without a model is libvirt's PIIX3 UHCI
        if c.get("type") == "usb" and c.get("model") is None and c.find("master") is None:
            c.set("model", "piix3-uhci")
    scsi: set[int] = set()
    for disk in devices.iterchildren("disk"):
        target = disk.find("target")
        if target is None or target.get("bus") != "scsi":
            continue
        addr = disk.find("address")
        ctl = addr.get("controller") if addr is not None and addr.get("type") == "drive" else None
        scsi.add(_num(ctl))
    for index in sorted(scsi):
        if ("scsi", index) not in have:
            add("scsi", index, "virtio-scsi")
    virtio_chardevs = [
        t for tag in ("console", "channel") for el in devices.iterchildren(tag)
        if (t := el.find("target")) is not None and t.get("type") == "virtio"
    ]  # fmt: skip
    if virtio_chardevs and "virtio-serial" not in types:
        add("virtio-serial", 0)
    if ("sata", 0) not in have:
        sata = add("sata", 0)
        _set_address(sata, 0, ICH9_SLOT, 2)
    if ("pci", 0) not in have:
        add("pci", 0, "pcie-root")


def _number_controllers(devices: Element) -> None:
    """Write the index of every controller without one, numbered as libvirt numbers them
    (``pcie-root`` is index 0, added first when the XML has none)."""
    roots = [c for c in devices.iterchildren("controller") if c.get("model") == "pcie-root"]
    if not roots:
        root = etree.Element("controller", type="pci", index="0", model="pcie-root")
        _insert_controller(devices, root)
    ctls = [Controller(c) for c in devices.iterchildren("controller")]
    for ctl, index in controller_indexes(ctls).items():
        if ctl.element.get("index") is None:
            ctl.element.set("index", str(index))


def _leaves_alone(devices: Element) -> bool:
    """Topologies pyvirt does not complete (the argv builder places what they lack)."""
    for c in devices.iterchildren("controller"):
        if c.get("type") == "pci" and c.get("model") in _HANDS_OFF and not _has_address(c):
            return True
    return False


def complete_q35(devices: Element, machine: str | None) -> bool:
    """Complete the ``<devices>`` of a q35 definition (see the module docstring).

    :param devices: the ``<devices>`` element, changed in place
    :param machine: the machine type (nothing happens unless it is q35)
    :returns: whether anything changed
    :raises InvalidConfigError: an address names a bus the guest does not have, or the guest
        needs more root ports than pcie.0 has room for
    """
    if not is_q35(machine):
        return False
    before = etree.tostring(devices)
    _number_controllers(devices)
    _add_default_controllers(devices)
    if _leaves_alone(devices):
        return etree.tostring(devices) != before
    topo = _Topology(devices)
    pci_ctls = [c for c in devices.iterchildren("controller") if c.get("type") == "pci"]
    # libvirt leaves a spare root port only when it made the whole topology itself
    auto_only = all(c.get("model") == "pcie-root" for c in pci_ctls)
    for c in pci_ctls:
        index = _num(c.get("index"))
        bus = _Bus(index, c.get("model") or ("pcie-root" if index == 0 else ""))
        target = c.find("target")
        if target is not None and target.get("hotplug") == "off":
            bus.hotplug = False
        topo.buses[index] = bus
    if 0 not in topo.buses or topo.root.model != "pcie-root":
        return etree.tostring(devices) != before  # the rules refuse it
    topo.root.take(0)
    for fn in range(8):
        topo.root.take(ICH9_SLOT, fn)
    # every address already given
    not_ports: set[int] = set()
    for el in devices.iter("address"):
        if el.get("type") != "pci" or el.get("slot") is None:
            continue
        owner = el.getparent()
        assert owner is not None
        bus_no = _num(el.get("bus"))
        if bus_no not in topo.buses:
            raise InvalidConfigError(
                f"<{owner.tag}> has a PCI address on bus {bus_no:#04x}, which the guest lacks",
                hint="add a <controller type='pci'> with that index or remove the <address>",
            )
        slot, fn = _num(el.get("slot")), _num(el.get("function"))
        topo.buses[bus_no].take(slot, fn)
        if bus_no == 0:
            is_port = owner.tag == "controller" and owner.get("model") == "pcie-root-port"
            if not is_port or (fn == 0 and el.get("multifunction") == "off"):
                not_ports.add(slot)
            else:
                topo.port_slots.add(slot)
    topo.port_slots -= not_ports
    # the primary video keeps slot 1 of pcie.0
    videos = [v for v in devices.iterchildren("video") if _kind(v) is not None]
    primary = videos[0] if videos else None
    if primary is not None and not _has_address(primary) and 1 not in topo.root.used:
        topo.root.take(1)
        _set_address(primary, 0, 1, 0)
    # fixed places of ICH9 USB sets and the DMI bridge
    for c in devices.iterchildren("controller"):
        if _has_address(c):
            continue
        index = _num(c.get("index"))
        if c.get("type") == "usb" and c.get("model") in _ICH9_USB_FUNCTIONS:
            usb_slot = _ICH9_USB_SLOTS.get(index)
            fn = _ICH9_USB_FUNCTIONS[c.get("model") or ""]
            if usb_slot is not None and fn not in topo.root.used.get(usb_slot, set()):
                topo.root.take(usb_slot, fn)
                _set_address(c, 0, usb_slot, fn, multifunction=fn == 0)
        elif c.get("model") == "dmi-to-pci-bridge" and DMI_SLOT not in topo.root.used:
            topo.root.take(DMI_SLOT)
            _set_address(c, 0, DMI_SLOT, 0)
    # PCI controllers without an address: root ports on pcie.0, bridges where they fit
    for c in pci_ctls:
        if _has_address(c):
            continue
        index = _num(c.get("index"))
        model = c.get("model")
        if model == "pcie-root-port":
            slot, fn = topo.root_port_spot()
            topo.root.take(slot, fn)
            topo.port_slots.add(slot)
            _set_target(c, index, slot, fn)
            _set_address(c, 0, slot, fn)
        elif model == "pci-bridge":
            spot = topo.bridge_slot(("dmi-to-pci-bridge", *PCI_BRIDGE_MODELS))
            if spot is None:
                spot = (_pcie_spot(topo), 0)
            topo.buses[spot[0]].take(spot[1])
            _set_address(c, spot[0], spot[1], 0)
        elif model == "pcie-switch-upstream-port":
            port_bus = _pcie_spot(topo)
            topo.buses[port_bus].take(0)
            _set_address(c, port_bus, 0, 0)
        elif model == "pcie-switch-downstream-port":
            down = _downstream_spot(topo, c)
            topo.buses[down[0]].take(down[1])
            _set_address(c, down[0], down[1], 0)
            _set_target(c, index, 0, down[1])
        elif model in ("pcie-to-pci-bridge", "dmi-to-pci-bridge"):
            port_bus = _pcie_spot(topo)
            topo.buses[port_bus].take(0)
            _set_address(c, port_bus, 0, 0)
    added_ports = False
    ich9_sets: dict[int, tuple[int, int]] = {}  # USB index -> (bus, slot) of its ICH9 set
    for dev in _in_order(devices):
        if dev.tag == "controller" and dev.get("type") == "pci":
            continue
        kind = _kind(dev)
        if kind is None or _has_address(dev):
            continue
        if kind == "pcie":
            port = topo.empty_port()
            if port is None:
                port = topo.add_root_port()
                added_ports = True
            topo.buses[port].take(0)
            _set_address(dev, port, 0, 0)
        else:
            fn = 0
            ich9 = dev.tag == "controller" and dev.get("model") in _ICH9_USB_FUNCTIONS
            if ich9:  # an ICH9 USB set shares one slot, each controller at its function
                fn = _ICH9_USB_FUNCTIONS[dev.get("model") or ""]
                set_slot = ich9_sets.get(_num(dev.get("index")))
                if set_slot is not None and fn not in topo.buses[set_slot[0]].used[set_slot[1]]:
                    topo.buses[set_slot[0]].take(set_slot[1], fn)
                    _set_address(dev, set_slot[0], set_slot[1], fn)
                    continue
            spot = topo.bridge_slot(PCI_BRIDGE_MODELS)
            if spot is None:
                port = topo.empty_port()
                if port is None:
                    port = topo.add_root_port()
                    added_ports = True
                topo.buses[port].take(0)
                index, bridge = topo.add_controller("pcie-to-pci-bridge")
                _set_address(bridge, port, 0, 0)
                spot = (index, 1)
            topo.buses[spot[0]].take(spot[1], fn)
            _set_address(dev, spot[0], spot[1], fn)
            if ich9:
                ich9_sets[_num(dev.get("index"))] = spot
    if added_ports and auto_only and topo.empty_port(hotplug=True) is None:
        topo.add_root_port()  # one spare for hot-plug, as libvirt leaves one
    _mark_multifunction(topo)
    # root ports given an address but no numbers
    for c in devices.iterchildren("controller"):
        addr = _pci_address(c)
        if c.get("model") == "pcie-root-port" and addr is not None:
            _set_target(c, _num(c.get("index")), _num(addr.get("slot")), _num(addr.get("function")))
    return etree.tostring(devices) != before


def complete_domain(domain: Domain) -> bool:
    """:func:`complete_q35` on *domain*'s devices (what ``define`` stores, what the argv
    builder runs first); other machine types are left alone.

    :returns: whether the definition changed
    """
    devices = domain.devices
    if not complete_q35(devices.element, domain.os.machine):
        return False
    devices.attach()
    return True


def is_i440fx(machine: str | None, arch: str | None) -> bool:
    """Whether *machine* (on *arch*) is an i440fx PC (``pc``, ``pc-i440fx-7.2``, ``pc-1.0``...)."""
    machine = machine or "pc"
    return (arch or "x86_64") in ("x86_64", "i686") and (
        machine == "pc" or (machine.startswith("pc-") and not is_q35(machine))
    )


#: slots of pci.0 libvirt never hands out on i440fx: the host bridge and PIIX3
_I440FX_FIXED = {0, 1}
#: PIIX3's own functions on slot 1 (controller type -> function)
_PIIX3_FUNCTIONS = {"ide": 1, "usb": 2}


def complete_i440fx(domain: Domain) -> bool:
    """Write a PCI address on every device of an i440fx definition that goes on ``pci.0``
    and has none, as libvirt assigns them: slot 1 is PIIX3 (IDE ``0x1.0x1``, its UHCI USB
    ``0x1.0x2``), the primary video card gets slot 2, the others the free slots from 2 in
    libvirt's placement order (NICs before disks). Addresses in the XML are kept.

    What does not fit on ``pci.0`` (or other USB controllers, bridges) is left without an
    address: the argv builder places it at each start, adding pci-bridges as it needs.

    :returns: whether the definition changed
    """
    if not is_i440fx(domain.os.machine, domain.os.arch):
        return False
    devices = domain.devices.element
    changed = _add_virtio_serial(devices)
    used = set(_I440FX_FIXED)
    for el in devices:
        addr = _pci_address(el) if isinstance(el.tag, str) else None
        if addr is not None and _num(addr.get("bus")) == 0:
            used.add(_num(addr.get("slot")))
    videos = [v for v in devices.iterchildren("video") if _kind(v) is not None]
    primary = next((v for v in videos if (m := v.find("model")) is not None
                    and m.get("primary") == "yes"), videos[0] if videos else None)  # fmt: skip
    if primary is not None and not _has_address(primary) and 2 not in used:
        _set_address(primary, 0, 2, 0)
        used.add(2)
        changed = True
    free = (n for n in range(2, 32) if n not in used)
    for el in _in_order(devices, sort_disks=True):
        if _has_address(el) or _kind(el) is None:
            continue
        if el.tag == "controller":
            ctype = el.get("type") or ""
            if ctype == "usb" and (el.get("model") != "piix3-uhci" or _num(el.get("index"))):
                continue  # EHCI with companions, other models: the builder places them
            if ctype in _PIIX3_FUNCTIONS and not _num(el.get("index")):
                _set_address(el, 0, 1, _PIIX3_FUNCTIONS[ctype])
                changed = True
                continue
        slot = next(free, None)
        if slot is None:
            break  # pci.0 is full: the builder adds bridges for the rest
        _set_address(el, 0, slot, 0)
        changed = True
    ide = next((c for c in devices.iterchildren("controller") if c.get("type") == "ide"
                and not _num(c.get("index")) and not _has_address(c)), None)  # fmt: skip
    if ide is not None:
        _set_address(ide, 0, 1, 1)
        changed = True
    if changed:
        domain.devices.attach()
    return changed


def _downstream_spot(topo: _Topology, ctl: Element) -> tuple[int, int]:
    """The first free slot of a switch's upstream port, for a downstream port."""
    for index in sorted(topo.buses):
        bus = topo.buses[index]
        if bus.model == "pcie-switch-upstream-port":
            free = [n for n in range(32) if n not in bus.used]
            if free:
                return index, free[0]
    raise InvalidConfigError(
        f"<controller type='pci' index='{ctl.get('index')}' "
        "model='pcie-switch-downstream-port'>: no upstream port with a free slot to plug it into",
        hint="add a pcie-switch-upstream-port controller or give it an <address>",
    )


def _pcie_spot(topo: _Topology) -> int:
    port = topo.empty_port()
    return port if port is not None else topo.add_root_port()


def _mark_multifunction(topo: _Topology) -> None:
    """``multifunction='on'`` on function 0 of every slot with several functions in use
    (unless the XML says ``off``)."""
    for addr in topo.devices.iter("address"):
        if addr.get("type") != "pci" or addr.get("slot") is None:
            continue
        bus = topo.buses.get(_num(addr.get("bus")))
        if bus is None or _num(addr.get("function")) != 0:
            continue
        if len(bus.used.get(_num(addr.get("slot")), ())) > 1 and addr.get("multifunction") is None:
            addr.set("multifunction", "on")


__all__ = ["complete_domain", "complete_q35", "is_q35"]
