"""virt-install's comma syntax (``--disk /x.qcow2,format=qcow2,bus=virtio``) parsed into specs.

Each option value is a comma-separated list of ``key=value`` or bare words; double quotes
protect commas (``kernel_args="console=ttyS0,115200"``). The first bare word has a meaning per
option (a disk path, a graphics type, a vCPU count). Unknown keys are refused with the option
name, so a typo never silently does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from pyvirt.errors import InvalidConfigError
from pyvirt.install.spec import (
    BootSpec,
    CheckSpec,
    CloudInitSpec,
    ConsoleSpec,
    CpuSpec,
    DiskSpec,
    GraphicsSpec,
    NicSpec,
    VcpuSpec,
)

Pairs = list[tuple[str, str | None]]
_TRUE = ("on", "yes", "true", "1")
_FALSE = ("off", "no", "false", "0")


def split(option: str, text: str) -> Pairs:
    """Split ``a=1,b,"c=x,y"`` into ``[("a", "1"), ("b", None), ("c", "x,y")]``.

    :raises InvalidConfigError: an unterminated quote or an empty key
    """
    items: list[str] = []
    cur: list[str] = []
    quote = False
    for ch in text:
        if ch == '"':
            quote = not quote
        elif ch == "," and not quote:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if quote:
        raise InvalidConfigError(f"{option}: unterminated quote in '{text}'")
    items.append("".join(cur))
    out: Pairs = []
    for item in items:
        if item == "":
            continue
        key, eq, value = item.partition("=")
        if not key:
            raise InvalidConfigError(f"{option}: empty option name in '{text}'")
        out.append((key.strip(), value if eq else None))
    return out


def _bool(option: str, key: str, value: str | None) -> bool:
    if value is None or value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise InvalidConfigError(f"{option}: {key}='{value}' is not on/off or yes/no")


def _int(option: str, key: str, value: str | None, *, minimum: int = 0) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise InvalidConfigError(f"{option}: {key}='{value}' is not a whole number") from None
    if number < minimum:
        raise InvalidConfigError(f"{option}: {key} must be at least {minimum}, not {number}")
    return number


def _unknown(option: str, key: str, known: object) -> InvalidConfigError:
    names = ", ".join(sorted(known))  # type: ignore[call-overload]
    return InvalidConfigError(f"{option}: unknown option '{key}'", hint=f"known: {names}")


def _apply(option: str, pairs: Pairs, setters: dict[str, Callable[[str | None], None]]) -> None:
    for key, value in pairs:
        setter = setters.get(key)
        if setter is None:
            raise _unknown(option, key, setters)
        setter(value)


def _need(option: str, key: str, value: str | None) -> str:
    if value is None or value == "":
        raise InvalidConfigError(f"{option}: {key}= needs a value")
    return value


def parse_disk(text: str) -> DiskSpec | None:
    """``--disk``; ``None`` for ``--disk none``."""
    opt = "--disk"
    pairs = split(opt, text)
    if pairs == [("none", None)]:
        return None
    d = DiskSpec()
    if pairs and pairs[0][1] is None:
        d.path = pairs.pop(0)[0]

    def size(v: str | None) -> None:
        try:
            d.size_gb = float(_need(opt, "size", v))
        except ValueError:
            raise InvalidConfigError(f"{opt}: size='{v}' is not a number of GiB") from None
        if d.size_gb <= 0:
            raise InvalidConfigError(
                f"{opt}: size must be a positive number of GiB, not {v}", hint="e.g. size=10"
            )

    def device(v: str | None) -> None:
        d.device = _need(opt, "device", v)
        if d.device not in ("disk", "cdrom", "floppy", "lun"):
            raise InvalidConfigError(f"{opt}: device='{v}' is not disk, cdrom, floppy or lun")

    def setattr_(name: str) -> Callable[[str | None], None]:
        return lambda v: setattr(d, name, _need(opt, name, v))

    setters: dict[str, Callable[[str | None], None]] = {
        "path": setattr_("path"),
        "pool": setattr_("pool"),
        "vol": setattr_("vol"),
        "format": setattr_("format"),
        "bus": setattr_("bus"),
        "target": setattr_("target"),
        "target.dev": setattr_("target"),
        "target.bus": setattr_("bus"),
        "cache": setattr_("cache"),
        "io": setattr_("io"),
        "discard": setattr_("discard"),
        "serial": setattr_("serial"),
        "driver.type": setattr_("format"),
        "driver.cache": setattr_("cache"),
        "driver.io": setattr_("io"),
        "size": size,
        "device": device,
        "sparse": lambda v: setattr(d, "sparse", _bool(opt, "sparse", v)),
        "readonly": lambda v: setattr(d, "readonly", _bool(opt, "readonly", v)),
        "shareable": lambda v: setattr(d, "shareable", _bool(opt, "shareable", v)),
        "boot.order": lambda v: setattr(d, "boot_order", _int(opt, "boot.order", v, minimum=1)),
        "boot_order": lambda v: setattr(d, "boot_order", _int(opt, "boot_order", v, minimum=1)),
    }
    _apply(opt, pairs, setters)
    if d.vol and "/" in d.vol and not d.pool:
        d.pool, d.vol = d.vol.split("/", 1)
    if d.path is None and d.pool is None and d.vol is None and d.device != "cdrom":
        raise InvalidConfigError(
            f"{opt}: give path=FILE, pool=POOL,size=N or vol=POOL/VOLUME",
            hint="e.g. --disk path=/var/lib/pyvirt/images/vm.qcow2,size=10",
        )
    return d


def parse_network(text: str) -> NicSpec | None:
    """``--network``; ``None`` for ``--network none``."""
    opt = "--network"
    pairs = split(opt, text)
    if pairs == [("none", None)]:
        return None
    nic = NicSpec()
    if pairs and pairs[0][1] is None and pairs[0][0] in ("user", "default"):
        word = pairs.pop(0)[0]
        nic.type, nic.source = ("user", None) if word == "user" else ("network", "default")
    elif pairs and pairs[0][1] is None and ":" in pairs[0][0]:
        kind, _, src = pairs.pop(0)[0].partition(":")  # legacy network:NAME / bridge:NAME
        if kind not in ("network", "bridge"):
            raise InvalidConfigError(f"{opt}: '{kind}:{src}' is not network:NAME or bridge:NAME")
        nic.type, nic.source = kind, src

    def source(kind: str) -> Callable[[str | None], None]:
        def set_(v: str | None) -> None:
            nic.type, nic.source = kind, _need(opt, kind, v)

        return set_

    def type_(v: str | None) -> None:
        nic.type = _need(opt, "type", v)
        if nic.type not in ("network", "bridge", "user"):
            raise InvalidConfigError(f"{opt}: type='{v}' is not network, bridge or user")

    setters: dict[str, Callable[[str | None], None]] = {
        "network": source("network"),
        "bridge": source("bridge"),
        "type": type_,
        "source": lambda v: setattr(nic, "source", _need(opt, "source", v)),
        "model": lambda v: setattr(nic, "model", _need(opt, "model", v)),
        "model.type": lambda v: setattr(nic, "model", _need(opt, "model.type", v)),
        "mac": lambda v: setattr(nic, "mac", _need(opt, "mac", v)),
        "mac.address": lambda v: setattr(nic, "mac", _need(opt, "mac.address", v)),
        "target.dev": lambda v: setattr(nic, "target", _need(opt, "target.dev", v)),
    }
    _apply(opt, pairs, setters)
    if nic.type == "network" and nic.source is None:
        nic.source = "default"
    if nic.type == "bridge" and not nic.source:
        raise InvalidConfigError(f"{opt}: bridge= needs the name of a host bridge")
    return nic


def parse_graphics(text: str) -> GraphicsSpec:
    """``--graphics vnc[,listen=,port=,keymap=,password=]`` or ``none``."""
    opt = "--graphics"
    pairs = split(opt, text)
    g = GraphicsSpec()
    if pairs and pairs[0][1] is None and pairs[0][0] in ("vnc", "none", "spice"):
        g.type = pairs.pop(0)[0]
    if g.type == "spice":
        raise InvalidConfigError(
            f"{opt}: spice is not supported by pyvirt", hint="use --graphics vnc"
        )

    def port(v: str | None) -> None:
        g.port = _int(opt, "port", v, minimum=-1)
        if g.port not in (-1,) and not 5900 <= g.port <= 65535:
            raise InvalidConfigError(f"{opt}: port={g.port} is not -1 or 5900-65535")

    setters: dict[str, Callable[[str | None], None]] = {
        "type": lambda v: setattr(g, "type", _need(opt, "type", v)),
        "listen": lambda v: setattr(g, "listen", _need(opt, "listen", v)),
        "port": port,
        "keymap": lambda v: setattr(g, "keymap", _need(opt, "keymap", v)),
        "password": lambda v: setattr(g, "password", _need(opt, "password", v)),
        "passwd": lambda v: setattr(g, "password", _need(opt, "passwd", v)),
    }
    _apply(opt, pairs, setters)
    if g.type not in ("vnc", "none"):
        raise InvalidConfigError(f"{opt}: type '{g.type}' is not vnc or none")
    if g.listen == "none":
        g.listen = None
    return g


def parse_vcpus(text: str) -> VcpuSpec:
    """``--vcpus N[,maxvcpus=M,sockets=S,cores=C,threads=T,cpuset=...]``."""
    opt = "--vcpus"
    pairs = split(opt, text)
    v = VcpuSpec()
    if pairs and pairs[0][1] is None:
        v.count = _int(opt, "count", pairs.pop(0)[0], minimum=1)

    def num(name: str) -> Callable[[str | None], None]:
        return lambda x: setattr(v, name, _int(opt, name, x, minimum=1))

    setters = {k: num(k) for k in ("maxvcpus", "sockets", "dies", "cores", "threads")}
    setters["vcpus"] = num("count")
    setters["vcpu"] = num("count")
    setters["cpuset"] = lambda x: setattr(v, "cpuset", _need(opt, "cpuset", x))
    _apply(opt, pairs, setters)
    return v


def parse_cpu(text: str) -> CpuSpec:
    """``--cpu host-passthrough|host-model|MODEL[,+feat,-feat,require=feat,disable=feat]``."""
    opt = "--cpu"
    c = CpuSpec()
    for key, value in split(opt, text):
        if value is None and key in ("host-passthrough", "host-model", "maximum", "host"):
            c.mode = "host-passthrough" if key == "host" else key
        elif value is None and key[:1] in "+-":
            c.features.append(("require" if key[0] == "+" else "disable", key[1:]))
        elif value is not None and key in ("require", "disable", "force", "optional", "forbid"):
            c.features.append((key, value))
        elif key == "mode" and value:
            c.mode = value
        elif key == "model" and value:
            c.model = value
        elif value is None and c.model is None and c.mode is None:
            c.model = key
        else:
            raise _unknown(opt, key, ("mode", "model", "+feature", "-feature", "require"))
    if c.model and c.mode is None:
        c.mode = "custom"
    return c


def parse_boot(text: str) -> BootSpec:
    """``--boot hd,cdrom,menu=on`` / ``uefi`` / ``kernel=,initrd=,kernel_args=``."""
    opt = "--boot"
    b = BootSpec()
    for key, value in split(opt, text):
        if value is None and key in ("hd", "cdrom", "network", "fd"):
            b.order.append(key)
        elif value is None and key == "uefi":
            b.uefi = True
        elif key in ("kernel", "initrd", "loader"):
            setattr(b, key, _need(opt, key, value))
        elif key in ("kernel_args", "cmdline", "extra_args"):
            b.kernel_args = value or ""
        elif key in ("menu", "bootmenu.enable"):
            b.menu = _bool(opt, key, value)
        elif key in ("firmware", "os.firmware") and value == "efi":
            b.uefi = True
        elif key == "nvram.template":
            b.nvram_template = _need(opt, key, value)
        elif key in ("boot0.dev", "boot1.dev", "boot2.dev", "boot3.dev"):
            b.order.append(_need(opt, key, value))
        else:
            raise _unknown(opt, key, ("hd", "cdrom", "network", "uefi", "kernel", "initrd",
                                      "kernel_args", "menu", "loader"))  # fmt: skip
    return b


def parse_cloud_init(text: str) -> CloudInitSpec:
    """``--cloud-init root-password-generate=on,ssh-key=FILE,user-data=FILE,...``."""
    opt = "--cloud-init"
    c = CloudInitSpec()
    setters: dict[str, Callable[[str | None], None]] = {
        "root-password": lambda v: setattr(c, "root_password", _need(opt, "root-password", v)),
        "root-password-file": lambda v: setattr(c, "root_password", _read(opt, v).strip()),
        "root-password-generate": lambda v: setattr(
            c, "root_password_generate", _bool(opt, "root-password-generate", v)
        ),
        "ssh-key": lambda v: c.ssh_keys.append(_read(opt, v).strip()),
        "clouduser-ssh-key": lambda v: c.ssh_keys.append(_read(opt, v).strip()),
        "user-data": lambda v: setattr(c, "user_data", _read(opt, v)),
        "meta-data": lambda v: setattr(c, "meta_data", _read(opt, v)),
        "network-config": lambda v: setattr(c, "network_config", _read(opt, v)),
        "disable": lambda v: setattr(c, "disable", _bool(opt, "disable", v)),
    }
    _apply(opt, split(opt, text) if text else [], setters)
    return c


def _read(option: str, path: str | None) -> str:
    path = _need(option, "file", path)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(1024 * 1024)
    except OSError as err:
        raise InvalidConfigError(f"{option}: cannot read '{path}': {err.strerror}") from None


def parse_console(text: str) -> ConsoleSpec:
    """``--console pty[,target_type=serial|virtio]``."""
    opt = "--console"
    c = ConsoleSpec()
    for key, value in split(opt, text):
        if value is None and key == "pty":
            continue
        if key in ("target_type", "target.type") and value in ("serial", "virtio"):
            c.target_type = value
        else:
            raise _unknown(opt, key, ("pty", "target_type=serial|virtio"))
    return c


def parse_check(text: str) -> CheckSpec:
    """``--check path_in_use=off,disk_size=off,mac_in_use=off,all=off``."""
    opt = "--check"
    c = CheckSpec()
    for key, value in split(opt, text):
        on = _bool(opt, key, value)
        if key == "all":
            c.path_in_use = c.disk_size = c.mac_in_use = on
        elif key in ("path_in_use", "disk_size", "mac_in_use"):
            setattr(c, key, on)
        else:
            raise _unknown(opt, key, ("all", "path_in_use", "disk_size", "mac_in_use"))
    return c


def parse_keyvals(option: str, text: str, first: str | None = None) -> dict[str, str]:
    """A plain ``key=value`` list (``--sysinfo``, ``--numatune``...); a bare first word is
    stored under ``first``."""
    out: dict[str, str] = {}
    for i, (key, value) in enumerate(split(option, text)):
        if value is None:
            if i == 0 and first is not None:
                out[first] = key
                continue
            out[key] = "on"
        else:
            out[key] = value
    return out
