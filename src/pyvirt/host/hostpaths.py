"""Host files and devices a guest must not be given without the administrator saying so.

A disk on ``/etc/shadow`` hands the guest the host's password hashes; a disk on the block
device the host's root file system lives on lets the guest corrupt the host; ``/dev/mem`` is
the host's memory. :func:`path_risk` names such a risk for one path, :func:`domain_risks` for
every disk and character device of a definition; ``define --force`` and ``attach-disk
--force`` accept them anyway.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain

#: host system trees: any file below them
SYSTEM_TREES = ("/etc", "/proc", "/sys", "/boot")
#: device nodes that are the host's memory or I/O ports
MEMORY_DEVICES = ("/dev/mem", "/dev/kmem", "/dev/port")


def _below(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def _mounted_devices(proc: Path) -> set[int]:
    """Device numbers of block devices that are mounted or used as swap."""
    out: set[int] = set()
    sources: list[str] = []
    with contextlib.suppress(OSError, IndexError):
        sources += [line.split()[0] for line in (proc / "mounts").read_text().splitlines() if line]
    with contextlib.suppress(OSError, IndexError):
        sources += [line.split()[0] for line in (proc / "swaps").read_text().splitlines()[1:]]
    for src in sources:
        if not src.startswith("/"):
            continue
        try:
            st = os.stat(src)
        except OSError:
            continue
        if stat.S_ISBLK(st.st_mode):
            out.add(st.st_rdev)
    return out


def _family(sysfs: Path, rdev: int) -> Iterable[tuple[int, Path]]:
    """The block device ``rdev`` and its partitions: (device number, sysfs directory)."""
    base = sysfs / "dev" / "block" / f"{os.major(rdev)}:{os.minor(rdev)}"
    yield rdev, base
    try:
        entries = list(base.iterdir())
    except OSError:
        return
    for entry in entries:
        try:
            major, minor = (entry / "dev").read_text().strip().split(":")
        except (OSError, ValueError):
            continue
        if (entry / "partition").exists():
            yield os.makedev(int(major), int(minor)), entry


def block_device_use(rdev: int, *, proc: Path = Path("/proc"), sysfs: Path = Path("/sys")) -> str:
    """Why block device ``rdev`` is in use by the host ("" if it is not): mounted (itself or a
    partition), a swap, or held by another device (LVM PV, RAID member, dm-crypt)."""
    mounted = _mounted_devices(proc)
    for dev, directory in _family(sysfs, rdev):
        if dev in mounted:
            return (
                "is mounted or a swap on the host"
                if dev == rdev
                else ("has a partition mounted or used as swap on the host")
            )
        try:
            if any((directory / "holders").iterdir()):
                return "is held by another device (an LVM physical volume, RAID or dm device)"
        except OSError:
            continue
    return ""


def path_risk(path: str, state_dirs: Iterable[Path] = ()) -> str:
    """Why giving ``path`` to a guest endangers the host ("" if nothing is known).

    :param state_dirs: pyvirt's state directories: their files are pyvirt's own
    """
    real = os.path.realpath(path)
    for dev in MEMORY_DEVICES:
        if real == dev:
            return f"'{path}' is the host's memory or I/O port device {dev}"
    for tree in SYSTEM_TREES:
        if _below(real, tree):
            return f"'{path}' is a host system file under {tree}"
    for directory in state_dirs:
        if _below(real, os.path.realpath(directory)) and not _below(
            real, os.path.realpath(directory / "images")
        ):
            return f"'{path}' is one of pyvirt's own state files"
    try:
        st = os.stat(real)
    except OSError:
        return ""
    if stat.S_ISBLK(st.st_mode):
        why = block_device_use(st.st_rdev)
        if why:
            return f"block device '{path}' {why}"
    return ""


def domain_risks(
    dom: Domain, state_dirs: Iterable[Path] = (), log_dir: Path | None = None
) -> list[str]:
    """The risks of every disk source and file-backed character device of ``dom``.

    A ``<serial type='file'>`` (or console/channel) onto an existing file other than pyvirt's
    own logs is a risk too unless it appends (``<source append='on'>``): QEMU truncates it.
    """
    dirs = list(state_dirs)
    risks: list[str] = []
    for disk in dom.devices.disks:
        path = disk.source_path
        if path and disk.type in ("file", "block"):
            why = path_risk(path, dirs)
            if why:
                risks.append(f"disk {disk.target_dev or ''}: {why}".replace("disk : ", "disk: "))
    for dev in [*dom.devices.serials, *dom.devices.consoles, *dom.devices.channels]:
        path = dev.source_path
        if dev.type not in ("file", "dev", "pipe") or not path:
            continue
        why = path_risk(path, [d for d in dirs if log_dir is None or d != log_dir])
        if why:
            risks.append(f"{dev.element.tag}: {why}")
        elif (
            dev.type == "file"
            and os.path.exists(path)
            and dev.source_append is not True
            and not (log_dir is not None and _below(os.path.realpath(path), str(log_dir)))
        ):
            risks.append(
                f"{dev.element.tag}: '{path}' exists and QEMU would truncate it "
                "(add <source append='on'/> to keep it)"
            )
    return risks


def refuse_risks(what: str, risks: Iterable[str]) -> None:
    """Raise for the first of ``risks`` (empty strings are no risk).

    :param what: the object, like ``domain 'd'``
    :raises InvalidConfigError: naming the risk; the hint names ``--force``
    """
    for risk in risks:
        if risk:
            raise InvalidConfigError(
                f"{what}: {risk}",
                hint="the guest could read or overwrite it; pass --force if you mean it",
            )
