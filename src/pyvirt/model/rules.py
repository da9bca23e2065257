"""libvirt's define-time rules for parts of a definition pyvirt keeps but does not model in full.

libvirt refuses these definitions when it parses them (or cannot build a command line for them
at all); pyvirt refuses them at ``define`` with a message naming the element and the reason.
Every check reads the raw element tree, so elements pyvirt only round-trips are covered too.
:func:`check_libvirt_rules` is called by :func:`pyvirt.model.validate.validate_domain`.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, Problem
from pyvirt.model.cpuset import parse_cpuset
from pyvirt.model.limits import MAX_MEMORY_KIB
from pyvirt.model.units import to_kib
from pyvirt.model.xmlmap import Element, XmlNode

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain

__all__ = ["check_libvirt_rules", "machine_family"]

Check = Callable[["Domain", list[Problem]], None]
_CHECKS: list[Check] = []

#: x86 huge page sizes (KiB): 2 MiB and 1 GiB
X86_HUGEPAGE_KIB = (2048, 1048576)
#: ports of a USB hub (QEMU's usb-hub)
USB_HUB_PORTS = 8
#: the deepest USB port path libvirt accepts (root port + 3 hub levels)
USB_MAX_PORT_DEPTH = 4
#: the most ports an xHCI controller has
XHCI_MAX_PORTS = 15
#: pSeries / ARM only ``<features>``
FOREIGN_FEATURES = {
    "hpt": "pSeries", "htm": "pSeries", "nested-hv": "pSeries", "ccf-assist": "pSeries",
    "cfpc": "pSeries", "sbbc": "pSeries", "ibs": "pSeries", "gic": "ARM",
}  # fmt: skip
#: serial ``<target type>`` / ``<model name>`` values of other architectures
FOREIGN_SERIAL = {"spapr-vio-serial", "system-serial", "sclp-serial", "pl011", "spapr-vty",
                  "sclpconsole", "sclplmconsole"}  # fmt: skip
#: where libvirt puts the unix sockets of channels it names itself
LIBVIRT_CHANNEL_DIR = "/var/lib/libvirt/qemu/channel/target/"


def rule(fn: Check) -> Check:
    """Register a check run by :func:`check_libvirt_rules`."""
    _CHECKS.append(fn)
    return fn


def check_libvirt_rules(d: Domain, problems: list[Problem]) -> None:
    """Append what libvirt would refuse in ``d`` to ``problems``."""
    for check in _CHECKS:
        try:
            check(d, problems)
        except (InvalidConfigError, ValueError):
            continue  # a value that cannot be read is reported by the field checks


def machine_family(d: Domain) -> str:
    """``q35``, ``pc`` (i440fx), ``isapc`` or ``microvm`` for ``<os><type machine>``."""
    machine = d.os.machine or "pc"
    for family in ("q35", "isapc", "microvm"):
        if family in machine:
            return family
    return "pc"


def where(el: Element) -> str:
    """The element's path for a message, like ``<devices>/<disk>[2]``."""
    return XmlNode(el).xpath()


def num(value: str | None) -> int | None:
    """A libvirt number attribute: decimal or ``0x`` hex; ``None`` when absent."""
    if value is None:
        return None
    s = value.strip().lower()
    return int(s, 16) if s.startswith("0x") else int(s, 10)


def _kib(text: str, unit: str) -> int:
    """``text`` (a whole number) in ``unit``, as KiB."""
    return to_kib(int(text.strip()), unit)


def devices(d: Domain, tag: str) -> list[Element]:
    el = d.element.find("devices")
    return [] if el is None else el.findall(tag)


def all_devices(d: Domain) -> Iterator[Element]:
    el = d.element.find("devices")
    if el is not None:
        for child in el:
            if isinstance(child.tag, str):
                yield child


def ctl_index(d: Domain) -> dict[Element, int]:
    """Every ``<controller>`` element's index, numbered as libvirt numbers missing ones."""
    from pyvirt.model.devices.controller import controller_indexes

    return {c.element: i for c, i in controller_indexes(list(d.devices.controllers)).items()}


def has_feature(d: Domain, name: str) -> bool:
    feats = d.element.find("features")
    return feats is not None and feats.find(name) is not None


# -- PCI ---------------------------------------------------------------------------------------


