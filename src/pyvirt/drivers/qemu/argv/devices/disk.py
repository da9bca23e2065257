"""Lowering of ``<disk>``: a ``-blockdev`` chain (protocol node, format node) and a ``-device``.

The cache mode is split the way QEMU models it: ``cache.direct`` and ``cache.no-flush`` on the
block nodes, ``write-cache`` on the guest device.

The same node and device properties serve disk hotplug: :func:`blockdev_nodes` gives the
``blockdev-add`` arguments of a disk's chain (storage, optional raw range, format, optional
copy-on-read) and :func:`device_spec` the alias, nodes and ``device_add`` properties, so
``attach-disk`` and a cold start lower a disk identically.

Sources: ``file``/``block`` paths, ``network`` (nbd, iscsi, nfs, http(s), ftp(s), rbd), and a
byte range of a raw source (``<source><slices><slice type='storage' offset= size=/>``), used
for partitions and logical volumes without device nodes. QEMU's image locks cover whole files,
so a ranged source is opened with ``locking=off`` (ranges of one device would otherwise lock
each other out); :mod:`pyvirt.service.disk.hooks` refuses overlapping ranges instead.
A ``<disk type='volume'>`` is resolved into one of these by :mod:`pyvirt.service.disk.hooks`
before lowering.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from pyvirt.drivers.qemu.argv.opts import JsonValue, json_opts
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Disk

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

#: cache mode -> (cache.direct, cache.no-flush, write-cache)
CACHE_MODES: dict[str, tuple[bool, bool, bool]] = {
    "writethrough": (False, False, False),
    "writeback": (False, False, True),
    "none": (True, False, True),
    "directsync": (True, False, False),
    "unsafe": (False, True, True),
}
#: target name prefix -> bus, when <target bus> is absent
PREFIX_BUS = (("hd", "ide"), ("sd", "scsi"), ("vd", "virtio"), ("fd", "fdc"), ("ub", "usb"))
#: disk bus -> (frontend for disks, frontend for CD-ROMs)
FRONTENDS = {
    "ide": ("ide-hd", "ide-cd"),
    "sata": ("ide-hd", "ide-cd"),
    "scsi": ("scsi-hd", "scsi-cd"),
    "virtio": ("virtio-blk-pci", None),
    "usb": ("usb-storage", "usb-storage"),
    "fdc": ("floppy", None),
}
#: error_policy -> QEMU werror/rerror value
ERROR_POLICY = {"stop": "stop", "report": "report", "ignore": "ignore", "enospace": "enospc"}
NETWORK_DEFAULT_PORTS = {"nbd": 10809, "iscsi": 3260}


def target(disk: Disk) -> str:
    """The disk's ``<target dev>`` (``""`` when absent, which validation refuses)."""
    return disk.target_dev or ""


def disk_bus(disk: Disk) -> str:
    """The disk's bus: ``<target bus>``, else derived from the target name (``vda`` → virtio)."""
    if disk.target_bus:
        return disk.target_bus
    for prefix, bus in PREFIX_BUS:
        if target(disk).startswith(prefix):
            return bus
    raise InvalidConfigError(f"disk '{disk.target_dev}': cannot tell its bus; set <target bus>")


def dev_index(name: str) -> int:
    """Index of a target name's letter suffix: ``vda`` → 0, ``sdb`` → 1, ``sdaa`` → 26."""
    prefix_len = 3 if name.startswith("xvd") else 2
    index = 0
    for ch in name[prefix_len:]:
        if not "a" <= ch <= "z":
            return 0
        index = index * 26 + (ord(ch) - ord("a") + 1)
    return max(index - 1, 0)


def sorted_disks(disks: Sequence[Disk]) -> list[Disk]:
    """Disks grouped by bus (in order of first appearance), by target name within a bus.

    This is the order libvirt keeps disks in, and "the first disk" for ``<boot dev='hd'/>``.
    """
    buses: list[str] = []
    for d in disks:
        bus = d.target_bus or next((b for p, b in PREFIX_BUS if target(d).startswith(p)), "")
        if bus not in buses:
            buses.append(bus)

    def key(d: Disk) -> tuple[int, int, int]:
        bus = d.target_bus or next((b for p, b in PREFIX_BUS if target(d).startswith(p)), "")
        return (buses.index(bus), dev_index(target(d)), 0)

    return sorted(disks, key=key)


