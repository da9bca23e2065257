"""Assembly of a QEMU command line from a domain: section order, aliases, bus allocation.

:func:`build_argv` walks the domain in a fixed order (machine, CPU and memory, monitors,
clock and boot, then every device kind, then sandboxing). :class:`Build` is the state of one
build, shared by the lowerings: it hands out aliases (``net0``, ``ide0-0-1``...), PCI slots on
the root bus (``pci.0`` for ``pc``, ``pcie.0`` for ``q35``), boot indexes, and knows which
controllers exist, including those pyvirt adds implicitly (a ``virtio-scsi-pci`` for SCSI disks,
an ``ahci`` for SATA disks on ``pc``, a ``virtio-serial-pci`` for virtio consoles).
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyvirt.drivers.qemu.argv import memory, system
from pyvirt.drivers.qemu.argv.context import DEFAULT_EMULATOR, ArgvContext
from pyvirt.drivers.qemu.argv.devices import ORDER, chardev, controller, disk, graphics
from pyvirt.drivers.qemu.argv.opts import JsonValue, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowering_for
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Address, Controller, Disk
from pyvirt.model.devices.base import Device
from pyvirt.model.devices.controller import controller_indexes
from pyvirt.model.domain import Domain
from pyvirt.model.pcie import complete_domain

SANDBOX = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"
#: QEMU 7.2 installs its seccomp filter before -daemonize forks and calls setsid(), so with
#: -daemonize the spawn and elevateprivileges filters would kill QEMU itself (SIGSYS)
SANDBOX_DAEMONIZED = "on,obsolete=deny,resourcecontrol=deny"


def parse_num(text: str | int | None, default: int = 0) -> int:
    """Parse an XML number that may be hex (``0x1f``) or decimal; ``None`` gives *default*."""
    if text is None:
        return default
    if isinstance(text, int):
        return text
    t = text.strip().lower()
    return int(t, 16) if t.startswith("0x") else int(t)


class NoFreeSlotError(InvalidConfigError):
    """The root PCI bus (and any bridge pyvirt added) has no free slot."""


#: the most pci-bridges pyvirt adds on its own (each gives 31 slots)
MAX_AUTO_BRIDGES = 8


@dataclass(frozen=True)
class ControllerSpec:
    """A controller the guest gets, explicit in the XML or added by pyvirt.

    :ivar type: ``scsi``, ``sata``, ``usb``, ``virtio-serial``, ``pci``...
    :ivar index: the controller index
    :ivar model: the model, resolved to pyvirt's default when the XML has none
    :ivar implicit: ``True`` when pyvirt adds it (no ``<controller>`` in the XML)
    """

    type: str
    index: int
    model: str | None
    implicit: bool = False


class Build:
    """Mutable state of one :func:`build_argv` call, passed to every lowering."""

    def __init__(self, domain: Domain, ctx: ArgvContext, *, bridges: int = 0) -> None:
        self.domain = domain
        self.ctx = ctx
        self.machine = domain.os.machine or "pc"
        self.q35 = "q35" in self.machine
        self.root_bus = "pcie.0" if self.q35 else "pci.0"
        self._aliases: dict[object, str] = {}
        self._taken_aliases: set[str] = set()
        self._counters: collections.Counter[str] = collections.Counter()
        # slot 0 is the host bridge; 1 is PIIX3 (pc), 0x1f is ICH9 (q35)
        self._used_slots: set[int] = {0, 0x1F} if self.q35 else {0, 1}
        self.disks = disk.sorted_disks(domain.devices.disks)
        #: slots taken on each PCI bus other than the root bus (bus number -> slots)
        self.bus_slots: dict[int, set[int]] = collections.defaultdict(set)
        #: root slot of each pci-bridge pyvirt added (bridge index -> slot)
        self.bridge_slots: dict[int, int] = {}
        self._reserve_explicit_slots()
        #: every <controller>'s index, numbered as libvirt numbers those without one
        self.ctl_index = controller_indexes(list(domain.devices.controllers))
        self._video_slot = self._reserve_primary_video_slot()
        self.boot_index: dict[object, int] = _boot_indexes(domain, self.disks)
        self.controllers: dict[tuple[str, int], ControllerSpec] = controller.plan(self)
        self.fdc_bootindex: dict[int, int] = {}
        #: pci-bridges pyvirt adds on i440fx when pci.0 is full (bus index, in order of use)
        self._bridges: list[int] = [self._add_bridge() for _ in range(bridges)]

    # -- aliases -----------------------------------------------------------------------------
    def alias(self, dev: object, prefix: str, *, fixed: str | None = None) -> str:
        """Return the alias (QEMU ``id``) of *dev*: its XML ``<alias>``, else *fixed*, else
        *prefix* followed by the next free number for that prefix.

        The same device always gets the same alias within one build, and the alias is written
        into the device's ``<alias name=.../>`` so the live XML names every device's QEMU id
        (as libvirt's does): hot-plug then picks ids that are really free, and a rebuild from
        the live XML keeps the same ids.
        """
        if dev in self._aliases:
            return self._aliases[dev]
        user: str | None = getattr(dev, "alias", None)
        name = user or fixed
        if name is None or name in self._taken_aliases:
            while True:
                name = f"{prefix}{self._counters[prefix]}"
                self._counters[prefix] += 1
                if name not in self._taken_aliases:
                    break
        self._aliases[dev] = name
        self._taken_aliases.add(name)
        if isinstance(dev, Device) and user != name:
            dev.alias = name
        return name

    def counter(self, prefix: str) -> int:
        """Return the next number for *prefix* (for ids that belong to no device)."""
        n = self._counters["#" + prefix]
        self._counters["#" + prefix] += 1
        return n

    # -- PCI ---------------------------------------------------------------------------------
    def bus_name(self, bus: int) -> str:
        """QEMU bus id of PCI bus number *bus* (0 is the root bus, N is controller ``pci.N``)."""
        return self.root_bus if bus == 0 else f"pci.{bus}"

    def pci(self, address: Address | None, *, video: bool = False) -> dict[str, JsonValue]:
        """Return the ``bus``/``addr`` properties of a PCI device.

        An explicit ``<address type='pci'>`` is honoured; otherwise the next free slot of the
        root bus is used (the primary video card gets the slot reserved for it).
        """
        if address is not None and address.type == "pci" and address.slot is not None:
            slot, fn = parse_num(address.slot), parse_num(address.function)
            props: dict[str, JsonValue] = {
                "bus": self.bus_name(parse_num(address.bus)),
                "addr": f"{slot:#x}" if fn == 0 else f"{slot:#x}.{fn:#x}",
            }
            if address.multifunction in ("on", "off"):
                props["multifunction"] = address.multifunction == "on"
            return props
        if video and self._video_slot is not None:
            slot, self._video_slot = self._video_slot, None
        else:
            slot = self._next_slot()
            if slot < 0:
                return self._bridge_slot()
        return {"bus": self.root_bus, "addr": f"{slot:#x}"}

    def _next_slot(self) -> int:
        """The next free slot of the root bus; -1 when it is full but pyvirt added bridges."""
        for slot in range(1, 32):
            if slot not in self._used_slots:
                self._used_slots.add(slot)
                return slot
        if self._bridges:
            return -1
        raise NoFreeSlotError(
            f"no free PCI slot left on {self.root_bus}",
            hint="add a PCI bridge or root port and give devices explicit addresses",
        )

    def _bridge_slot(self) -> dict[str, JsonValue]:
        """The next free slot (1-31) on the pci-bridges pyvirt added, as libvirt fills them."""
        for bus in self._bridges:
            for slot in range(1, 32):
                if slot not in self.bus_slots[bus]:
                    self.bus_slots[bus].add(slot)
                    return {"bus": self.bus_name(bus), "addr": f"{slot:#x}"}
        raise NoFreeSlotError(f"no free PCI slot left on {self.root_bus} and its bridges")

    def _add_bridge(self) -> int:
        """Add a pci-bridge on the last free slot of pci.0 (i440fx only); return its index."""
        if self.q35:
            raise NoFreeSlotError(
                f"no free PCI slot left on {self.root_bus}",
                hint="add pcie-root-ports (or a pcie-to-pci-bridge) and give devices addresses",
            )
        free = [n for n in range(1, 32) if n not in self._used_slots]
        if not free:
            raise NoFreeSlotError(f"no free PCI slot left on {self.root_bus} for a bridge")
        slot = free[-1]
        self._used_slots.add(slot)
        index = 1
        while ("pci", index) in self.controllers:
            index += 1
        self.controllers[("pci", index)] = ControllerSpec("pci", index, "pci-bridge", True)
        self.bridge_slots[index] = slot
        return index

    def _reserve_explicit_slots(self) -> None:
        for addr in _all_addresses(self.domain):
            if addr.type == "pci" and addr.slot is not None:
                bus = parse_num(addr.bus)
                if bus == 0:
                    self._used_slots.add(parse_num(addr.slot))
                else:
                    self.bus_slots[bus].add(parse_num(addr.slot))

    def _reserve_primary_video_slot(self) -> int | None:
        videos = self.domain.devices.videos
        if not videos or videos[0].model_type == "none" or videos[0].address is not None:
            return None
        slot = 1 if self.q35 else 2
        if slot in self._used_slots:
            return None
        self._used_slots.add(slot)
        return slot

    # -- boot --------------------------------------------------------------------------------
    def bootindex(self, dev: object) -> int | None:
        """Return the ``bootindex`` of *dev*, or ``None`` when it is not a boot device."""
        return self.boot_index.get(dev)

    def controller(self, type_: str, index: int) -> ControllerSpec | None:
        """Return controller ``(type_, index)`` if the guest has it (explicit or implicit)."""
        return self.controllers.get((type_, index))


def _all_addresses(domain: Domain) -> Iterable[Address]:
    devs = domain.devices
    groups: list[Iterable[object]] = [
        devs.disks,
        devs.controllers,
        devs.interfaces,
        devs.hostdevs,
        devs.videos,
        devs.filesystems,
        [devs.memballoon] if devs.memballoon is not None else [],
    ]
    for group in groups:
        for dev in group:
            addr = getattr(dev, "address", None)
            if isinstance(addr, Address):
                yield addr


def _boot_indexes(domain: Domain, disks: list[Disk]) -> dict[object, int]:
    """Map each boot device (model views hash by their element) to its boot index.

    Per-device ``<boot order>`` wins; otherwise ``<os><boot dev=...>`` is turned into indexes on
    the first device of each kind (first disk, first CD-ROM, first floppy, first NIC), in the
    order the ``<boot>`` elements list them (``hd`` when there are none).
    """
    devs = domain.devices
    explicit: dict[object, int] = {}
    for d in disks:
        if d.boot_order is not None:
            explicit[d] = d.boot_order
    for i in devs.interfaces:
        if i.boot_order is not None:
            explicit[i] = i.boot_order
    for h in devs.hostdevs:
        if h.boot_order is not None:
            explicit[h] = h.boot_order
    if explicit:
        return explicit
    firsts: dict[str, object | None] = {
        "hd": next((d for d in disks if d.device in ("disk", "lun")), None),
        "cdrom": next((d for d in disks if d.device == "cdrom"), None),
        "fd": next((d for d in disks if d.device == "floppy"), None),
        "network": devs.interfaces[0] if devs.interfaces else None,
    }
    result: dict[object, int] = {}
    index = 1
    for dev_name in domain.os.boot_devs or ["hd"]:
        target = firsts.get(dev_name)
        if target is not None and target not in result:
            result[target] = index
            index += 1
    return result


def _device_sequence(b: Build) -> list[object]:
    devs = b.domain.devices

    def pci_first(c: Controller) -> tuple[bool, int]:
        # PCI controllers first, by index, so that every bus exists before a device uses it
        return c.type != "pci", b.ctl_index[c] if c.type == "pci" else 0

    ordered: list[Controller] = sorted(devs.controllers, key=pci_first)
    groups: dict[str, list[object]] = {
        "controllers": list(ordered),
        "disks": list(b.disks),
        "filesystems": list(devs.filesystems),
        "interfaces": list(devs.interfaces),
        "hostdevs": list(devs.hostdevs),
        "serials": list(devs.serials),
        "consoles": list(devs.consoles),
        "channels": list(devs.channels),
        "inputs": list(devs.inputs),
        "audios": list(devs.audios),
        "graphics": list(devs.graphics),
        "videos": list(devs.videos),
        "sounds": list(devs.sounds),
        "memballoon": [devs.memballoon] if devs.memballoon is not None else [],
        "rngs": list(devs.rngs),
        "watchdogs": list(devs.watchdogs),
        "parallels": list(devs.parallels),
        "hubs": list(devs.hubs),
        "panics": list(devs.panics),
        "memories": list(devs.memories),
        "tpms": list(devs.tpms),
    }
    for el in devs.element:  # what pyvirt cannot run is refused, never left out silently
        if isinstance(el.tag, str) and el.tag not in LOWERED:
            raise UnsupportedError(
                f"<{el.tag}> devices are not supported yet",
                hint=f"remove the <{el.tag}> element from the definition "
                "(docs/compatibility.md lists what pyvirt runs)",
            )
    return [dev for name in ORDER for dev in groups[name]]


#: ``<devices>`` children the builder lowers (or knows to need no argument)
LOWERED = frozenset({
    "emulator", "disk", "controller", "interface", "serial", "parallel", "console", "channel",
    "input", "audio", "graphics", "video", "sound", "hostdev", "hub", "watchdog",
    "memballoon", "rng", "panic", "memory",
    "filesystem",
    "tpm",
})  # fmt: skip


#: libvirt's namespace for extra QEMU arguments (``<qemu:commandline><qemu:arg value/>``)
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"


def passthrough_args(domain: Domain) -> list[str]:
    """The ``<qemu:commandline>`` arguments, verbatim, after the devices (as libvirt does)."""
    args: list[str] = []
    for cmdline in domain.element.iterchildren(f"{{{QEMU_NS}}}commandline"):
        for arg in cmdline.iterchildren(f"{{{QEMU_NS}}}arg"):
            value = arg.get("value")
            if value is not None:
                args.append(value)
    return args


def build_argv(domain: Domain, ctx: ArgvContext) -> list[str]:
    """Return the QEMU command line (binary first) that runs *domain*.

    Reads only *domain* and *ctx*, touches no file and runs nothing; what it writes into
    *domain* is each device's alias (its QEMU id), for the live XML, and on q35 what
    :func:`pyvirt.model.pcie.complete_domain` completes (nothing for a stored definition).

    :param domain: the domain definition
    :param ctx: run paths and host facts
    :returns: the argv, e.g. ``["/usr/bin/qemu-system-x86_64", "-name", "guest=web1,..."]``
    :raises InvalidConfigError: the definition cannot be expressed (e.g. no free PCI slot)
    :raises UnsupportedError: it uses something pyvirt cannot lower yet
    """
    complete_domain(domain)
    for bridges in range(MAX_AUTO_BRIDGES + 1):
        try:
            return _build_argv(domain, ctx, bridges)
        except NoFreeSlotError:  # pci.0 is full: add a pci-bridge, as libvirt does (i440fx)
            if bridges == MAX_AUTO_BRIDGES or "q35" in (domain.os.machine or ""):
                raise
    raise AssertionError("unreachable")


def _build_argv(domain: Domain, ctx: ArgvContext, bridges: int) -> list[str]:
    b = Build(domain, ctx, bridges=bridges)
    run = ctx.run_dir
    argv = [ctx.emulator or domain.devices.emulator or DEFAULT_EMULATOR]
    argv += ["-name", qemu_opts(guest=domain.name, **{"debug-threads": True})]
    argv += ["-uuid", domain.uuid]
    argv += system.machine(b)
    argv += system.cpu(b)
    argv += memory.memory(b)
    argv += system.smp(b)
    argv += memory.numa(b)
    argv += system.firmware(b)
    argv += system.smbios(b)
    if not domain.devices.graphics:
        argv += ["-display", "none"]
    argv += ["-no-user-config", "-nodefaults"]
    argv += ["-qmp", qemu_opts(f"unix:{run / 'qmp.sock'}", server=True, wait=False)]
    argv += ["-qmp", qemu_opts(f"unix:{run / 'events.sock'}", server=True, wait=False)]
    argv += ["-pidfile", str(run / "qemu.pid")]
    if ctx.daemonize:
        argv.append("-daemonize")
    argv += system.rtc(b)
    argv += system.lifecycle(b)
    argv += system.boot(b)
    argv += controller.implicit(b)
    device_args: list[str] = []
    for dev in _device_sequence(b):
        device_args += lowering_for(dev)(dev, b)
    argv += disk.fdc_globals(b)
    argv += device_args
    argv += passthrough_args(domain)
    argv += ["-sandbox", SANDBOX_DAEMONIZED if ctx.daemonize else SANDBOX]
    argv += ["-msg", "timestamp=on"]
    return argv


def required_files(domain: Domain, ctx: ArgvContext) -> dict[Path, str]:
    """Files the driver must write (mode 0600) before running :func:`build_argv`'s argv.

    Today: the VNC password, passed to QEMU as a ``secret`` object read from a file so that it
    never shows in ``ps``. Pure, like :func:`build_argv`.

    :returns: path -> content
    """
    return graphics.secret_files(domain, ctx)


__all__ = ["Build", "ControllerSpec", "build_argv", "chardev", "parse_num", "required_files"]