@rule
def pci_addresses(d: Domain, problems: list[Problem]) -> None:
    """Address ranges, one device per address, the chipset's reserved functions on i440fx."""
    family = machine_family(d)
    seen: dict[tuple[int, int, int, int], str] = {}
    for dev in all_devices(d):
        addr = dev.find("address")
        if addr is None or addr.get("type") != "pci" or addr.get("slot") is None:
            continue  # no slot: libvirt picks the address
        path = where(addr)
        values = {}
        for key, top in (("domain", 0xFFFF), ("bus", 0xFF), ("slot", 0x1F), ("function", 7)):
            value = num(addr.get(key)) or 0
            if value > top:
                problems.append(Problem(path, f"{key} {addr.get(key)} is above {top:#x}"))
                return
            values[key] = value
        key4 = (values["domain"], values["bus"], values["slot"], values["function"])
        text = f"{key4[0]:04x}:{key4[1]:02x}:{key4[2]:02x}.{key4[3]:x}"
        if key4 in seen:
            problems.append(Problem(path, f"PCI address {text} is already used by {seen[key4]}"))
        seen[key4] = where(dev)
        if family == "pc" and key4[:3] == (0, 0, 1):
            owner = {1: "ide", 2: "usb"}.get(key4[3])
            if dev.tag != "controller" or dev.get("type") != owner:
                problems.append(
                    Problem(path, f"PCI address {text} belongs to the i440fx chipset (PIIX3)")
                )


PCI_ROOTS = ("pci-root", "pcie-root")


@rule
def pci_controllers(d: Domain, problems: list[Problem]) -> None:
    """Roots, expander buses and DMI bridges where the machine and the topology allow them."""
    family = machine_family(d)
    ctls = [c for c in devices(d, "controller") if c.get("type") == "pci"]
    if not ctls:
        return
    index = ctl_index(d)
    models = {index[c]: c.get("model") for c in ctls}
    cells = len(d.element.findall("cpu/numa/cell"))
    on_root = 0
    for c in ctls:
        model = c.get("model") or ""
        path = where(c)
        addr = c.find("address")
        bus = num(addr.get("bus")) if addr is not None and addr.get("type") == "pci" else None
        if model in PCI_ROOTS:
            if addr is not None:
                problems.append(Problem(path, f"a {model} controller cannot have an <address>"))
            if (num(c.get("index")) or 0) != 0:
                problems.append(Problem(path, f"a {model} controller must have index 0"))
            want = "pcie-root" if family == "q35" else "pci-root"
            if family in ("q35", "pc") and model != want:
                problems.append(Problem(path, f"machine '{family}' needs model='{want}'"))
            continue
        if bus is None or bus == 0:
            on_root += 1
        if model == "pci-expander-bus" and family != "pc":
            problems.append(Problem(path, "pci-expander-bus needs an i440fx (pc) machine"))
        if model == "pcie-expander-bus" and family != "q35":
            problems.append(Problem(path, "pcie-expander-bus needs a q35 machine"))
        if model in ("pci-expander-bus", "pcie-expander-bus", "dmi-to-pci-bridge") and bus:
            parent = models.get(bus, "?")
            problems.append(
                Problem(path, f"{model} must sit on the root bus (bus 0), not on {parent} {bus}")
            )
        node = c.find("target/node")
        if node is not None and node.text is not None and int(node.text) >= cells:
            problems.append(
                Problem(
                    path + "/<target>/<node>", f"NUMA node {node.text} is not a <cpu>/<numa> cell"
                )
            )
    if family == "q35" and on_root > 29 * 8:
        problems.append(
            Problem("<devices>/<controller>", f"{on_root} PCI controllers do not fit on pcie-root")
        )


# -- USB ---------------------------------------------------------------------------------------

USB_DEVICES = ("input", "hub", "hostdev", "redirdev", "smartcard")


def _usb_users(d: Domain) -> Iterator[Element]:
    """Devices that sit on a USB bus."""
    for dev in all_devices(d):
        addr = dev.find("address")
        on_usb = addr is not None and addr.get("type") == "usb"
        if dev.tag in ("input", "redirdev"):
            on_usb = on_usb or dev.get("bus") == "usb"
        if on_usb or dev.tag == "hub" or (dev.tag == "hostdev" and dev.get("type") == "usb"):
            yield dev


