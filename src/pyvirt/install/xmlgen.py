"""Build the domain definitions of an install through the model classes (pure: no I/O).

An install has up to two definitions, like virt-install's: the *final* one (what gets defined,
what ``--print-xml`` prints) and, for ``--cdrom``/``--location``/``--pxe`` installs, the
*install-phase* one the first boot runs with (installer kernel or CD-ROM first,
``on_reboot=destroy`` so the installer's reboot ends the phase).
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from lxml import etree

from pyvirt.errors import InvalidConfigError
from pyvirt.install.osinfo import OsVariant
from pyvirt.install.spec import DiskSpec, InstallSpec, NicSpec
from pyvirt.model.cpu import Cpu, CpuFeature, Topology
from pyvirt.model.devices import (
    Console,
    Controller,
    Disk,
    Graphics,
    Interface,
    Memballoon,
    Serial,
    Video,
)
from pyvirt.model.domain import Domain
from pyvirt.model.guestos import Loader
from pyvirt.model.memory import HugePage, MemoryBacking, Numatune
from pyvirt.model.pcie import is_q35
from pyvirt.model.tune import Cputune, VcpuPin
from pyvirt.model.xmltree import insert_element

TARGET_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd", "fdc": "fd"}
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_CODE_SECURE = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
OVMF_VARS_SECURE = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"


@dataclass
class Inputs:
    """What the service resolved before generating XML (paths checked, media read)."""

    spec: InstallSpec
    variant: OsVariant
    virt_type: str
    name: str
    disks: list[DiskSpec]  # resolved: path (or pool/vol) and format filled in
    nics: list[NicSpec]
    kernel: str | None = None  # installer kernel/initrd from --location
    initrd: str | None = None
    nvram: str | None = None
    seed_iso: str | None = None
    rng: random.Random = field(default_factory=random.SystemRandom)


def random_mac(rng: random.Random, taken: set[str]) -> str:
    """A random address in QEMU's 52:54:00 prefix not in ``taken``."""
    while True:
        mac = "52:54:00:" + ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        if mac not in taken:
            taken.add(mac)
            return mac


def _target(bus: str, used: set[str]) -> str:
    prefix = TARGET_PREFIX.get(bus, "sd")
    for letter in string.ascii_lowercase:
        if prefix + letter not in used:
            used.add(prefix + letter)
            return prefix + letter
    raise InvalidConfigError(f"too many disks on bus '{bus}'")


def _machine(inp: Inputs) -> str:
    return inp.spec.machine or inp.variant.machine


def _cdrom_bus(inp: Inputs) -> str:
    return "sata" if _machine(inp).startswith("q35") or "q35" in _machine(inp) else "ide"


def _disks(dom: Domain, inp: Inputs) -> None:
    used: set[str] = {d.target for d in inp.disks if d.target}
    for spec in inp.disks:
        cd = spec.device in ("cdrom", "floppy")
        bus = spec.bus or (_cdrom_bus(inp) if cd else inp.variant.disk_bus)
        disk = Disk(type="volume" if spec.pool and not spec.path else "file", device=spec.device)
        disk.driver_name = "qemu"
        disk.format = spec.format or ("raw" if cd else None)
        disk.cache, disk.io, disk.discard = spec.cache, spec.io, spec.discard
        if spec.path:
            disk.source_file = spec.path
        elif spec.pool:
            disk.source_pool, disk.source_volume = spec.pool, spec.vol
        disk.target_dev = spec.target or _target(bus, used)
        disk.target_bus = bus
        disk.readonly = spec.readonly or spec.device == "cdrom"
        disk.shareable = spec.shareable
        disk.boot_order = spec.boot_order
        disk.serial = spec.serial
        dom.devices.add(disk)


def _nics(dom: Domain, inp: Inputs) -> None:
    taken = {n.mac.lower() for n in inp.nics if n.mac}
    macs = iter(inp.spec.macs)
    for nic in inp.nics:
        iface = Interface(type=nic.type)
        iface.mac = (nic.mac or next(macs, None) or random_mac(inp.rng, taken)).lower()
        if nic.type == "network":
            iface.source_network = nic.source
        elif nic.type == "bridge":
            iface.source_bridge = nic.source
        iface.target_dev = nic.target
        iface.model = nic.model or inp.variant.nic_model
        dom.devices.add(iface)


