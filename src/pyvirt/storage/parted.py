"""The only module that runs parted, partx and blkid: partition tables on block devices.

Everything is read in bytes (``parted -s -m DEV unit B print free``). When parted changes a
table it also tells the kernel (BLKPG), which creates ``/dev/loopNpM``-style nodes even where
the kernel does not scan partition tables by itself; :func:`add_nodes` (``partx -a``) does the
same for a table written elsewhere. Where no node appears, callers use the partition as a byte
range of the whole device.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from pyvirt.errors import InvalidConfigError
from pyvirt.hostcmd import run, tool

#: libvirt's <format type> names -> parted's label names
LABELS = {"dos": "msdos", "msdos": "msdos", "gpt": "gpt"}
#: partition alignment of new partitions
ALIGN = 1024 * 1024


@dataclass(frozen=True)
class Partition:
    """One partition (``number`` from the table) or, with ``number == 0``, a free region."""

    number: int
    start: int
    end: int  # inclusive, as parted prints it

    @property
    def size(self) -> int:
        """Length in bytes."""
        return self.end - self.start + 1


@dataclass(frozen=True)
class Table:
    """A device's partition table as parted reads it."""

    device: str
    size: int
    sector_size: int
    label: str  # "msdos", "gpt", ... or "unknown"
    partitions: tuple[Partition, ...]
    free: tuple[Partition, ...]


def parted_label(fmt: str | None) -> str:
    """parted's name for a libvirt ``<format type>`` (default ``dos`` → ``msdos``).

    :raises InvalidConfigError: for a format parted cannot write here
    """
    label = LABELS.get(fmt or "dos")
    if label is None:
        raise InvalidConfigError(
            f"partition table format '{fmt}' is not supported",
            hint="use <format type='dos'/> or <format type='gpt'/>",
        )
    return label


def _parted(device: str, *args: str, what: str) -> str:
    argv = [tool("parted", "parted"), "-s", "-m", device, "unit", "B", *args]
    return run(argv, what=what).stdout


def _bytes(text: str) -> int:
    return int(text.rstrip("B"))


def read_table(device: str) -> Table:
    """The partition table of ``device`` (label ``unknown`` when there is none)."""
    argv = [tool("parted", "parted"), "-s", "-m", device, "unit", "B", "print", "free"]
    proc = run(argv, what=f"cannot read the partition table of '{device}'", ok_codes=(0, 1))
    return parse_table(device, proc.stdout, proc.stderr)


def parse_table(device: str, text: str, stderr: str = "") -> Table:
    """Parse ``parted -m unit B print free`` output (pure).

    :raises InvalidConfigError: when the output has no line for ``device``
    """
    lines = [ln.rstrip(";") for ln in text.splitlines() if ln.strip()]
    info = next((ln.split(":") for ln in lines if ln.startswith(device + ":")), None)
    if info is None or len(info) < 6:
        raise InvalidConfigError(
            f"'{device}' is not a block device parted can read",
            hint=(stderr.strip().splitlines() or ["check the <device path>"])[-1],
        )
    parts: list[Partition] = []
    free: list[Partition] = []
    for ln in lines:
        fields = ln.split(":")
        if len(fields) < 4 or not fields[0].isdigit() or ln.startswith(device + ":"):
            continue
        part = Partition(int(fields[0]), _bytes(fields[1]), _bytes(fields[2]))
        if len(fields) >= 5 and fields[4] == "free":
            free.append(Partition(0, part.start, part.end))
        else:
            parts.append(part)
    return Table(device, _bytes(info[1]), int(info[3]), info[5], tuple(parts), tuple(free))


def has_signature(device: str) -> str | None:
    """What ``blkid -p`` finds on ``device`` (a filesystem, LVM or partition table type)."""
    argv = [tool("blkid", "util-linux"), "-p", "-o", "export", device]
    proc = run(argv, what=f"cannot probe '{device}'", ok_codes=(0, 2))
    values = dict(ln.split("=", 1) for ln in proc.stdout.splitlines() if "=" in ln)
    return values.get("TYPE") or values.get("PTTYPE")


def make_label(device: str, label: str) -> None:
    """Write an empty partition table of type ``label`` (``msdos``/``gpt``)."""
    _parted(device, "mklabel", label, what=f"cannot write a {label} label on '{device}'")


def make_partition(device: str, start: int, end: int) -> None:
    """Create a primary partition from byte ``start`` to ``end`` (inclusive)."""
    _parted(
        device,
        "mkpart",
        "primary",
        f"{start}B",
        f"{end}B",
        what=f"cannot create a partition on '{device}'",
    )


def remove_partition(device: str, number: int) -> None:
    """Delete partition ``number`` (parted also removes its kernel node)."""
    _parted(device, "rm", str(number), what=f"cannot remove partition {number} of '{device}'")


def node_name(device: str, number: int) -> str:
    """The partition's node: ``/dev/sdb`` + 1 → ``/dev/sdb1``, ``/dev/loop0`` → ``loop0p1``."""
    sep = "p" if device[-1:].isdigit() else ""
    return f"{device}{sep}{number}"


def add_nodes(device: str) -> None:
    """Ask the kernel for nodes of the partitions it does not know yet (``partx -a``)."""
    argv = [tool("partx", "util-linux"), "-a", device]
    # exit 1 when some nodes already exist; the table is still read
    run(argv, what=f"cannot register the partitions of '{device}'", ok_codes=(0, 1))


def remove_nodes(device: str) -> None:
    """Drop the kernel's partition nodes of ``device`` (``partx -d``)."""
    argv = [tool("partx", "util-linux"), "-d", device]
    run(argv, what=f"cannot drop the partitions of '{device}'", ok_codes=(0, 1))


def is_block_device(path: str) -> bool:
    """Whether ``path`` is a block device node."""
    try:
        return stat.S_ISBLK(os.stat(path).st_mode)
    except OSError:
        return False


def device_size(path: str) -> int:
    """Size in bytes of block device (or file) ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.lseek(fd, 0, os.SEEK_END)
    finally:
        os.close(fd)


def place(table: Table, size: int) -> tuple[int, int] | None:
    """Where a new partition of exactly ``size`` bytes fits: ``(start, end)`` or None."""
    for region in table.free:
        start = -(-region.start // ALIGN) * ALIGN
        end = start + size - 1
        if end <= region.end:
            return start, end
    return None