@rule
def usb_controllers(d: Domain, problems: list[Problem]) -> None:
    """USB disabled means no USB at all; companions need their EHCI master; port counts."""
    ctls = [c for c in devices(d, "controller") if c.get("type") == "usb"]
    if not ctls and machine_family(d) != "isapc":
        return
    idx = ctl_index(d)
    if any(c.get("model") == "none" for c in ctls):
        for c in ctls:
            if c.get("model") != "none":
                problems.append(Problem(where(c), "USB is disabled by a model='none' controller"))
        for dev in _usb_users(d):
            problems.append(
                Problem(where(dev), "needs a USB bus, but USB is disabled (model='none')")
            )

    def companion(c: Element) -> bool:
        return c.find("master") is not None or (c.get("model") or "").startswith("ich9-uhci")

    masters = {idx[c] for c in ctls if not companion(c)}
    for c in ctls:
        index = idx[c]
        if companion(c) and index not in masters:
            problems.append(
                Problem(where(c) + "/<master>", f"no master USB controller with index {index}")
            )
        ports = num(c.get("ports"))
        model = c.get("model") or ""
        if ports is not None and "xhci" in model and ports > XHCI_MAX_PORTS:
            problems.append(
                Problem(where(c), f"'{model}' has at most {XHCI_MAX_PORTS} ports, not {ports}")
            )
    if machine_family(d) == "isapc":
        for c in devices(d, "controller"):
            if (
                c.get("type") in ("usb", "pci", "scsi", "sata", "virtio-serial")
                and c.get("model") != "none"
            ):
                problems.append(
                    Problem(where(c), "machine 'isapc' has no PCI bus for this controller")
                )


@rule
def usb_addresses(d: Domain, problems: list[Problem]) -> None:
    """Each USB address names an existing bus, a valid port path and is used once."""
    ctls = [c for c in devices(d, "controller") if c.get("type") == "usb"]
    idx = ctl_index(d)
    buses = {idx[c] for c in ctls} or {0}
    hubs: set[tuple[int, str]] = set()
    placed: list[tuple[Element, int, str]] = []
    for dev in all_devices(d):
        addr = dev.find("address")
        if addr is None or addr.get("type") != "usb":
            continue
        bus = num(addr.get("bus")) or 0
        if bus not in buses:
            problems.append(
                Problem(where(addr), f"USB bus {bus} has no controller with that index")
            )
            continue
        port = addr.get("port")
        if port is None:
            continue
        parts = port.split(".")
        if len(parts) > USB_MAX_PORT_DEPTH or not all(p.isdigit() and int(p) > 0 for p in parts):
            problems.append(Problem(where(addr), f"USB port '{port}' is not a valid port path"))
            continue
        placed.append((addr, bus, port))
        if dev.tag == "hub":
            hubs.add((bus, port))
    used: set[tuple[int, str]] = set()
    for addr, bus, port in placed:
        if (bus, port) in used:
            problems.append(Problem(where(addr), f"USB bus {bus} port {port} is used twice"))
        used.add((bus, port))
        parent, _, last = port.rpartition(".")
        if parent and (bus, parent) not in hubs:
            problems.append(
                Problem(where(addr), f"USB port {port}: there is no hub at port {parent}")
            )
        elif parent and int(last) > USB_HUB_PORTS:
            problems.append(
                Problem(where(addr), f"USB port {port}: a hub has only {USB_HUB_PORTS} ports")
            )


# -- CPU, tuning, memory -----------------------------------------------------------------------


@rule
def cpu_details(d: Domain, problems: list[Problem]) -> None:
    """``<cache>`` and ``<maxphysaddr>`` modes as QEMU can honour them."""
    cpu = d.element.find("cpu")
    if cpu is None:
        return
    mode = cpu.get("mode") or "custom"
    cache = cpu.find("cache")
    if cache is not None:
        path = where(cache)
        cmode, level = cache.get("mode"), cache.get("level")
        if cmode == "emulate" and level not in (None, "3"):
            problems.append(Problem(path, "mode 'emulate' works only with level='3'"))
        if cmode == "passthrough" and level is not None:
            problems.append(Problem(path, "mode 'passthrough' takes no level"))
        if cmode == "passthrough" and mode not in ("host-passthrough", "maximum"):
            problems.append(
                Problem(path, f"mode 'passthrough' needs a host-passthrough CPU, not '{mode}'")
            )
    phys = cpu.find("maxphysaddr")
    if phys is not None and phys.get("mode") == "passthrough" and phys.get("bits") is not None:
        problems.append(Problem(where(phys), "bits cannot be given with mode='passthrough'"))