@dataclass(frozen=True)
class Location:
    """Where a disk sits on its controller."""

    controller: int = 0
    bus: int = 0
    target: int = 0
    unit: int = 0


def location(disk: Disk, bus: str, *, scsi_units: int, q35: bool) -> Location:
    """The disk's controller/bus/target/unit: its ``<address type='drive'>`` or, without one,
    the position its target name implies (``hdc`` → IDE bus 1 unit 0)."""
    from pyvirt.drivers.qemu.argv.builder import parse_num

    addr = disk.address
    if addr is not None and addr.type == "drive":
        return Location(
            parse_num(addr.controller),
            parse_num(addr.bus),
            parse_num(addr.target),
            parse_num(addr.unit),
        )
    idx = dev_index(target(disk))
    if bus == "ide":
        return Location(0, idx // 2, 0, idx % 2)
    if bus == "sata":
        return Location(idx // 6, 0, 0, idx % 6)
    if bus == "scsi":
        return Location(idx // scsi_units, 0, 0, idx % scsi_units)
    if bus == "fdc":
        return Location(0, 0, 0, idx)
    return Location(0, 0, 0, 0)


def _initiator(disk: Disk) -> str | None:
    """``<source><initiator><iqn name=.../>``: the iSCSI initiator name to log in with."""
    iqn = disk.element.find("source/initiator/iqn")
    return iqn.get("name") if iqn is not None else None


def source_slice(disk: Disk) -> tuple[int, int | None] | None:
    """``(offset, size)`` of ``<source><slices><slice type='storage'>``, if the disk has one."""
    for sl in disk.element.iterfind("source/slices/slice"):
        if sl.get("type", "storage") != "storage":
            continue
        offset, size = sl.get("offset") or "0", sl.get("size")
        if not offset.isdigit() or (size is not None and not size.isdigit()):
            raise InvalidConfigError(
                f"disk '{disk.target_dev}': <slice> offset and size must be byte counts"
            )
        return int(offset), int(size) if size is not None else None
    return None


def _network_node(disk: Disk) -> dict[str, JsonValue]:
    proto = disk.source_protocol or ""
    hosts = disk.source_hosts
    host, port = (hosts[0][0], hosts[0][1]) if hosts else ("localhost", None)
    port_num = int(port) if port else NETWORK_DEFAULT_PORTS.get(proto)
    name = disk.source_name or ""
    first = disk.element.find("source/host")
    if proto == "nbd":
        server: dict[str, JsonValue] = {"type": "inet", "host": host, "port": str(port_num)}
        if first is not None and first.get("transport") == "unix":
            server = {"type": "unix", "path": first.get("socket") or ""}
        return {"driver": "nbd", "server": server, "export": name or None}
    if proto == "iscsi":
        iqn, _, lun = name.rpartition("/")
        return {
            "driver": "iscsi",
            "portal": f"{host}:{port_num}",
            "target": iqn or name,
            "lun": int(lun) if iqn and lun.isdigit() else 0,
            "transport": "tcp",
            "initiator-name": _initiator(disk),
        }
    if proto in ("http", "https", "ftp", "ftps"):
        netloc = f"{host}:{port}" if port else host
        return {"driver": proto, "url": f"{proto}://{netloc}/{name.lstrip('/')}"}
    if proto == "rbd":
        pool, _, image = name.partition("/")
        rbd: dict[str, JsonValue] = {"driver": "rbd", "pool": pool, "image": image}
        snap = disk.element.find("source/snapshot")
        if snap is not None and snap.get("name"):
            rbd["snapshot"] = snap.get("name")
        if hosts:  # the monitors; without any, QEMU reads them from ceph.conf
            monitors: list[Mapping[str, JsonValue]] = [
                {"host": h, "port": str(p or 6789)} for h, p in hosts
            ]
            rbd["server"] = cast(JsonValue, monitors)  # a JSON list of objects
        conf = disk.element.find("source/config")
        if conf is not None and conf.get("file"):
            rbd["conf"] = conf.get("file")
        return rbd
    if proto == "nfs":
        nfs: dict[str, JsonValue] = {
            "driver": "nfs",
            "server": {"type": "inet", "host": host},
            "path": "/" + name.lstrip("/"),
        }
        identity = disk.element.find("source/identity")
        if identity is not None:
            for key, xml_attr in (("user", "user"), ("group", "group")):
                value = (identity.get(xml_attr) or "").lstrip("+")
                nfs[key] = int(value) if value.isdigit() else None
        return nfs
    if proto == "gluster":
        volume, _, path = name.lstrip("/").partition("/")
        return {
            "driver": "gluster",
            "volume": volume,
            "path": path,
            "server": cast(JsonValue, _gluster_servers(disk)),  # a JSON list of objects
            "debug": GLUSTER_DEBUG,
        }
    if proto == "ssh":
        ssh: dict[str, JsonValue] = {"driver": "ssh", "path": name}
        ssh["server"] = {"host": host, "port": str(port_num or 22)}
        return ssh
    raise UnsupportedError(f"disk '{disk.target_dev}': network protocol '{proto}' is not supported")


#: libvirt's default gluster log level (qemu.conf ``gluster_debug_level``)
GLUSTER_DEBUG = 4


def _gluster_servers(disk: Disk) -> list[Mapping[str, JsonValue]]:
    """Every ``<host>`` of a gluster source: TCP (port 24007 by default) or a unix socket."""
    servers: list[Mapping[str, JsonValue]] = []
    for h in disk.element.iterfind("source/host"):
        if h.get("transport") == "unix":
            servers.append({"type": "unix", "path": h.get("socket") or ""})
        else:
            servers.append(
                {
                    "type": "inet",
                    "host": h.get("name") or "localhost",
                    "port": h.get("port") or "24007",
                }
            )
    if not servers:
        raise UnsupportedError(f"disk '{disk.target_dev}': a gluster source needs a <host>")
    return servers


def _storage_node(disk: Disk, node: str) -> dict[str, JsonValue]:
    if disk.type == "network":
        props = _network_node(disk)
    elif disk.type == "dir" and disk.source_dir:
        # a host directory shown as a FAT disk (QEMU's vvfat), read-only unless told otherwise
        props = {
            "driver": "vvfat",
            "dir": disk.source_dir,
            "floppy": disk.device == "floppy",
            "rw": not disk.readonly,
        }
    elif disk.source_path is not None:
        driver = "host_device" if disk.type == "block" else "file"
        props = {"driver": driver, "filename": disk.source_path}
        if disk.io:
            props["aio"] = disk.io
    elif disk.type == "volume":
        raise UnsupportedError(
            f"disk '{disk.target_dev}': volume '{disk.source_volume}' of pool "
            f"'{disk.source_pool}' is only resolved when the domain starts",
            hint="the storage pool is read at start time; start the domain to use it",
        )
    else:
        raise UnsupportedError(
            f"disk '{disk.target_dev}': its {disk.type} source must be resolved to a path first"
        )
    props["node-name"] = node
    props["auto-read-only"] = True
    if disk.discard == "unmap":
        props["discard"] = "unmap"
    return props


def _cache(disk: Disk) -> tuple[dict[str, JsonValue] | None, bool | None]:
    if disk.cache is None or disk.cache == "default":
        return None, None
    mode = CACHE_MODES.get(disk.cache)
    if mode is None:
        raise InvalidConfigError(f"disk '{disk.target_dev}': unknown cache mode '{disk.cache}'")
    direct, no_flush, write_cache = mode
    return {"direct": direct, "no-flush": no_flush}, write_cache


def blockdev_nodes(disk: Disk, alias: str) -> tuple[list[dict[str, JsonValue]], str | None]:
    """The block nodes of *disk* (bottom first, as ``blockdev-add`` takes them) and the node
    its device attaches to.

    Node names are ``ALIAS-storage``, ``ALIAS-slice`` (a byte range under a non-raw format),
    ``ALIAS-format`` and ``ALIAS-cor``. An empty CD-ROM/floppy drive has no node (``None``).
    """
    has_dir = disk.type == "dir" and bool(disk.source_dir)
    no_source = disk.source_path is None and not has_dir
    if disk.type not in ("network", "volume") and no_source:
        if disk.device in ("cdrom", "floppy"):
            return [], None
        if disk.type in ("nvme", "vhostuser"):
            raise UnsupportedError(
                f"disk '{disk.target_dev}': <disk type='{disk.type}'> is not supported",
                hint="give the disk as a file or block device",
            )
        raise InvalidConfigError(f"disk '{disk.target_dev}' has no source")
    cache, _ = _cache(disk)
    storage = _storage_node(disk, f"{alias}-storage")
    if cache is not None:
        storage["cache"] = cache
    nodes = [storage]
    fmt_name = disk.format if disk.format not in (None, "iso", "fat") else "raw"
    below = f"{alias}-storage"
    rng = source_slice(disk)
    if rng is not None:
        # QEMU locks whole files: two ranges of one file or device (two partitions, two LVs
        # of a PV) would lock each other out, so pyvirt checks overlapping ranges itself
        storage["locking"] = "off"
    if rng is not None and fmt_name != "raw":
        nodes.append(
            {
                "driver": "raw",
                "node-name": f"{alias}-slice",
                "file": below,
                "offset": rng[0],
                "size": rng[1],
                "read-only": disk.readonly,
                "cache": cache,
            }
        )
        below = f"{alias}-slice"
    fmt: dict[str, JsonValue] = {
        "node-name": f"{alias}-format",
        "read-only": disk.readonly,
        "cache": cache,
        "driver": fmt_name,
        "file": below,
        "discard": "unmap" if disk.discard == "unmap" else None,
        "detect-zeroes": disk.detect_zeroes,
    }
    if rng is not None and fmt_name == "raw":
        fmt["offset"] = rng[0]
        fmt["size"] = rng[1]
    nodes.append(fmt)
    top = f"{alias}-format"
    if disk.copy_on_read == "on":
        nodes.append({"driver": "copy-on-read", "node-name": f"{alias}-cor", "file": top})
        top = f"{alias}-cor"
    return nodes, top


def blockdevs(disk: Disk, alias: str) -> tuple[list[str], str | None]:
    """The ``-blockdev`` arguments of *disk* and the node its device attaches to.

    An empty CD-ROM/floppy drive has no node (``None``).
    """
    nodes, top = blockdev_nodes(disk, alias)
    args: list[str] = []
    for node in nodes:
        args += ["-blockdev", json_opts(node)]
    return args, top


def _alias_and_bus(disk: Disk, bus: str, b: Build) -> tuple[str, dict[str, JsonValue]]:
    """Fixed alias and bus properties of the guest device."""
    spec = b.controller("scsi", 0)
    units = 7 if spec is not None and spec.model == "lsilogic" else 16384
    loc = location(disk, bus, scsi_units=units, q35=b.q35)
    if bus == "ide":
        return f"ide{loc.controller}-{loc.bus}-{loc.unit}", {
            "bus": f"ide.{loc.bus}",
            "unit": loc.unit,
        }
    if bus == "sata":
        from pyvirt.drivers.qemu.argv.devices.controller import controller_id

        cid = controller_id(b, "sata", loc.controller)
        return f"sata{loc.controller}-0-{loc.unit}", {"bus": f"{cid}.{loc.unit}"}
    if bus == "scsi":
        ctrl = b.controller("scsi", loc.controller)
        prefix = f"scsi{loc.controller}"
        if ctrl is not None and ctrl.model == "virtio-scsi":
            alias = f"{prefix}-{loc.bus}-{loc.target}-{loc.unit}"
            return alias, {
                "bus": f"{prefix}.0",
                "channel": loc.bus,
                "scsi-id": loc.target,
                "lun": loc.unit,
            }
        return f"{prefix}-{loc.bus}-{loc.unit}", {"bus": f"{prefix}.0", "scsi-id": loc.unit}
    if bus == "fdc":
        return f"fdc0-0-{loc.unit}", {"unit": loc.unit}
    if bus == "virtio":
        return f"virtio-disk{dev_index(target(disk))}", b.pci(disk.address)
    if bus == "usb":
        return f"usb-disk{dev_index(target(disk))}", {}
    raise UnsupportedError(f"disk '{disk.target_dev}': bus '{bus}' is not supported")


def fixed_alias(disk: Disk, b: Build) -> str:
    """The alias (QEMU id) *disk* gets in build *b* (``virtio-disk1``, ``scsi0-0-0-1``...)."""
    fixed, _ = _alias_and_bus(disk, disk_bus(disk), b)
    return b.alias(disk, "disk", fixed=fixed)


@dataclass(frozen=True)
class DeviceSpec:
    """A disk lowered to data: its alias, block nodes (bottom first) and device properties.

    The ``bus`` key of :attr:`device` is absent for a floppy (``unit`` only).
    """

    alias: str
    nodes: list[dict[str, JsonValue]]
    top: str | None
    device: dict[str, JsonValue]


def frontend(disk: Disk) -> str:
    """The QEMU device driver of *disk* (``virtio-blk-pci``, ``scsi-hd``, ``ide-cd``...)."""
    bus = disk_bus(disk)
    frontends = FRONTENDS.get(bus)
    if frontends is None:
        raise UnsupportedError(f"disk '{disk.target_dev}': bus '{bus}' is not supported")
    driver = frontends[1] if disk.device == "cdrom" else frontends[0]
    if driver is None:
        raise InvalidConfigError(f"disk '{disk.target_dev}': bus '{bus}' cannot hold a CD-ROM")
    passthrough = disk.type == "block" or (
        disk.type == "network" and disk.source_protocol == "iscsi"  # libiscsi passes SCSI too
    )
    if disk.device == "lun" and bus == "scsi" and passthrough:
        driver = "scsi-block"
    return driver


def device_spec(disk: Disk, b: Build) -> DeviceSpec:
    """Lower *disk* to data (used by the argv and by live ``attach-disk``)."""
    if (
        disk.element.find("encryption") is not None
        or disk.element.find("source/encryption") is not None
    ):
        raise UnsupportedError(
            f"disk '{disk.target_dev}': <encryption> is not supported: its key is a libvirt "
            "secret, and pyvirt has no secret store",
            hint="decrypt the image, or open it inside the guest",
        )
    bus = disk_bus(disk)
    driver = frontend(disk)
    fixed, bus_props = _alias_and_bus(disk, bus, b)
    alias = b.alias(disk, "disk", fixed=fixed)
    nodes, node = blockdev_nodes(disk, alias)
    _, write_cache = _cache(disk)
    props: dict[str, JsonValue] = {"driver": driver, **bus_props, "drive": node, "id": alias}
    boot = b.bootindex(disk)
    if bus == "fdc":
        if boot is not None:
            b.fdc_bootindex[int(str(bus_props["unit"]))] = boot
    else:
        props["bootindex"] = boot
    if driver == "usb-storage" and disk.device == "cdrom":
        props["removable"] = True
    if write_cache is not None:
        props["write-cache"] = "on" if write_cache else "off"
    if disk.shareable:
        props["share-rw"] = True
    if driver != "floppy":
        props["serial"] = disk.serial
    if disk.wwn and bus in ("ide", "sata", "scsi"):
        props["wwn"] = int(disk.wwn, 16)
    if bus == "scsi":
        props["vendor"] = disk.vendor
        props["product"] = disk.product
    if disk.rotation_rate is not None and driver in ("ide-hd", "scsi-hd"):
        props["rotation_rate"] = disk.rotation_rate
    if driver != "floppy":
        werror = ERROR_POLICY.get(disk.error_policy or "")
        rerror = ERROR_POLICY.get(disk.rerror_policy or "") or (
            werror if werror != "enospc" else None
        )
        props["werror"] = werror
        props["rerror"] = rerror
    return DeviceSpec(alias, nodes, node, props)


@lowers(Disk)
def lower_disk(disk: Disk, b: Build) -> list[str]:
    """Lower one ``<disk>``."""
    spec = device_spec(disk, b)
    args: list[str] = []
    for node in spec.nodes:
        args += ["-blockdev", json_opts(node)]
    return [*args, "-device", json_opts(spec.device)]


def fdc_globals(b: Build) -> list[str]:
    """``-global isa-fdc.bootindexA=N``: floppy boot indexes live on the controller."""
    args: list[str] = []
    for unit, index in sorted(b.fdc_bootindex.items()):
        args += ["-global", f"isa-fdc.bootindex{'AB'[unit]}={index}"]
    return args
