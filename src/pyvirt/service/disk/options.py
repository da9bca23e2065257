"""``attach-disk``'s options turned into a ``<disk>`` element, and checks on its source.

:func:`build_disk` is virsh's option set (``--driver``, ``--subdriver``, ``--cache``, ``--io``,
``--type``, ``--targetbus``, ``--mode``, ``--sourcetype``, ``--source-protocol``...) as a
:class:`~pyvirt.model.Disk`. :func:`check_source` looks at the host before QEMU does, so that
the usual mistakes give a clear message instead of QEMU's: a missing file, a qcow2 image
attached as raw, ``cache='none'`` on a file system without ``O_DIRECT`` (tmpfs),
``io='native'`` without a direct cache mode, ``io='io_uring'`` where the kernel has none.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError

if TYPE_CHECKING:
    from pyvirt.model import Disk

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: imported by the disk hook
# at start; lxml/pyvirt.model and ctypes load only for the checks that need them.

TARGET_RE = re.compile(r"^(hd|sd|vd|xvd|fd|ub)[a-z]{1,3}$")
FORMATS = ("raw", "qcow2", "qed", "vmdk", "vdi", "vpc", "vhdx", "iso")
CACHE_MODES = ("default", "none", "writethrough", "writeback", "directsync", "unsafe")
IO_MODES = ("threads", "native", "io_uring")
BUSES = ("virtio", "scsi", "sata", "ide", "usb", "fdc")
SOURCE_TYPES = ("file", "block", "volume", "network")
PROTOCOLS = ("nbd", "iscsi", "nfs", "http", "https", "ftp", "ftps", "rbd")
QCOW2_MAGIC = b"QFI\xfb"
DIRECT_CACHES = ("none", "directsync")
#: the io_uring_setup system call (same number on every architecture since Linux 5.1)
IO_URING_SETUP = 425


@dataclass
class DiskOptions:
    """What ``attach-disk`` was asked for (virsh's option names)."""

    source: str
    target: str
    driver: str | None = None
    subdriver: str | None = None
    cache: str | None = None
    io: str | None = None
    device: str = "disk"
    bus: str | None = None
    mode: str | None = None
    source_type: str | None = None
    source_protocol: str | None = None
    source_host: str | None = None
    serial: str | None = None
    #: accept a host system file or a host block device in use (:mod:`pyvirt.host.hostpaths`)
    force: bool = False


def is_block_device(path: str) -> bool:
    """Whether *path* is a block device node."""
    with suppress(OSError):
        return stat.S_ISBLK(os.stat(path).st_mode)
    return False


def _choice(what: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise InvalidConfigError(f"{what} '{value}' is not one of {', '.join(allowed)}")


def _source_type(opts: DiskOptions) -> str:
    if opts.source_protocol:
        return "network"
    if opts.source_type:
        return opts.source_type
    return "block" if is_block_device(opts.source) else "file"


def build_disk(opts: DiskOptions) -> Disk:
    """The ``<disk>`` element for *opts* (sources not checked yet: :func:`check_source`).

    :raises InvalidConfigError: an option value is invalid or options contradict
    """
    from pyvirt.model import Disk  # lazy

    if opts.driver not in (None, "qemu"):
        raise InvalidConfigError(
            f"disk driver '{opts.driver}' is not supported", hint="pyvirt drives QEMU: use qemu"
        )
    if not TARGET_RE.match(opts.target):
        raise InvalidConfigError(
            f"disk target '{opts.target}' is not a disk name like vdb, sdb or hdc"
        )
    _choice("disk format", opts.subdriver, FORMATS)
    _choice("cache mode", opts.cache, CACHE_MODES)
    _choice("io mode", opts.io, IO_MODES)
    _choice("disk type", opts.device, ("disk", "cdrom", "floppy", "lun"))
    _choice("disk bus", opts.bus, BUSES)
    _choice("disk mode", opts.mode, ("readonly", "shareable"))
    _choice("source type", opts.source_type, SOURCE_TYPES)
    _choice("source protocol", opts.source_protocol, PROTOCOLS)
    kind = _source_type(opts)
    if kind == "network" and not opts.source_protocol:
        raise InvalidConfigError("a network disk needs --source-protocol")
    if opts.io == "native" and opts.cache not in DIRECT_CACHES:
        raise InvalidConfigError(
            f"disk '{opts.target}': io mode 'native' needs a direct cache mode",
            hint="add --cache none (or directsync), or use --io threads",
        )
    disk = Disk(type=kind, device=opts.device, target_dev=opts.target)
    disk.driver_name = "qemu"
    if opts.subdriver:
        disk.format = opts.subdriver
    elif kind != "volume":
        disk.format = "raw"
    disk.cache = opts.cache
    disk.io = opts.io
    if kind == "volume":
        pool, sep, vol = opts.source.partition("/")
        if not sep or not pool or not vol or "/" in vol:
            raise InvalidConfigError(
                f"volume source '{opts.source}' is not POOL/VOLUME",
                hint="name the volume as pool/volume, e.g. default/data.qcow2",
            )
        disk.source_pool, disk.source_volume = pool, vol
    elif kind == "network":
        disk.source_protocol = opts.source_protocol
        disk.source_name = opts.source
        host, _, port = (opts.source_host or "localhost").rpartition(":")
        if not host or not port.isdigit():
            host, port = opts.source_host or "localhost", ""
        disk.source_hosts = [(host, int(port) if port else None)]
    else:
        disk.source_path = os.path.abspath(opts.source)
    if opts.bus:
        disk.target_bus = opts.bus
    elif opts.target.startswith("sd"):
        disk.target_bus = "scsi"
    if opts.device == "cdrom" or opts.mode == "readonly":
        disk.readonly = True
    if opts.mode == "shareable":
        disk.shareable = True
    if opts.serial:
        disk.serial = opts.serial
    return disk


def disk_xml(disk: Disk) -> str:
    """The ``<disk>`` element as text (``attach-disk --print-xml``)."""
    from pyvirt.model.xmltree import to_string  # lazy

    return to_string(disk.element)


def check_source(disk: Disk) -> None:
    """Check a resolved disk's source on the host, before QEMU opens it.

    :raises NotFoundError: the file or device does not exist
    :raises InvalidConfigError: a qcow2 image given as raw
    :raises UnsupportedError: the file system cannot do the cache or io mode
    """
    if disk.type not in ("file", "block"):
        return
    path = disk.source_path
    if not path:
        return
    if not os.path.exists(path):
        raise NotFoundError(
            f"disk source '{path}' does not exist",
            hint="create it first (vol-create-as, or qemu-img create)",
        )
    if disk.type == "file" and os.path.isdir(path):
        raise InvalidConfigError(f"disk source '{path}' is a directory, not an image file")
    if disk.format in (None, "raw") and _starts_with(path, QCOW2_MAGIC):
        raise InvalidConfigError(
            f"disk source '{path}' is a qcow2 image but would be attached as raw",
            hint="pass --subdriver qcow2 (or <driver type='qcow2'/>)",
        )
    if disk.cache in DIRECT_CACHES or disk.io == "native":
        check_direct_io(path, disk.cache or "none")
    if disk.io == "io_uring":
        check_io_uring()


def _starts_with(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


def check_direct_io(path: str, cache: str) -> None:
    """Refuse a direct cache mode where the file system has no ``O_DIRECT`` (tmpfs).

    :raises UnsupportedError: naming the file system feature
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    except OSError as err:
        if err.errno == errno.EINVAL:
            raise UnsupportedError(
                f"disk source '{path}': its file system does not support O_DIRECT, which "
                f"cache mode '{cache}' needs",
                hint="use --cache writeback or writethrough, or keep the image elsewhere",
            ) from None
        return
    os.close(fd)


def check_io_uring() -> None:
    """Refuse ``io='io_uring'`` on a kernel without it (or with it disabled).

    :raises UnsupportedError: naming the missing kernel feature
    """
    try:
        with open("/proc/sys/kernel/io_uring_disabled") as f:
            disabled = f.read().strip()
    except OSError:
        disabled = "0"
    if disabled not in ("", "0"):
        raise UnsupportedError(
            f"io mode 'io_uring' is disabled on this host (kernel.io_uring_disabled={disabled})",
            hint="use --io threads or native",
        )
    import ctypes  # lazy

    libc = ctypes.CDLL(None, use_errno=True)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params
    fd = libc.syscall(IO_URING_SETUP, 1, params)
    if fd >= 0:
        os.close(fd)
        return
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EPERM):
        raise UnsupportedError(
            "io mode 'io_uring' needs the kernel's io_uring (CONFIG_IO_URING), which this "
            f"kernel lacks or refuses ({os.strerror(err)})",
            hint="use --io threads or native",
        )
