"""Lowering of ``<controller>``: USB, SCSI, SATA, virtio-serial, PCI root ports and bridges.

Controllers QEMU's machine has built in (PIIX IDE and the floppy controller on ``pc``, the
ICH9 AHCI on ``q35``, the PCI root bus) produce no argument. :func:`plan` also adds the
controllers that devices need but the XML does not list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Address, Controller

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build, ControllerSpec


def parse_num(text: str | None) -> int:
    """An XML number, hex (``0x1f``) or decimal; ``None`` is 0."""
    if text is None:
        return 0
    t = text.strip().lower()
    return int(t, 16) if t.startswith("0x") else int(t)


USB_MODELS = {
    "piix3-uhci": "piix3-usb-uhci",
    "piix4-uhci": "piix4-usb-uhci",
    "ehci": "usb-ehci",
    "ich9-ehci1": "ich9-usb-ehci1",
    "nec-xhci": "nec-usb-xhci",
    "qemu-xhci": "qemu-xhci",
}
#: EHCI companion (UHCI) models -> QEMU driver and first port on the master's bus
USB_COMPANIONS = {
    "ich9-uhci1": ("ich9-usb-uhci1", 0),
    "ich9-uhci2": ("ich9-usb-uhci2", 2),
    "ich9-uhci3": ("ich9-usb-uhci3", 4),
}
SCSI_MODELS = {
    "virtio-scsi": "virtio-scsi-pci",
    "virtio-transitional": "virtio-scsi-pci-transitional",
    "virtio-non-transitional": "virtio-scsi-pci-non-transitional",
    "lsilogic": "lsi",
    "lsisas1068": "mptsas1068",
    "lsisas1078": "megasas-gen2",
    "megasas": "megasas",
    "vmpvscsi": "pvscsi",
}
PCI_MODELS = {
    "pcie-root-port": "pcie-root-port",
    "pci-bridge": "pci-bridge",
    "pcie-to-pci-bridge": "pcie-pci-bridge",
    "dmi-to-pci-bridge": "i82801b11-bridge",
    "pcie-switch-upstream-port": "x3130-upstream",
    "pcie-switch-downstream-port": "xio3130-downstream",
}
#: PCIe ports a switch's upstream port can plug into (one per port bus, at slot 0)
PCIE_PORTS = ("pcie-root-port", "pcie-switch-downstream-port")
#: SCSI units per controller, for disks placed by their target name (sda, sdb...)
SCSI_UNITS = {"lsilogic": 7}
DEFAULT_SCSI_UNITS = 16384


def default_model(b: Build, type_: str) -> str | None:
    """pyvirt's model for a controller of *type_* that names none."""
    if type_ == "usb":
        return "qemu-xhci" if b.q35 else "piix3-uhci"
    if type_ == "scsi":
        return "virtio-scsi"
    if type_ == "pci":
        return "pcie-root" if b.q35 else "pci-root"
    return None


def controller_id(b: Build, type_: str, index: int) -> str:
    """The QEMU id (bus name prefix) of controller ``(type_, index)``."""
    if type_ == "usb":
        return "usb" if index == 0 else f"usb{index}"
    if type_ == "sata" and b.q35 and index == 0:
        return "ide"
    if type_ == "pci":
        return b.bus_name(index)
    if type_ == "ide":
        return "ide"
    return f"{type_}{index}"


def is_builtin(b: Build, spec: ControllerSpec) -> bool:
    """Whether the machine already has this controller (so nothing is emitted)."""
    if spec.type == "pci" and spec.model in ("pci-root", "pcie-root"):
        return True
    if spec.type == "ide":
        return not b.q35 and spec.index == 0
    if spec.type == "sata":
        return b.q35 and spec.index == 0
    if spec.type == "fdc":
        return not b.q35 and spec.index == 0
    return spec.type == "usb" and spec.model == "none"


