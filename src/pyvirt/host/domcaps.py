"""libvirt's ``<domainCapabilities>`` XML from what one QEMU binary and this host offer.

Pure: the caller passes the probe of the binary (:class:`~pyvirt.drivers.qemu.probe.QemuOffer`:
CPU models, machines, QOM types, commands), the host's CPU, the firmware descriptors and
whether the host has VFIO; :func:`domain_capabilities` only decides and renders. Every enum
lists a value only when the QOM type (or command) behind it exists in this QEMU.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from pyvirt.host.cpu_features import VENDORS, Baseline
from pyvirt.host.firmware import Descriptor, load_descriptors

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.probe import QemuOffer


def _attr(value: str) -> str:
    """An XML attribute value in single quotes, as libvirt writes them."""
    return "'" + escape(value, {"'": "&apos;"}) + "'"


__all__ = ["HostFacts", "domain_capabilities", "read_firmware"]


def read_firmware(root: Path = Path("/")) -> list[Descriptor]:
    """The firmware descriptors of the host under ``root`` (QEMU's interop spec: a file in
    ``/etc/qemu/firmware`` hides the one of the same name in ``/usr/share/qemu/firmware``;
    unreadable or malformed ones are skipped), as the firmware autoselection reads them."""
    return load_descriptors([root / "etc/qemu/firmware", root / "usr/share/qemu/firmware"])


@dataclass(frozen=True)
class HostFacts:
    """What the host adds: KVM, VFIO, SEV, its CPU for ``host-model``, its firmware."""

    kvm: bool
    vfio: bool
    sev: bool
    host_model: Baseline | None
    firmware: Sequence[Descriptor] = ()


#: (enum value, QOM types of which one must exist); ``None``: always offered
_DISK_BUS = (
    ("ide", ("ide-hd",)), ("fdc", ("floppy", "isa-fdc")), ("scsi", ("scsi-hd",)),
    ("virtio", ("virtio-blk-pci",)), ("usb", ("usb-storage",)), ("sata", ("ahci", "ich9-ahci")),
)  # fmt: skip
_DISK_MODEL = (
    ("virtio", ("virtio-blk-pci",)),
    ("virtio-transitional", ("virtio-blk-pci-transitional",)),
    ("virtio-non-transitional", ("virtio-blk-pci-non-transitional",)),
)
_VIDEO = (
    ("vga", ("VGA",)), ("cirrus", ("cirrus-vga",)), ("virtio", ("virtio-vga", "virtio-gpu-pci")),
    ("none", None), ("bochs", ("bochs-display",)), ("ramfb", ("ramfb",)), ("qxl", ("qxl-vga",)),
)  # fmt: skip
_RNG_MODEL = (
    ("virtio", ("virtio-rng-pci",)),
    ("virtio-transitional", ("virtio-rng-pci-transitional",)),
    ("virtio-non-transitional", ("virtio-rng-pci-non-transitional",)),
)
_RNG_BACKEND = (("random", ("rng-random",)), ("egd", ("rng-egd",)), ("builtin", ("rng-builtin",)))
_SOURCE_TYPE = (
    ("file", ("memory-backend-file",)),
    ("anonymous", ("memory-backend-ram",)),
    ("memfd", ("memory-backend-memfd",)),
)


def _offered(
    types: frozenset[str], table: Iterable[tuple[str, tuple[str, ...] | None]]
) -> list[str]:
    return [v for v, need in table if need is None or any(t in types for t in need)]


def _enum(name: str, values: Iterable[str], indent: str) -> list[str]:
    vals = list(values)
    if not vals:
        return [f"{indent}<enum name='{name}'/>"]
    return [
        f"{indent}<enum name='{name}'>",
        *(f"{indent}  <value>{escape(v)}</value>" for v in vals),
        f"{indent}</enum>",
    ]


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


def domain_capabilities(
    offer: QemuOffer,
    host: HostFacts,
    *,
    virttype: str,
    arch: str,
    machine: str,
) -> str:
    """The ``<domainCapabilities>`` document for ``virttype`` (kvm/qemu) on ``machine``.

    :param machine: a canonical machine name (``pc-q35-7.2``) of ``offer``
    """
    types = frozenset(offer.types)
    commands = frozenset(offer.commands)
    info = next((m for m in offer.machines if m.name == machine), None)
    cpu_max = info.cpu_max if info else 1
    out = [
        "<domainCapabilities>",
        f"  <path>{escape(offer.binary)}</path>",
        f"  <domain>{escape(virttype)}</domain>",
        f"  <machine>{escape(machine)}</machine>",
        f"  <arch>{escape(arch)}</arch>",
        f"  <vcpu max='{cpu_max}'/>",
        f"  <iothreads supported='{_yes('iothread' in types)}'/>",
    ]
    out += _os(host.firmware, arch, machine)
    out += _cpu(offer, host, virttype)
    out.append(f"  <memoryBacking supported='{_yes(bool(_offered(types, _SOURCE_TYPE)))}'>")
    out += _enum("sourceType", _offered(types, _SOURCE_TYPE), "    ")
    out.append("  </memoryBacking>")
    out += _devices(types, commands, host)
    out += [
        "  <features>",
        "    <gic supported='no'/>",
        f"    <vmcoreinfo supported='{_yes('vmcoreinfo' in types)}'/>",
        f"    <genid supported='{_yes('vmgenid' in types)}'/>",
        f"    <backingStoreInput supported='{_yes('blockdev-add' in commands)}'/>",
        f"    <backup supported='{_yes('blockdev-backup' in commands)}'/>",
        f"    <sev supported='{_yes(host.sev and 'sev-guest' in types)}'/>",
        "  </features>",
        "</domainCapabilities>",
    ]
    return "\n".join(out) + "\n"


def _os(firmware: Sequence[Descriptor], arch: str, machine: str) -> list[str]:
    usable = [f for f in firmware if f.boots(arch, machine)]
    uefi = [f for f in usable if "uefi" in f.interfaces]
    kinds = ["bios"] + (["efi"] if uefi else [])
    loader_types = sorted({"pflash" if f.device == "flash" else "rom" for f in usable} | {"rom"})
    secure = ["no"] + (["yes"] if any("secure-boot" in f.features for f in uefi) else [])
    out = ["  <os supported='yes'>", *_enum("firmware", kinds, "    ")]
    out.append("    <loader supported='yes'>")
    out += [f"      <value>{escape(p)}</value>" for p in dict.fromkeys(f.executable for f in uefi)]
    out += _enum("type", loader_types, "      ")
    out += _enum("readonly", ["yes", "no"], "      ")
    out += _enum("secure", secure, "      ")
    out += ["    </loader>", "  </os>"]
    return out


def _cpu(offer: QemuOffer, host: HostFacts, virttype: str) -> list[str]:
    passthrough = virttype == "kvm" and host.kvm
    out = ["  <cpu>", f"    <mode name='host-passthrough' supported='{_yes(passthrough)}'>"]
    out += _enum("hostPassthroughMigratable", ["on", "off"] if passthrough else [], "      ")
    out += ["    </mode>", "    <mode name='maximum' supported='yes'>"]
    out += _enum("maximumMigratable", ["on", "off"], "      ")
    out.append("    </mode>")
    hm = host.host_model
    if hm is None:
        out.append("    <mode name='host-model' supported='no'/>")
    else:
        out.append("    <mode name='host-model' supported='yes'>")
        out.append(f"      <model fallback='forbid'>{escape(hm.model)}</model>")
        if hm.vendor:
            name = {v: k for k, v in VENDORS.items()}.get(hm.vendor, hm.vendor)
            out.append(f"      <vendor>{escape(name)}</vendor>")
        out += [f"      <feature policy='require' name={_attr(f)}/>" for f in hm.features]
        out.append("    </mode>")
    out.append("    <mode name='custom' supported='yes'>")
    for m in offer.models:
        if m.name in ("host", "max", "base"):
            continue
        vendor = {v: k for k, v in VENDORS.items()}.get(offer.vendors.get(m.name, ""), "unknown")
        usable = "no" if m.unavailable else "yes"
        dep = " deprecated='yes'" if m.deprecated else ""
        out.append(
            f"      <model usable='{usable}'{dep} vendor={_attr(vendor)}>{escape(m.name)}</model>"
        )
    out += ["    </mode>", "  </cpu>"]
    return out


def _devices(types: frozenset[str], commands: frozenset[str], host: HostFacts) -> list[str]:
    out = ["  <devices>", "    <disk supported='yes'>"]
    devs = ["disk", "cdrom"] + (["floppy"] if "floppy" in types else []) + ["lun"]
    out += _enum("diskDevice", devs, "      ")
    out += _enum("bus", _offered(types, _DISK_BUS), "      ")
    out += _enum("model", _offered(types, _DISK_MODEL), "      ")
    out.append("    </disk>")
    graphics = [g for g, cmd in (("vnc", "query-vnc"), ("spice", "query-spice")) if cmd in commands]
    graphics += ["egl-headless"] if "egl-headless" in types else []
    graphics += ["dbus"] if "dbus-display" in types else []
    out.append(f"    <graphics supported='{_yes(bool(graphics))}'>")
    out += _enum("type", graphics, "      ")
    out += ["    </graphics>", "    <video supported='yes'>"]
    out += _enum("modelType", _offered(types, _VIDEO), "      ")
    out.append("    </video>")
    subsys = [
        s for s, t in (("usb", "usb-host"), ("pci", "vfio-pci"), ("scsi", "scsi-generic"))
        if t in types and (s != "pci" or host.vfio)
    ]  # fmt: skip
    out.append(f"    <hostdev supported='{_yes(bool(subsys))}'>")
    out += _enum("mode", ["subsystem"], "      ")
    out += _enum("startupPolicy", ["default", "mandatory", "requisite", "optional"], "      ")
    out += _enum("subsysType", subsys, "      ")
    out += _enum("capsType", [], "      ")
    out += _enum("pciBackend", ["default", "vfio"] if host.vfio else [], "      ")
    out.append("    </hostdev>")
    rng = _offered(types, _RNG_MODEL)
    out.append(f"    <rng supported='{_yes(bool(rng))}'>")
    out += _enum("model", rng, "      ")
    out += _enum("backendModel", _offered(types, _RNG_BACKEND), "      ")
    out += ["    </rng>", "  </devices>"]
    return out