def _ids(spec: str) -> set[int]:
    return set(parse_cpuset(spec, what="ids"))


@rule
def cputune_sched(d: Domain, problems: list[Problem]) -> None:
    """``vcpusched``/``iothreadsched``: ids that exist, ranges that do not overlap."""
    tune = d.element.find("cputune")
    if tune is None:
        return
    iothreads = {
        int(x) for x in (el.get("id") for el in d.element.findall("iothreadids/iothread")) if x
    }
    if not iothreads and d.iothreads:
        iothreads = set(range(1, d.iothreads + 1))
    for tag, attr_name, known in (
        ("vcpusched", "vcpus", None),
        ("iothreadsched", "iothreads", iothreads),
    ):
        taken: set[int] = set()
        for el in tune.findall(tag):
            spec = el.get(attr_name)
            if spec is None:
                continue
            ids = _ids(spec)
            if ids & taken:
                problems.append(Problem(where(el), f"{attr_name} '{spec}' overlap another <{tag}>"))
            taken |= ids
            missing = sorted(ids - known) if known is not None else []
            if missing:
                problems.append(Problem(where(el), f"iothread {missing[0]} does not exist"))


@rule
def memory_rules(d: Domain, problems: list[Problem]) -> None:
    """Huge page sizes of x86, NUMA cell sizes, memory devices' nodes and address ranges."""
    for page in d.element.findall("memoryBacking/hugepages/page"):
        kib = _kib(page.get("size") or "0", page.get("unit") or "KiB")
        if kib not in X86_HUGEPAGE_KIB:
            problems.append(
                Problem(where(page), f"size {kib} KiB is not an x86 huge page size (2 MiB, 1 GiB)")
            )
    cells = d.cpu.numa_cells if d.cpu is not None else []
    for cell in cells:
        if (cell.memory_kib or 0) > MAX_MEMORY_KIB:
            problems.append(Problem(cell.xpath(), "memory is larger than the 16 TiB limit"))
    ranges: list[tuple[int, int, Element]] = []
    for mem in devices(d, "memory"):
        node = mem.find("target/node")
        if node is not None and node.text and int(node.text) >= max(len(cells), 1):
            problems.append(
                Problem(
                    where(node), f"guest NUMA node {node.text} does not exist ({len(cells)} cells)"
                )
            )
        base = mem.find("target/address")
        size = mem.find("target/size")
        if base is not None and base.get("base") and size is not None and size.text:
            start = num(base.get("base")) or 0
            ranges.append((start, start + _kib(size.text, size.get("unit") or "KiB") * 1024, mem))
    ranges.sort(key=lambda r: r[0])
    for (_, end, _), (start, _, el) in itertools.pairwise(ranges):
        if start < end:
            problems.append(
                Problem(where(el), f"address {start:#x} overlaps another memory device")
            )


@rule
def numatune_rules(d: Domain, problems: list[Problem]) -> None:
    """Per-node bindings need a static placement."""
    tune = d.element.find("numatune")
    if tune is None:
        return
    mem = tune.find("memory")
    auto = (mem is not None and mem.get("placement") == "auto") or (
        mem is not None
        and mem.get("nodeset") is None
        and d.element.find("vcpu[@placement='auto']") is not None
    )
    for node in tune.findall("memnode"):
        if auto:
            problems.append(Problem(where(node), "per-node binding needs placement='static'"))


# -- firmware, features, sysinfo --------------------------------------------------------------