def plan(b: Build) -> dict[tuple[str, int], ControllerSpec]:
    """Every controller of the guest: the XML's ones plus those its devices need."""
    from pyvirt.drivers.qemu.argv.builder import ControllerSpec
    from pyvirt.drivers.qemu.argv.devices.disk import disk_bus, location

    specs: dict[tuple[str, int], ControllerSpec] = {}
    for c in b.domain.devices.controllers:
        ctype = c.type or ""
        index = b.ctl_index[c]
        if is_companion(c) and (ctype, index) in specs:
            continue  # the bus is its EHCI master's
        specs[(ctype, index)] = ControllerSpec(ctype, index, c.model or default_model(b, ctype))

    def need(type_: str, index: int = 0) -> None:
        if (type_, index) not in specs:
            specs[(type_, index)] = ControllerSpec(type_, index, default_model(b, type_), True)

    scsi0 = specs.get(("scsi", 0))
    units = SCSI_UNITS.get(scsi0.model or "", DEFAULT_SCSI_UNITS) if scsi0 else DEFAULT_SCSI_UNITS
    for disk in b.disks:
        bus = disk_bus(disk)
        loc = location(disk, bus, scsi_units=units, q35=b.q35)
        if bus == "ide" and b.q35:
            raise InvalidConfigError(
                f"disk '{disk.target_dev}': machine '{b.machine}' has no IDE controller",
                hint="use bus='sata' on q35",
            )
        if bus in ("scsi", "sata", "ide", "fdc"):
            need(bus, loc.controller)
        elif bus == "usb":
            need("usb")
    usb_hostdevs = any(h.type == "usb" for h in b.domain.devices.hostdevs)
    if usb_hostdevs or any(i.bus == "usb" for i in b.domain.devices.inputs):
        need("usb")
    chardevs = [*b.domain.devices.consoles, *b.domain.devices.channels]
    if any(c.target_type == "virtio" for c in chardevs):
        need("virtio-serial")
    return specs


def lower_spec(b: Build, spec: ControllerSpec, address: Address | None) -> list[str]:
    """The ``-device`` arguments of one controller (none for built-in ones)."""
    if is_builtin(b, spec):
        return []
    cid = controller_id(b, spec.type, spec.index)
    props: dict[str, JsonValue]
    if spec.type == "usb":
        driver = USB_MODELS.get(spec.model or "")
        if driver is None:
            raise UnsupportedError(f"USB controller model '{spec.model}' is not supported")
        props = {"driver": driver, "id": cid}
        if driver == "piix3-usb-uhci" and address is None and not b.q35 and spec.index == 0:
            props.update(bus=b.root_bus, addr="0x1.0x2")  # function 2 of the PIIX3 slot
            return ["-device", json_opts(props)]
    elif spec.type == "scsi":
        driver = SCSI_MODELS.get(spec.model or "")
        if driver is None:
            raise UnsupportedError(f"SCSI controller model '{spec.model}' is not supported")
        props = {"driver": driver, "id": cid}
    elif spec.type == "sata":
        props = {"driver": "ahci", "id": cid}
    elif spec.type == "virtio-serial":
        props = {"driver": "virtio-serial-pci", "id": cid}
    elif spec.type == "fdc":
        return ["-device", json_opts({"driver": "isa-fdc", "id": cid})]
    elif spec.type == "pci":
        driver = PCI_MODELS.get(spec.model or "")
        xml_ctl = xml_controller(b, spec)
        if driver == "pcie-root-port" and xml_ctl is not None:
            driver = xml_ctl.model_name or driver  # e.g. ioh3420
        if driver is None:
            raise UnsupportedError(f"PCI controller model '{spec.model}' is not supported")
        props = {"driver": driver, "id": cid}
        if spec.model == "pcie-root-port":
            props.update(root_port_numbers(b, spec, address))
        elif driver == "pci-bridge":
            props["chassis_nr"] = spec.index
        elif driver == "xio3130-downstream":
            props.update(root_port_numbers(b, spec, address, downstream=True))
        if address is None and spec.model in (
            "pcie-switch-upstream-port",
            "pcie-switch-downstream-port",
        ):
            props.update(switch_port_place(b, spec))
            return ["-device", json_opts(props)]
    else:
        raise UnsupportedError(f"controller type '{spec.type}' is not supported")
    if spec.implicit and spec.index in b.bridge_slots:  # a bridge pyvirt added when pci.0 filled
        props.update(bus=b.root_bus, addr=f"{b.bridge_slots[spec.index]:#x}")
    else:
        props.update(b.pci(address))
    return ["-device", json_opts(props)]


