"""Lowering of the non-device parts of a domain: machine, accelerator, CPU, vCPUs, firmware,
clock, lifecycle actions and boot options.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts, qemu_opts, qemu_opts_from
from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: <domain type> -> QEMU accelerator
ACCELERATORS = {"kvm": "kvm", "qemu": "tcg"}
#: <feature policy> -> CPU property value
FEATURE_POLICY = {
    "require": True,
    "force": True,
    "optional": True,
    "disable": False,
    "forbid": False,
}
#: <timer name='rtc' track> -> -rtc clock=
RTC_TRACK = {"guest": "vm", "realtime": "rt", "wall": "host"}
PFLASH_CODE, PFLASH_VARS = "pflash0", "pflash1"


def machine(b: Build) -> list[str]:
    """``-machine TYPE,...`` and ``-accel``.

    ACPI follows ``<features><acpi/>`` (off when absent, as libvirt does for x86); USB is off
    because pyvirt adds USB controllers itself.
    """
    d = b.domain
    accel = ACCELERATORS.get(d.type or "")
    if accel is None:
        raise UnsupportedError(f"domain type '{d.type}' is not supported", hint="use kvm or qemu")
    props: dict[str, str | bool | None] = {"usb": False, "dump-guest-core": False}
    if memory_backend_id(b) is not None:
        props["memory-backend"] = memory_backend_id(b)
    loader = d.os.loader
    if loader is not None and loader.type == "pflash" and loader.path:
        props[PFLASH_CODE] = f"{PFLASH_CODE}-format"
        if d.os.nvram:
            props[PFLASH_VARS] = f"{PFLASH_VARS}-format"
    from pyvirt.drivers.qemu.argv.devices.sound import pcspk_audiodev

    if (speaker := pcspk_audiodev(d)) is not None:
        props["pcspk-audiodev"] = speaker
    props["acpi"] = d.features.has("acpi")
    smm = d.element.find("features/smm")
    if smm is not None:  # firmware that requires SMM (secure boot) gets <smm state='on'/>
        props["smm"] = smm.get("state", "on") != "off"
    mb = d.memory_backing
    if mb is not None and mb.nosharepages:
        # keeps KSM away from guest RAM (memory backends inherit the machine's mem-merge)
        props["mem-merge"] = False
    return ["-machine", qemu_opts_from(props, b.machine), "-accel", accel]


def memory_backend_id(b: Build) -> str | None:
    """Id of the machine RAM backend object when one is needed (no NUMA, special backing)."""
    from pyvirt.drivers.qemu.argv.memory import needs_ram_backend

    return "pc.ram" if needs_ram_backend(b) else None


def cpu(b: Build) -> list[str]:
    """``-cpu MODEL,feature=on|off,...``.

    ``host-passthrough`` and ``host-model`` are ``host`` under KVM and ``max`` under TCG;
    a custom model keeps its name; without ``<cpu>`` (or a model) QEMU's ``qemu64`` is used.
    """
    d = b.domain
    c = d.cpu
    props: dict[str, str | bool | None] = {}
    name = "486" if d.os.machine == "isapc" else "qemu64"  # QEMU's default for the machine
    if c is not None:
        if c.mode in ("host-passthrough", "host-model"):
            # TCG cannot pass the host CPU through; "max" is its closest equivalent
            name = "host" if d.type == "kvm" else "max"
        elif c.mode == "maximum":
            name = "max"
        elif c.model:
            name = c.model
        for feat in c.features:
            value = FEATURE_POLICY.get(feat.policy or "require")
            if value is not None and feat.name:
                props[feat.name] = value
    for timer in d.clock.timers:
        if timer.name == "kvmclock" and timer.present is False:
            props["kvmclock"] = False
    return ["-cpu", qemu_opts_from(props, name)]


def smp(b: Build) -> list[str]:
    """``-smp CURRENT[,maxcpus=COUNT],sockets=,dies=,cores=,threads=``, then the I/O threads.

    ``current`` below ``count`` leaves room for hot-plugged vCPUs (``setvcpus --live``).

    Without a ``<topology>`` every vCPU is its own socket (libvirt's default).
    """
    v = b.domain.vcpu
    count = v.count
    current = v.current if v.current is not None and v.current < count else None
    topo = b.domain.cpu.topology if b.domain.cpu is not None else None
    props: dict[str, int | None] = {"maxcpus": count if current is not None else None}
    if topo is not None:
        props.update(sockets=topo.sockets, dies=topo.dies, cores=topo.cores, threads=topo.threads)
    else:
        props.update(sockets=count, cores=1, threads=1)
    args = ["-smp", qemu_opts_from(props, str(current if current is not None else count))]
    return args + iothreads(b)


def iothreads(b: Build) -> list[str]:
    """``-object iothread,id=iothreadN`` for ``<iothreads>`` (ids from ``<iothreadids>``)."""
    d = b.domain
    ids = [t.id for t in d.iothreadids if t.id is not None]
    if not ids and d.iothreads:
        ids = list(range(1, d.iothreads + 1))
    return [arg for i in ids for arg in ("-object", qemu_opts("iothread", id=f"iothread{i}"))]


def firmware(b: Build) -> list[str]:
    """Loader (``-bios`` or pflash ``-blockdev`` nodes) and direct kernel boot options."""
    os_ = b.domain.os
    args: list[str] = []
    loader = os_.loader
    if loader is not None and loader.path:
        if loader.type == "pflash":
            code_fmt = loader.format or "raw"
            args += _pflash(
                PFLASH_CODE, loader.path, readonly=loader.readonly is not False, driver=code_fmt
            )
            if os_.nvram:
                vars_fmt = os_.nvram_format or code_fmt
                args += _pflash(PFLASH_VARS, os_.nvram, readonly=False, driver=vars_fmt)
            if loader.secure:  # only SMM code may write the flash (secure boot's variables)
                args += ["-global", "driver=cfi.pflash01,property=secure,value=on"]
        else:
            args += ["-bios", loader.path]
    if os_.kernel:
        args += ["-kernel", os_.kernel]
    if os_.initrd:
        args += ["-initrd", os_.initrd]
    if os_.cmdline:
        args += ["-append", os_.cmdline]
    return args


def _pflash(node: str, path: str, *, readonly: bool, driver: str = "raw") -> list[str]:
    storage: dict[str, JsonValue] = {
        "driver": "file",
        "filename": path,
        "node-name": f"{node}-storage",
    }
    fmt: dict[str, JsonValue] = {
        "node-name": f"{node}-format",
        "read-only": readonly,
        "driver": driver,
        "file": f"{node}-storage",
    }
    return ["-blockdev", json_opts(storage), "-blockdev", json_opts(fmt)]


def rtc(b: Build) -> list[str]:
    """``-rtc base=...`` from ``<clock>`` (and the ``rtc`` timer's track/tickpolicy)."""
    clock = b.domain.clock
    props: dict[str, str | None] = {}
    if clock.offset == "localtime":
        props["base"] = "localtime"
    elif clock.offset == "absolute" and clock.start is not None:
        when = datetime.fromtimestamp(int(clock.start), tz=UTC)
        props["base"] = when.strftime("%Y-%m-%dT%H:%M:%S")
    elif clock.offset == "variable":
        now = b.ctx.now
        if clock.basis == "localtime":
            now = now.astimezone()
        start = now + timedelta(seconds=int(clock.adjustment or 0))
        props["base"] = start.strftime("%Y-%m-%dT%H:%M:%S")
    else:
        props["base"] = "utc"
    for timer in clock.timers:
        if timer.name == "rtc":
            if timer.track in RTC_TRACK and timer.track != "wall":
                props["clock"] = RTC_TRACK[timer.track]
            if timer.tickpolicy == "catchup":
                props["driftfix"] = "slew"
    return ["-rtc", qemu_opts_from(props)]


def lifecycle(b: Build) -> list[str]:
    """``-no-shutdown``, ``-no-reboot`` and ``-action panic=`` from the ``on_*`` elements.

    QEMU must stay alive after a guest power-off whenever pyvirt's watcher acts on it
    (``preserve``, ``restart``); a reboot becomes a shutdown for ``on_reboot`` ``destroy`` and
    ``preserve``.
    """
    d = b.domain
    args: list[str] = []
    if d.on_poweroff in ("preserve", "restart", "rename-restart") or d.on_reboot == "preserve":
        args.append("-no-shutdown")
    if d.on_reboot in ("destroy", "preserve"):
        args.append("-no-reboot")
    if d.on_crash in ("preserve", "coredump-restart", "coredump-destroy"):
        args += ["-action", "panic=pause"]
    elif d.on_crash in ("restart", "rename-restart"):
        args += ["-action", "panic=none"]
    return args


def boot(b: Build) -> list[str]:
    """``-boot [menu=on,splash-time=MS,]strict=on``; the order itself is carried by
    ``bootindex`` properties. The menu's ``timeout`` is how long the splash waits (ms)."""
    os_ = b.domain.os
    menu = True if os_.bootmenu else None
    wait = os_.bootmenu_timeout if menu else None
    return ["-boot", qemu_opts(menu=menu, **{"splash-time": wait}, strict=True)]


#: libvirt's <sysinfo> entry names -> QEMU -smbios option names, per SMBIOS table type.
_SMBIOS_TABLES: dict[str, tuple[int, dict[str, str]]] = {
    "bios": (0, {"vendor": "vendor", "version": "version", "date": "date", "release": "release"}),
    "system": (1, {
        "manufacturer": "manufacturer", "product": "product", "version": "version",
        "serial": "serial", "uuid": "uuid", "sku": "sku", "family": "family",
    }),
    "baseBoard": (2, {
        "manufacturer": "manufacturer", "product": "product", "version": "version",
        "serial": "serial", "asset": "asset", "location": "location",
    }),
    "chassis": (3, {
        "manufacturer": "manufacturer", "version": "version", "serial": "serial",
        "asset": "asset", "sku": "sku",
    }),
}  # fmt: skip


def smbios(b: Build) -> list[str]:
    """``-smbios type=N,...`` from ``<sysinfo type='smbios'>``.

    Only with ``<os><smbios mode='sysinfo'/>``, as in libvirt. Unknown entry names are refused
    rather than silently dropped; each ``<oemStrings>`` entry becomes a ``type=11`` string.
    """
    info = b.domain.sysinfo
    if info is None or info.type != "smbios" or b.domain.os.smbios_mode != "sysinfo":
        return []
    args: list[str] = []
    for section, (table, names) in _SMBIOS_TABLES.items():
        props: dict[str, str | int] = {"type": table}
        for name, value in info.entries(section):
            if name not in names:
                raise UnsupportedError(
                    f"<sysinfo>/<{section}>: entry '{name}' has no SMBIOS type {table} field",
                    hint=f"use one of {', '.join(names)}",
                )
            props[names[name]] = value
        if len(props) > 1:
            args += ["-smbios", qemu_opts_from(props)]
    for _, value in info.entries("oemStrings"):
        args += ["-smbios", qemu_opts_from({"type": 11, "value": value})]
    return args