@rule
def firmware_rules(d: Domain, problems: list[Problem]) -> None:
    """Loader, NVRAM and firmware features that fit together."""
    os_el = d.element.find("os")
    if os_el is None:
        return
    firmware = os_el.get("firmware")
    loader = os_el.find("loader")
    nvram = os_el.find("nvram")
    pflash = (loader is not None and loader.get("type") == "pflash") or firmware == "efi"
    if firmware == "bios" and nvram is not None:
        problems.append(Problem(where(nvram), "firmware 'bios' has no NVRAM"))
    if loader is not None:
        path = where(loader)
        stateless = loader.get("stateless")
        if stateless == "no" and not pflash:
            problems.append(Problem(path, "stateless='no' (NVRAM) needs an EFI pflash loader"))
        if stateless == "yes" and nvram is not None:
            what = "an NVRAM template" if nvram.get("template") else "NVRAM"
            problems.append(Problem(where(nvram), f"{what} is not allowed with a stateless loader"))
        if loader.get("type") == "pflash" and not (loader.text or "").strip() and not firmware:
            problems.append(Problem(path, "a pflash loader needs a path (or <os firmware='efi'>)"))
        fmt = loader.get("format")
        nfmt = nvram.get("format") if nvram is not None else None
        if fmt and nfmt and fmt != nfmt:
            problems.append(Problem(path, f"format '{fmt}' differs from <nvram> format '{nfmt}'"))
    feats = {f.get("name"): f.get("enabled") for f in os_el.findall("firmware/feature")}
    if feats.get("enrolled-keys") == "yes" and feats.get("secure-boot") == "no":
        problems.append(
            Problem(where(os_el) + "/<firmware>", "enrolled-keys needs secure-boot enabled")
        )
    uefi = firmware == "efi" or (loader is not None and loader.get("type") == "pflash")
    if uefi and not has_feature(d, "acpi"):
        problems.append(Problem("<features>", "UEFI needs <acpi/> on x86"))


@rule
def feature_rules(d: Domain, problems: list[Problem]) -> None:
    """Features of other architectures, SMM TSEG."""
    feats = d.element.find("features")
    if feats is None:
        return
    for el in feats:
        if isinstance(el.tag, str) and el.tag in FOREIGN_FEATURES:
            problems.append(
                Problem(where(el), f"a {FOREIGN_FEATURES[el.tag]} feature, not for x86 machines")
            )
    tseg = feats.find("smm/tseg")
    if tseg is not None:
        if machine_family(d) != "q35":
            problems.append(Problem(where(tseg), "SMM TSEG needs a q35 machine"))
        elif _kib(tseg.text or "0", tseg.get("unit") or "MiB") % 1024:
            problems.append(Problem(where(tseg), "SMM TSEG size must be a multiple of 1 MiB"))


DATE_RE = re.compile(r"(0[1-9]|1[0-2])/(0[1-9]|[12]\d|3[01])/(\d{2}|\d{4})")


@rule
def sysinfo_rules(d: Domain, problems: list[Problem]) -> None:
    """SMBIOS date format and the system UUID."""
    for entry in d.element.findall("sysinfo/bios/entry[@name='date']"):
        if not DATE_RE.fullmatch((entry.text or "").strip()):
            problems.append(Problem(where(entry), f"date '{entry.text}' is not mm/dd/yy[yy]"))
    for entry in d.element.findall("sysinfo/system/entry[@name='uuid']"):
        value = (entry.text or "").strip().lower().replace("-", "")
        if value != d.uuid.strip().lower().replace("-", ""):
            problems.append(Problem(where(entry), f"uuid '{entry.text}' differs from <uuid>"))


@rule
def seclabel_rules(d: Domain, problems: list[Problem]) -> None:
    """One label per security model; several labels each name their model."""
    if next(d.element.iter("seclabel"), None) is None:
        return
    top = d.element.findall("seclabel")
    models: set[str] = set()
    for el in top:
        model = el.get("model")
        if model is None and len(top) > 1:
            problems.append(Problem(where(el), "model is required when there are several labels"))
        elif model in models:
            problems.append(Problem(where(el), f"a label for model '{model}' is already given"))
        if model:
            models.add(model)
    for dev in all_devices(d):
        for holder in (dev, dev.find("source")):
            if holder is None:
                continue
            seen: set[str] = set()
            for el in holder.findall("seclabel"):
                model = el.get("model") or ""
                if model in seen:
                    problems.append(
                        Problem(where(el), f"a label for model '{model}' is already given")
                    )
                seen.add(model)
                if el.get("relabel") == "yes" and el.find("label") is None and model != "dac":
                    problems.append(Problem(where(el), "relabel='yes' needs a <label>"))


