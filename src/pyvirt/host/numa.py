"""The host's NUMA topology: cells with their CPUs, memory, free memory, distances and pages.

Read from ``/sys/devices/system/node/nodeN/`` (``cpulist``, ``meminfo``, ``distance``,
``hugepages/``) and each CPU's ``topology/`` (socket, die, core, thread siblings). A kernel
built without NUMA (``CONFIG_NUMA``) has no node directory; the host is then reported as one
cell holding every online CPU and the memory of ``/proc/meminfo``, as libvirt does.

Every reader takes a ``root`` path so unit tests point it at a fake tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.host.cpu import parse_cpu_list
from pyvirt.host.hugepages import HugePagePool, global_pools, node_pools
from pyvirt.host.memory import node_memstats, read_meminfo

NODE_DIR = "sys/devices/system/node"
CPU_DIR = "sys/devices/system/cpu"
_NODE = re.compile(r"node(\d+)")


@dataclass(frozen=True)
class CellCpu:
    """One logical CPU of a cell, as in libvirt's ``<cpu id socket_id die_id core_id siblings>``."""

    id: int
    socket_id: int | None = None
    die_id: int | None = None
    core_id: int | None = None
    siblings: tuple[int, ...] = ()


@dataclass(frozen=True)
class NumaCell:
    """One host NUMA node.

    :ivar memory_kib: the node's memory (``MemTotal`` of its ``meminfo``)
    :ivar free_kib: its free memory (``MemFree``)
    :ivar distances: ``{node id: distance}`` (10 = local)
    :ivar pages: the node's hugepage pools, ascending by size
    """

    id: int
    cpus: tuple[CellCpu, ...]
    memory_kib: int
    free_kib: int
    distances: dict[int, int] = field(default_factory=dict)
    pages: tuple[HugePagePool, ...] = ()

    @property
    def cpu_ids(self) -> tuple[int, ...]:
        """The ids of the cell's CPUs."""
        return tuple(c.id for c in self.cpus)

    @property
    def sockets(self) -> tuple[int, ...]:
        """Physical sockets the cell's CPUs belong to."""
        return tuple(sorted({c.socket_id for c in self.cpus if c.socket_id is not None}))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def read_cell_cpu(root: Path, cpu: int) -> CellCpu:
    """Socket, die, core and SMT siblings of one CPU from its sysfs ``topology``."""
    topo = root / CPU_DIR / f"cpu{cpu}" / "topology"
    siblings = _read(topo / "thread_siblings_list")
    try:
        sibling_ids = parse_cpu_list(siblings) if siblings else (cpu,)
    except ValueError:
        sibling_ids = (cpu,)
    return CellCpu(
        id=cpu,
        socket_id=_int(_read(topo / "physical_package_id")),
        die_id=_int(_read(topo / "die_id")),
        core_id=_int(_read(topo / "core_id")),
        siblings=sibling_ids,
    )


def node_ids(root: Path = Path("/")) -> list[int]:
    """Ids of the host's online NUMA nodes (``[]`` when the kernel has no NUMA support)."""
    online = _read(root / NODE_DIR / "online")
    if online:
        try:
            return list(parse_cpu_list(online))
        except ValueError:
            pass
    try:
        entries = (root / NODE_DIR).iterdir()
        return sorted(int(m.group(1)) for e in entries if (m := _NODE.fullmatch(e.name)))
    except OSError:
        return []


def has_numa(root: Path = Path("/")) -> bool:
    """Whether the kernel exposes NUMA nodes in sysfs (``CONFIG_NUMA``)."""
    return bool(node_ids(root))


def _distances(root: Path, node: int, ids: list[int]) -> dict[int, int]:
    text = _read(root / NODE_DIR / f"node{node}" / "distance") or ""
    values = [int(v) for v in text.split() if v.isdigit()]
    return dict(zip(ids, values, strict=False))


def read_cells(root: Path = Path("/")) -> list[NumaCell]:
    """Every NUMA cell of the host (one synthetic cell without kernel NUMA support)."""
    ids = node_ids(root)
    if not ids:
        return [_single_cell(root)]
    cells = []
    for node in ids:
        base = root / NODE_DIR / f"node{node}"
        try:
            cpu_ids = parse_cpu_list(_read(base / "cpulist") or "")
        except ValueError:
            cpu_ids = ()
        mem = node_memstats(root, node)
        cells.append(
            NumaCell(
                id=node,
                cpus=tuple(read_cell_cpu(root, c) for c in cpu_ids),
                memory_kib=mem.total if mem else 0,
                free_kib=mem.free if mem else 0,
                distances=_distances(root, node, ids),
                pages=tuple(node_pools(root, node)),
            )
        )
    return cells


def _single_cell(root: Path) -> NumaCell:
    try:
        online = parse_cpu_list(_read(root / CPU_DIR / "online") or "")
    except ValueError:
        online = ()
    mem = read_meminfo(root)
    return NumaCell(
        id=0,
        cpus=tuple(read_cell_cpu(root, c) for c in online),
        memory_kib=mem.get("MemTotal", 0),
        free_kib=mem.get("MemFree", 0),
        distances={0: 10},
        pages=tuple(global_pools(root)),
    )


def cell(root: Path, node: int) -> NumaCell:
    """One cell by id.

    :raises KeyError: when the host has no such cell
    """
    for c in read_cells(root):
        if c.id == node:
            return c
    raise KeyError(node)