def _vcpus(dom: Domain, spec: InstallSpec) -> None:
    v = spec.vcpus
    topo = [v.sockets, v.dies, v.cores, v.threads]
    known = 1
    for n in topo:
        known *= n or 1
    count = v.count or (known if any(topo) else 1)
    maxv = v.maxvcpus or (known if any(topo) and known > count else count)
    if maxv < count:
        raise InvalidConfigError(f"--vcpus: maxvcpus={maxv} is less than the {count} vCPUs")
    dom.vcpu.count = maxv
    dom.vcpu.placement = "static"
    if maxv != count:
        dom.vcpu.current = count
    if v.cpuset:
        dom.vcpu.cpuset = v.cpuset
    if any(topo):
        dies, cores, threads = v.dies or 1, v.cores or 1, v.threads or 1
        sockets = v.sockets or max(1, maxv // (dies * cores * threads))
        if v.sockets and not v.cores:
            cores = max(1, maxv // (sockets * dies * threads))
        if sockets * dies * cores * threads != maxv:
            raise InvalidConfigError(
                f"--vcpus: sockets={sockets} x dies={dies} x cores={cores} x threads={threads} "
                f"is not the {maxv} vCPUs",
                hint="make the topology multiply to the vCPU count (or maxvcpus)",
            )
        cpu = dom.cpu or Cpu()
        cpu.topology = Topology(sockets=sockets, dies=dies, cores=cores, threads=threads)
        dom.cpu = cpu


def _cpu(dom: Domain, inp: Inputs) -> None:
    c = inp.spec.cpu
    if c is None and inp.virt_type != "kvm":
        return
    cpu = dom.cpu or Cpu()
    if c is None:
        cpu.mode = "host-passthrough"
    else:
        cpu.mode = c.mode
        if c.model:
            cpu.model = c.model
        cpu.features = [CpuFeature(policy=p, name=n) for p, n in c.features]
    dom.cpu = cpu


def _os(dom: Domain, inp: Inputs) -> None:
    boot = inp.spec.boot
    dom.os.type = "hvm"
    dom.os.arch = inp.spec.arch or "x86_64"
    dom.os.machine = _machine(inp)
    if boot.kernel:
        dom.os.kernel, dom.os.initrd = boot.kernel, boot.initrd
        dom.os.cmdline = boot.kernel_args
    has_boot_order = any(d.boot_order for d in inp.disks)
    if not has_boot_order:
        default = (
            ["hd", "cdrom"] if inp.spec.cdrom else ["hd", "network"] if inp.spec.pxe else ["hd"]
        )
        dom.os.boot_devs = boot.order or default
    if boot.menu is not None:
        dom.os.bootmenu = boot.menu
    uefi = boot.uefi or inp.variant.firmware == "efi" or boot.loader
    if uefi:
        secure = inp.variant.secure_boot
        dom.os.loader = Loader(
            readonly=True, type="pflash", secure=True if secure else None,
        )  # fmt: skip
        assert dom.os.loader is not None
        dom.os.loader.path = boot.loader or (OVMF_CODE_SECURE if secure else OVMF_CODE)
        dom.os.nvram = inp.nvram
        dom.os.nvram_template = boot.nvram_template or (OVMF_VARS_SECURE if secure else OVMF_VARS)
        if secure:
            dom.features.add("smm")


def _sysinfo(dom: Domain, values: dict[str, str]) -> None:
    root = etree.Element("sysinfo", type="smbios")
    sections: dict[str, etree._Element] = {}
    for key, value in values.items():
        section, _, entry = key.partition(".")
        if section not in ("bios", "system", "baseBoard", "chassis") or not entry:
            raise InvalidConfigError(
                f"--sysinfo: '{key}' is not SECTION.ENTRY",
                hint="e.g. system.manufacturer=ACME,system.serial=123,bios.vendor=X",
            )
        if section not in sections:
            sections[section] = etree.SubElement(root, section)
        etree.SubElement(sections[section], "entry", name=entry).text = value
    insert_element(dom.element, root, Domain.ORDER)
    dom.os.smbios_mode = "sysinfo"


def _tuning(dom: Domain, spec: InstallSpec) -> None:
    if spec.memorybacking:
        mb = MemoryBacking()
        for key, value in spec.memorybacking.items():
            on = value.lower() in ("on", "yes", "true", "1")
            if key in ("hugepages", "hugepages.enable"):
                mb.hugepages_enabled = on
            elif key in ("hugepages.page.size", "hugepages.page0.size"):
                mb.hugepages = [HugePage(size_kib=int(value))]
            elif key in ("source.type", "access.mode", "allocation.mode"):
                setattr(mb, {"source.type": "source_type", "access.mode": "access_mode",
                             "allocation.mode": "allocation_mode"}[key], value)  # fmt: skip
            elif key in ("locked", "nosharepages", "discard"):
                setattr(mb, key, on)
            else:
                raise InvalidConfigError(f"--memorybacking: unknown option '{key}'")
        dom.memory_backing = mb
    if spec.numatune:
        nt = Numatune()
        for key, value in spec.numatune.items():
            if key in ("nodeset", "memory.nodeset"):
                nt.nodeset = value
            elif key in ("mode", "memory.mode"):
                nt.mode = value
            elif key in ("placement", "memory.placement"):
                nt.placement = value
            else:
                raise InvalidConfigError(f"--numatune: unknown option '{key}'")
        dom.numatune = nt
    if spec.cputune:
        ct = Cputune()
        pins: dict[str, dict[str, str]] = {}
        for key, value in spec.cputune.items():
            head, _, tail = key.partition(".")
            if head.startswith("vcpupin") and tail in ("vcpu", "cpuset"):
                pins.setdefault(head, {})[tail] = value
            elif key in ("shares", "period", "quota"):
                setattr(ct, key, int(value))
            elif key == "emulatorpin.cpuset":
                ct.emulatorpin = value
            else:
                raise InvalidConfigError(f"--cputune: unknown option '{key}'")
        ct.vcpupins = [VcpuPin(vcpu=int(p["vcpu"]), cpuset=p.get("cpuset")) for p in pins.values()]
        dom.cputune = ct


def final_domain(inp: Inputs) -> Domain:
    """The definition that gets defined (and printed by ``--print-xml``)."""
    spec = inp.spec
    dom = Domain(type=inp.virt_type, name=inp.name)
    if spec.uuid:
        dom.uuid = spec.uuid
    dom.memory_kib = (spec.memory_mib or inp.variant.min_memory_mib) * 1024
    dom.current_memory_kib = dom.memory_kib
    _vcpus(dom, spec)
    if spec.sysinfo:
        _sysinfo(dom, spec.sysinfo)
    _tuning(dom, spec)
    _os(dom, inp)
    for name in ("acpi", "apic"):
        dom.features.add(name)
    _cpu(dom, inp)
    dom.clock.offset = inp.variant.clock_offset
    dom.on_poweroff, dom.on_reboot, dom.on_crash = "destroy", "restart", "destroy"
    _disks(dom, inp)
    _nics(dom, inp)
    dom.devices.add(Serial(type="pty", target_port=0))
    dom.devices.add(Console(type="pty", target_type="serial", target_port=0))
    for extra in spec.consoles:
        if extra.target_type == "virtio":
            dom.devices.add(Console(type="pty", target_type="virtio", target_port=1))
    g = spec.graphics
    if g is not None and g.type == "vnc":
        dom.devices.add(
            Graphics(type="vnc", port=g.port if g.port else -1, autoport=g.port in (None, -1),
                     listen=g.listen or "127.0.0.1", keymap=g.keymap, passwd=g.password)
        )  # fmt: skip
        dom.devices.add(Video(model_type=inp.variant.video))
    dom.devices.add(Memballoon(model="virtio" if inp.variant.family == "linux" else "none"))
    _pcie_root_ports(dom)
    return dom


#: ``pcie-root-port``s virt-install gives a new q35 guest: the devices take some (define
#: places them as libvirt does), the others stay empty for hot-plug
Q35_ROOT_PORTS = 14


def _pcie_root_ports(dom: Domain) -> None:
    if not is_q35(dom.os.machine) or (dom.os.arch or "x86_64") != "x86_64":
        return
    dom.devices.add(Controller(type="pci", index=0, model="pcie-root"))
    for _ in range(Q35_ROOT_PORTS):
        dom.devices.add(Controller(type="pci", model="pcie-root-port"))


def install_domain(final: Domain, inp: Inputs) -> Domain | None:
    """The install-phase definition, or None when the first boot is the final one."""
    spec = inp.spec
    if spec.import_ or not (spec.cdrom or inp.kernel or spec.pxe):
        return None
    dom = final.copy()
    dom.on_reboot = "destroy"
    if inp.kernel:
        dom.os.kernel, dom.os.initrd = inp.kernel, inp.initrd
        args = spec.extra_args or ""
        if (spec.graphics is None or spec.graphics.type == "none") and "console=" not in args:
            args = (args + " console=ttyS0").strip()
        dom.os.cmdline = args or None
    elif not any(d.boot_order for d in dom.devices.disks):
        first = "cdrom" if spec.cdrom else "network"
        dom.os.boot_devs = [first, *[b for b in dom.os.boot_devs if b != first]]
    return dom