# -- devices -----------------------------------------------------------------------------------

DRIVE_BUSES = ("ide", "scsi", "sata", "fdc")
SECRET_TYPES = {"iscsi": "iscsi", "rbd": "ceph"}


@rule
def disk_rules(d: Domain, problems: list[Problem]) -> None:
    """Formats, address types, SCSI-only fields, auth and encryption given once."""
    for disk in devices(d, "disk"):
        path = where(disk)
        target = disk.find("target")
        bus = target.get("bus") if target is not None else None
        driver = disk.find("driver")
        fmt = driver.get("type") if driver is not None else None
        if fmt in ("dir", "directory"):
            problems.append(
                Problem(
                    path + "/<driver>", "type 'dir' is not an image format; use <disk type='dir'>"
                )
            )
        source = disk.find("source")
        enc = [
            e
            for e in (
                disk.find("encryption"),
                source.find("encryption") if source is not None else None,
            )
            if e is not None
        ]
        if len(enc) > 1:
            problems.append(Problem(path, "<encryption> is given both in <disk> and in <source>"))
        qemu_enc = [e for e in enc if e.get("engine") != "librbd"]
        if qemu_enc and fmt not in (None, "raw", "qcow2"):
            problems.append(Problem(path, f"encryption works only with raw and qcow2, not '{fmt}'"))
        for e in enc:
            if e.get("format") == "luks" and e.find("cipher") is not None:
                problems.append(Problem(where(e) + "/<cipher>", "a luks disk takes no <cipher>"))
        addr = disk.find("address")
        if bus in DRIVE_BUSES and addr is not None and addr.get("type") not in (None, "drive"):
            problems.append(
                Problem(
                    where(addr),
                    f"type '{addr.get('type')}' does not fit bus '{bus}'; use type='drive'",
                )
            )
        if bus != "scsi":
            for tag in ("vendor", "product"):
                if disk.find(tag) is not None:
                    problems.append(Problem(path + f"/<{tag}>", f"only SCSI disks have a {tag}"))
        auths = [
            a
            for a in (disk.find("auth"), source.find("auth") if source is not None else None)
            if a is not None
        ]
        if len(auths) > 1:
            problems.append(Problem(path, "<auth> is given both in <disk> and in <source>"))
        protocol = source.get("protocol") if source is not None else None
        for auth in auths:
            secret = auth.find("secret")
            if secret is None:
                continue
            stype = secret.get("type")
            want = SECRET_TYPES.get(protocol or "")
            if stype is None:
                problems.append(Problem(where(secret), "type is required (iscsi or ceph)"))
            elif want is not None and stype != want:
                problems.append(
                    Problem(
                        where(secret),
                        f"type '{stype}' does not fit protocol '{protocol}'; use '{want}'",
                    )
                )


def _drive_addresses(d: Domain) -> Iterator[tuple[tuple[int, int, int, int], Element, str]]:
    """SCSI drive addresses: explicit ones, and the one libvirt gives an sdX disk."""
    for disk in devices(d, "disk"):
        target = disk.find("target")
        if target is None or target.get("bus") != "scsi":
            continue
        addr = disk.find("address")
        dev = target.get("dev") or ""
        if addr is not None and addr.get("type") == "drive":
            key = tuple(num(addr.get(k)) or 0 for k in ("controller", "bus", "target", "unit"))
        elif re.fullmatch(r"sd[a-g]", dev):
            key = (0, 0, 0, ord(dev[2]) - ord("a"))
        else:
            continue
        yield key, disk, f"disk '{dev}'"  # type: ignore[misc]
    for hd in devices(d, "hostdev"):
        addr = hd.find("address")
        if hd.get("type") == "scsi" and addr is not None and addr.get("type") == "drive":
            key = tuple(num(addr.get(k)) or 0 for k in ("controller", "bus", "target", "unit"))
            yield key, hd, "a SCSI host device"  # type: ignore[misc]


@rule
def drive_conflicts(d: Domain, problems: list[Problem]) -> None:
    """One SCSI disk or host device per drive address."""
    seen: dict[tuple[int, int, int, int], str] = {}
    for key, el, what in _drive_addresses(d):
        if key in seen:
            text = "controller={} bus={} target={} unit={}".format(*key)
            problems.append(
                Problem(where(el), f"drive address {text} is already used by {seen[key]}")
            )
        seen[key] = what