def xml_controller(b: Build, spec: ControllerSpec) -> Controller | None:
    """The ``<controller>`` element behind *spec* (None for one pyvirt adds)."""
    for c in b.domain.devices.controllers:
        if c.type == spec.type and b.ctl_index[c] == spec.index and not is_companion(c):
            return c
    return None


def root_port_numbers(
    b: Build, spec: ControllerSpec, address: Address | None, *, downstream: bool = False
) -> dict[str, JsonValue]:
    """``port`` and ``chassis`` of a ``pcie-root-port`` (or a switch's downstream port): its
    ``<target>``'s, else libvirt's numbering (chassis = index, port = slot * 8 + function of
    its address; a downstream port's port is its slot)."""
    chassis: int | None = None
    port: int | None = None
    c = xml_controller(b, spec)
    if c is not None:
        chassis = c.target_chassis
        port = parse_num(c.target_port) if c.target_port is not None else None
    if port is None:
        if address is not None and address.type == "pci" and address.slot is not None:
            port = parse_num(address.slot) * (1 if downstream else 8) + parse_num(address.function)
        else:
            port = spec.index if downstream else 0x10 + spec.index
    return {"port": port, "chassis": spec.index if chassis is None else chassis}


def switch_port_place(b: Build, spec: ControllerSpec) -> dict[str, JsonValue]:
    """Where a PCIe switch port without an ``<address>`` goes, as libvirt places it: an
    upstream port in the first free root/downstream port, a downstream port in the next free
    slot of the first upstream port with one."""
    pcis = sorted((s for s in b.controllers.values() if s.type == "pci"), key=lambda s: s.index)
    if spec.model == "pcie-switch-upstream-port":
        for port in pcis:
            if port.model in PCIE_PORTS and not b.bus_slots[port.index]:
                b.bus_slots[port.index].add(0)
                return {"bus": b.bus_name(port.index), "addr": "0x0"}
    else:
        for up in pcis:
            if up.model == "pcie-switch-upstream-port":
                free = [n for n in range(32) if n not in b.bus_slots[up.index]]
                if free:
                    b.bus_slots[up.index].add(free[0])
                    return {"bus": b.bus_name(up.index), "addr": f"{free[0]:#x}"}
    raise InvalidConfigError(
        f"PCI controller model '{spec.model}' index {spec.index}: no free port to plug it into",
        hint="add a pcie-root-port (or an upstream port) or give it an <address>",
    )


def is_companion(dev: Controller) -> bool:
    """A USB 1 companion of an EHCI controller: it shares the master's index and bus."""
    return dev.type == "usb" and (
        dev.model in USB_COMPANIONS or dev.element.find("master") is not None
    )


def companion(dev: Controller, b: Build) -> list[str]:
    """The ``-device`` of a UHCI companion, on its master's bus at its first port."""
    driver, first = USB_COMPANIONS.get(dev.model or "", ("", 0))
    if not driver:
        raise UnsupportedError(f"USB companion controller model '{dev.model}' is not supported")
    master = dev.element.find("master")
    if master is not None and master.get("startport") is not None:
        first = int(master.get("startport") or 0)
    props: dict[str, JsonValue] = {
        "driver": driver,
        "masterbus": f"{controller_id(b, 'usb', b.ctl_index[dev])}.0",
        "firstport": first,
    }
    props.update(b.pci(dev.address))
    return ["-device", json_opts(props)]


def implicit(b: Build) -> list[str]:
    """The ``-device`` arguments of the controllers pyvirt adds on its own."""
    args: list[str] = []
    for spec in b.controllers.values():
        if spec.implicit:
            args += lower_spec(b, spec, None)
    return args


@lowers(Controller)
def controller(dev: Controller, b: Build) -> list[str]:
    """Lower one ``<controller>`` of the XML."""
    spec = b.controller(dev.type or "", b.ctl_index[dev])
    if is_companion(dev) and spec is not None and spec.model != dev.model:
        return companion(dev, b)
    assert spec is not None  # every XML controller is in the plan
    return lower_spec(b, spec, dev.address)
