"""Hugepage pools: sizes, counts per NUMA node, reservation (``allocpages``), hugetlbfs mounts.

The kernel keeps one pool per page size, globally under
``/sys/kernel/mm/hugepages/hugepages-<size>kB/`` and per node under
``/sys/devices/system/node/nodeN/hugepages/hugepages-<size>kB/`` (``nr_hugepages``,
``free_hugepages``, ``surplus_hugepages``). Reserving pages means writing ``nr_hugepages``;
the kernel may reserve fewer than asked (memory too fragmented for contiguous pages, common
for 1 GiB pages after boot), so :func:`allocate` reads the count back and reports the
shortfall instead of claiming success.

Every reader takes a ``root`` path so unit tests point it at a fake tree.
"""

from __future__ import annotations

import errno
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from pyvirt.errors import InvalidConfigError, OperationFailedError, UnsupportedError
from pyvirt.model import units

_POOL_DIR = re.compile(r"hugepages-(\d+)kB")

GLOBAL_DIR = "sys/kernel/mm/hugepages"
NODE_DIR = "sys/devices/system/node"


@dataclass(frozen=True)
class HugePagePool:
    """One hugepage pool: a page size, globally (``node=None``) or on one NUMA node.

    :ivar size_kib: page size in KiB (2048, 1048576 on x86)
    :ivar total: pages reserved (``nr_hugepages``)
    :ivar free: reserved pages not in use (``free_hugepages``)
    :ivar surplus: pages allocated beyond the reservation (overcommit)
    """

    size_kib: int
    node: int | None
    total: int
    free: int
    surplus: int = 0

    def to_json(self) -> dict[str, int | None]:
        """JSON-ready dict."""
        return asdict(self)


def parse_page_size(text: str) -> int:
    """Parse a page size such as ``2M``, ``2048``, ``2048KiB`` or ``1G`` into KiB.

    A bare number is KiB, as in virsh ``allocpages --pagesize``; units are libvirt's
    (:func:`pyvirt.model.units.parse_size`), so ``1GB`` is 10^9 bytes, not a page size.

    :raises InvalidConfigError: for text that is not a size
    """
    size = units.parse_size(text, what="page size", default_unit="KiB")
    if size <= 0 or size % units.KIB:
        raise InvalidConfigError(
            f"page size '{text}' is not a whole number of KiB",
            hint="use a size such as 2M, 1G or 2048 (KiB)",
        )
    return size // units.KIB


def format_page_size(size_kib: int) -> str:
    """``2048`` -> ``2M``, ``1048576`` -> ``1G``, ``4`` -> ``4K``."""
    for unit, factor in (("G", 1024**2), ("M", 1024), ("K", 1)):
        if size_kib % factor == 0:
            return f"{size_kib // factor}{unit}"
    return f"{size_kib}K"  # pragma: no cover - every int is a multiple of 1


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _pools_in(directory: Path, node: int | None) -> list[HugePagePool]:
    pools = []
    try:
        entries = sorted(directory.iterdir())
    except OSError:
        return []
    for entry in entries:
        match = _POOL_DIR.fullmatch(entry.name)
        if not match:
            continue
        total = _read_int(entry / "nr_hugepages") or 0
        free = _read_int(entry / "free_hugepages")
        pools.append(
            HugePagePool(
                size_kib=int(match.group(1)),
                node=node,
                total=total,
                free=total if free is None else free,
                surplus=_read_int(entry / "surplus_hugepages") or 0,
            )
        )
    return sorted(pools, key=lambda p: p.size_kib)


def page_sizes(root: Path = Path("/")) -> list[int]:
    """Hugepage sizes (KiB) the kernel offers, ascending; ``[]`` without hugetlb support."""
    return [p.size_kib for p in _pools_in(root / GLOBAL_DIR, None)]


def global_pools(root: Path = Path("/")) -> list[HugePagePool]:
    """The system-wide pool of each page size."""
    return _pools_in(root / GLOBAL_DIR, None)