def _hostdev_source(hd: Element) -> tuple[str, ...] | None:
    src = hd.find("source")
    if src is None:
        return None
    kind = hd.get("type") or ""
    addr = src.find("address")
    if kind == "mdev":
        return (kind, addr.get("uuid") or "") if addr is not None else None
    if kind == "scsi":
        adapter = src.find("adapter")
        if adapter is None or addr is None:
            return None
        return (
            kind,
            adapter.get("name") or "",
            *(addr.get(k) or "0" for k in ("bus", "target", "unit")),
        )
    if kind == "usb":
        if addr is not None:
            return (kind, addr.get("bus") or "", addr.get("device") or "")
        vendor, product = src.find("vendor"), src.find("product")
        if vendor is not None and product is not None:
            return (kind, vendor.get("id") or "", product.get("id") or "")
        return None
    if kind == "pci" and addr is not None:
        return (kind, *(str(num(addr.get(k)) or 0) for k in ("domain", "bus", "slot", "function")))
    return None


@rule
def hostdev_rules(d: Domain, problems: list[Problem]) -> None:
    """Each host device once; mdev sources, displays and addresses; vhost-scsi boot; zPCI."""
    seen: set[tuple[str, ...]] = set()
    graphics = devices(d, "graphics")
    ramfb = 0
    for hd in devices(d, "hostdev"):
        path = where(hd)
        src = _hostdev_source(hd)
        if src is not None and src in seen:
            problems.append(Problem(path, f"this {src[0]} host device is already assigned"))
        if src is not None:
            seen.add(src)
        kind = hd.get("type")
        addr = hd.find("address")
        if kind == "mdev":
            saddr = hd.find("source/address")
            if saddr is not None and not saddr.get("uuid"):
                problems.append(Problem(where(saddr), "an mdev source needs a uuid"))
            if addr is not None and addr.get("type") != "pci" and hd.get("model") == "vfio-pci":
                problems.append(
                    Problem(where(addr), f"type '{addr.get('type')}' does not fit a vfio-pci mdev")
                )
            if hd.get("display") == "on" and not graphics:
                problems.append(Problem(path, "display='on' needs a <graphics> device"))
            if hd.get("ramfb") == "on":
                ramfb += 1
                if ramfb > 1:
                    problems.append(Problem(path, "only one mdev can have ramfb='on'"))
        if kind == "scsi_host" and hd.find("boot") is not None:
            problems.append(Problem(path + "/<boot>", "a vhost-scsi device cannot boot"))
        if addr is not None and addr.find("zpci") is not None:
            problems.append(Problem(where(addr) + "/<zpci>", "zPCI exists only on s390x"))


@rule
def interface_rules(d: Domain, problems: list[Problem]) -> None:
    """Port forwards need passt; vhost-user has no tap device."""
    for nic in devices(d, "interface"):
        backend = nic.find("backend")
        pf = nic.find("portForward")
        if pf is not None and (
            nic.get("type") != "user" or backend is None or backend.get("type") != "passt"
        ):
            problems.append(
                Problem(
                    where(pf), "works only with <interface type='user'> and <backend type='passt'>"
                )
            )
        if nic.get("type") == "vhostuser" and backend is not None and backend.get("tap"):
            problems.append(Problem(where(backend), "a vhostuser interface has no tap device"))


@rule
def chardev_rules(d: Domain, problems: list[Problem]) -> None:
    """Reconnect only for client sockets; EGD backends need a socket to connect to."""
    for dev in all_devices(d):
        if dev.tag not in ("serial", "console", "channel", "parallel"):
            continue
        src = dev.find("source")
        if src is not None and src.find("reconnect[@enabled='yes']") is not None:
            path = src.get("path") or ""
            if src.get("mode") != "connect" or path.startswith(LIBVIRT_CHANNEL_DIR):
                problems.append(
                    Problem(
                        where(src) + "/<reconnect>",
                        "reconnect needs mode='connect' on a path of your own",
                    )
                )
        if dev.tag == "serial":
            target = dev.find("target")
            names = {target.get("type") if target is not None else None}
            model = dev.find("target/model")
            names.add(model.get("name") if model is not None else None)
            for name in sorted(n for n in names if n in FOREIGN_SERIAL):
                problems.append(
                    Problem(where(dev) + "/<target>", f"'{name}' is not an x86 serial device")
                )
    for rng in devices(d, "rng"):
        backend = rng.find("backend")
        if backend is not None and backend.get("model") == "egd" and backend.get("type") == "unix":
            src = backend.find("source")
            if src is None or not src.get("path"):
                problems.append(
                    Problem(where(backend), "a unix EGD backend needs <source path=...>")
                )


@rule
def display_rules(d: Domain, problems: list[Problem]) -> None:
    """Graphics combinations QEMU can run, video devices, inputs."""
    graphics = devices(d, "graphics")
    types = [g.get("type") for g in graphics]
    if "egl-headless" in types:
        for g in graphics:
            if g.get("type") not in ("egl-headless", "vnc", "spice"):
                problems.append(
                    Problem(
                        where(g),
                        f"'{g.get('type')}' cannot go with egl-headless (vnc or spice can)",
                    )
                )
            elif g.find("gl[@enable='yes']") is not None:
                problems.append(Problem(where(g) + "/<gl>", "egl-headless already gives OpenGL"))
    videos = devices(d, "video")
    primaries = 0
    for v in videos:
        model = v.find("model")
        vtype = model.get("type") if model is not None else None
        if vtype == "none" and len(videos) > 1:
            problems.append(Problem(where(v), "a 'none' video must be the only video device"))
        if model is not None and model.get("primary") == "yes":
            primaries += 1
            if primaries > 1:
                problems.append(Problem(where(model), "only one video device can be primary"))
        if vtype == "ramfb" and v.find("address") is not None:
            problems.append(Problem(where(v) + "/<address>", "a ramfb video has no address"))
    for inp in devices(d, "input"):
        imodel = inp.get("model") or ""
        if "transitional" in imodel and inp.get("type") != "passthrough":
            problems.append(
                Problem(where(inp), f"model '{imodel}' works only for type='passthrough'")
            )


@rule
def misc_device_rules(d: Domain, problems: list[Problem]) -> None:
    """IOMMU, shared memory, TPM, virtiofs."""
    family = machine_family(d)
    for iommu in devices(d, "iommu"):
        model = iommu.get("model")
        path = where(iommu)
        if model == "intel" and family != "q35":
            problems.append(Problem(path, "model 'intel' needs a q35 machine"))
        if model == "virtio":
            if family != "q35":
                problems.append(Problem(path, "model 'virtio' needs a q35 machine"))
            if not has_feature(d, "acpi"):
                problems.append(Problem(path, "model 'virtio' needs <acpi/> in <features>"))
            addr = iommu.find("address")
            if addr is not None and addr.get("type") != "pci":
                problems.append(Problem(where(addr), "a virtio IOMMU needs a PCI address"))
            elif addr is not None and num(addr.get("bus")):
                problems.append(Problem(where(addr), "a virtio IOMMU must sit on bus 0"))
    for shm in devices(d, "shmem"):
        path = where(shm)
        addr = shm.find("address")
        if addr is not None and addr.get("type") != "pci":
            problems.append(Problem(where(addr), "a shmem device needs a PCI address"))
        size = shm.find("size")
        if size is not None and size.text:
            kib = _kib(size.text, size.get("unit") or "M")
            if kib < 1024:
                problems.append(Problem(where(size), "shmem size must be at least 1 MiB"))
            elif kib & (kib - 1):
                problems.append(Problem(where(size), "shmem size must be a power of two"))
        if shm.find("msi") is not None and shm.find("server") is None:
            problems.append(Problem(path + "/<msi>", "msi works only with a <server>"))
    for tpm in devices(d, "tpm"):
        if tpm.find("backend") is None:
            problems.append(Problem(where(tpm), "a <backend> is required"))
    for fs in devices(d, "filesystem"):
        driver = fs.find("driver")
        if (
            driver is not None
            and driver.get("type") == "virtiofs"
            and fs.find("readonly") is not None
        ):
            problems.append(Problem(where(fs) + "/<readonly>", "virtiofs cannot be read-only"))