def node_pools(root: Path, node: int) -> list[HugePagePool]:
    """The pools of one NUMA node (``[]`` when the node has no hugepage directory)."""
    return _pools_in(root / NODE_DIR / f"node{node}" / "hugepages", node)


def _pool_dir(root: Path, size_kib: int, node: int | None) -> Path:
    base = root / GLOBAL_DIR if node is None else root / NODE_DIR / f"node{node}" / "hugepages"
    return base / f"hugepages-{size_kib}kB"


def check_size(root: Path, size_kib: int) -> None:
    """Refuse a page size the host does not offer.

    :raises UnsupportedError: naming the sizes it offers (or the missing kernel feature)
    """
    sizes = page_sizes(root)
    if not sizes:
        raise UnsupportedError(
            "this host offers no hugepages (kernel feature HugeTLB, CONFIG_HUGETLBFS)",
            hint="use a kernel built with CONFIG_HUGETLBFS",
        )
    if size_kib not in sizes:
        offered = ", ".join(format_page_size(s) for s in sizes)
        raise UnsupportedError(
            f"page size '{format_page_size(size_kib)}' is not supported by this host",
            hint=f"use one of: {offered}",
        )


def allocate(
    root: Path, size_kib: int, count: int, *, node: int | None = None, add: bool = False
) -> HugePagePool:
    """Reserve ``count`` pages of ``size_kib`` (on ``node``, or system-wide) and verify.

    With ``add`` the pool grows by ``count`` instead of being set to it.

    :returns: the pool as read back after the write
    :raises UnsupportedError: unknown page size or node
    :raises OperationFailedError: the write failed, or the kernel reserved fewer pages
    """
    check_size(root, size_kib)
    directory = _pool_dir(root, size_kib, node)
    if node is not None and not directory.is_dir():
        raise UnsupportedError(
            f"NUMA node {node} does not exist or has no {format_page_size(size_kib)} pool",
            hint="list the host's cells with 'freecell --all'",
        )
    current = _read_int(directory / "nr_hugepages") or 0
    wanted = current + count if add else count
    if wanted < 0:
        raise InvalidConfigError(f"page count {wanted} is negative")
    try:
        (directory / "nr_hugepages").write_text(f"{wanted}\n")
    except OSError as err:
        hint = "run as root" if err.errno in (errno.EACCES, errno.EPERM) else None
        raise OperationFailedError(
            f"cannot set {format_page_size(size_kib)} hugepages to {wanted}: {err.strerror}",
            hint=hint,
        ) from None
    got = _pools_in(directory.parent, node)
    pool = next((p for p in got if p.size_kib == size_kib), None)
    total = pool.total if pool else 0
    if total < wanted:
        where = f" on node {node}" if node is not None else ""
        raise OperationFailedError(
            f"the kernel reserved only {total} of {wanted} {format_page_size(size_kib)} "
            f"hugepages{where}",
            hint="free memory or reserve hugepages at boot (hugepages= on the kernel command line)",
        )
    assert pool is not None
    return pool


def hugetlbfs_mounts(root: Path = Path("/")) -> dict[str, int | None]:
    """hugetlbfs mount points with their page size in KiB (``None``: the default size)."""
    try:
        text = (root / "proc/mounts").read_text()
    except OSError:
        return {}
    found: dict[str, int | None] = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4 or fields[2] != "hugetlbfs":
            continue
        size: int | None = None
        for opt in fields[3].split(","):
            if opt.startswith("pagesize="):
                try:
                    size = parse_page_size(opt.partition("=")[2])
                except InvalidConfigError:
                    size = None
        found[fields[1]] = size
    return found


def default_page_size(root: Path = Path("/")) -> int | None:
    """The default hugepage size (``Hugepagesize`` of ``/proc/meminfo``) in KiB."""
    try:
        for line in (root / "proc/meminfo").read_text().splitlines():
            if line.startswith("Hugepagesize:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


__all__ = [
    "HugePagePool",
    "allocate",
    "check_size",
    "default_page_size",
    "format_page_size",
    "global_pools",
    "hugetlbfs_mounts",
    "node_pools",
    "page_sizes",
    "parse_page_size",
]
