"""Lowering of guest memory: ``-m``, guest NUMA nodes and their ``memory-backend-*`` objects.

Sizes are rounded up to whole MiB, as QEMU wants for x86 RAM; with NUMA the machine size is
the sum of the (rounded) node sizes. A node gets ``memory-backend-file`` on hugetlbfs when
``<hugepages>`` covers it (``prealloc``) or when ``memAccess``/``<access mode>`` sets ``share``
(a file in the run directory, as libvirt does), and
``host-nodes``/``policy`` from ``<numatune>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.argv.opts import JsonValue, escape, json_opts, qemu_opts
from pyvirt.errors import UnsupportedError
from pyvirt.model.cpuset import parse_cpuset

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build
    from pyvirt.model import NumaCell

#: <numatune> mode -> memory-backend policy (restrictive leaves the policy to cgroups)
NUMA_POLICY = {"strict": "bind", "preferred": "preferred", "interleave": "interleave"}
MAIN_RAM = "pc.ram"


def round_mib(kib: int) -> int:
    """Round a size in KiB up to a whole MiB (still in KiB)."""
    return (kib + 1023) // 1024 * 1024


def _cells(b: Build) -> list[NumaCell]:
    cpu = b.domain.cpu
    return list(cpu.numa_cells) if cpu is not None else []


def needs_ram_backend(b: Build) -> bool:
    """Whether the machine RAM (no NUMA) needs an explicit backend object."""
    if _cells(b):
        return False
    mb = b.domain.memory_backing
    if mb is None:
        return False
    return bool(
        mb.hugepages_enabled or mb.source_type in ("file", "memfd") or mb.access_mode == "shared"
    )


def memory(b: Build) -> list[str]:
    """``-m size=Nk[,slots=S,maxmem=Mk]`` plus the machine RAM backend when needed (with the
    ``<numatune>`` policy when the guest has no NUMA cells) and ``-overcommit mem-lock=on``
    for ``<locked/>``."""
    d = b.domain
    cells = _cells(b)
    size = sum(round_mib(c.memory_kib or 0) for c in cells) if cells else round_mib(d.memory_kib)
    args = [
        "-m",
        qemu_opts(
            size=f"{size}k",
            slots=d.max_memory_slots if d.max_memory_kib else None,
            maxmem=f"{round_mib(d.max_memory_kib)}k" if d.max_memory_kib else None,
        ),
    ]
    if needs_ram_backend(b):
        args += ["-object", json_opts(_backend(b, MAIN_RAM, size, None))]
    mb = d.memory_backing
    if mb is not None and mb.locked:
        # mlock all guest RAM: it is never swapped out (needs RLIMIT_MEMLOCK / root)
        args += ["-overcommit", "mem-lock=on"]
    return args


def numa(b: Build) -> list[str]:
    """One ``-object memory-backend-*`` and ``-numa node`` per ``<cell>``."""
    args: list[str] = []
    for pos, cell in enumerate(_cells(b)):
        nodeid = cell.id if cell.id is not None else pos
        memdev = f"ram-node{nodeid}"
        args += ["-object", json_opts(_backend(b, memdev, round_mib(cell.memory_kib or 0), cell))]
        text = qemu_opts("node", nodeid=nodeid)
        if cell.cpus:
            # a CPU set with holes is written as repeated cpus= keys
            for chunk in cell.cpus.replace(" ", "").split(","):
                if chunk:
                    text += f",cpus={escape(chunk)}"
        args += ["-numa", f"{text},memdev={memdev}"]
    return args


def _hugepage_kib(b: Build, nodeid: int | None) -> int | None:
    mb = b.domain.memory_backing
    if mb is None or not (mb.hugepages_enabled or mb.hugepages):
        return None
    default: int | None = None
    for page in mb.hugepages:
        size = page.size_kib or b.ctx.default_hugepage_kib
        if page.nodeset is None:
            default = default or size
        elif nodeid is None or nodeid in parse_cpuset(page.nodeset, what="nodeset"):
            return size
    if default is None and nodeid is not None and mb.hugepages:
        return None  # pages listed, none for this node: plain RAM
    return default or b.ctx.default_hugepage_kib


def _backend(b: Build, oid: str, size_kib: int, cell: NumaCell | None) -> dict[str, JsonValue]:
    mb = b.domain.memory_backing
    nodeid = None if cell is None else (cell.id if cell.id is not None else _cells(b).index(cell))
    page = _hugepage_kib(b, nodeid)
    props: dict[str, JsonValue] = {"qom-type": "memory-backend-ram", "id": oid}
    if page is not None:
        path = b.ctx.hugepage_dirs.get(page)
        if path is None:
            raise UnsupportedError(
                f"no hugetlbfs mount known for {page} KiB pages",
                hint=f"mount hugetlbfs with pagesize={page}K",
            )
        props.update({"qom-type": "memory-backend-file", "mem-path": path})
    elif mb is not None and mb.source_type == "file":
        props.update({"qom-type": "memory-backend-file", "mem-path": str(b.ctx.run_dir)})
    elif mb is not None and mb.source_type == "memfd":
        props["qom-type"] = "memory-backend-memfd"
    access = (cell.mem_access if cell is not None else None) or (mb.access_mode if mb else None)
    if access in ("shared", "private") and props["qom-type"] == "memory-backend-ram":
        # as libvirt: a file in the domain's directory, so that shared RAM has an fd
        # (vhost-user needs one; anonymous shared memory has none)
        props.update({"qom-type": "memory-backend-file", "mem-path": str(b.ctx.run_dir)})
    if access in ("shared", "private"):
        props["share"] = access == "shared"
    discard = cell.discard if cell is not None and cell.discard is not None else None
    if discard is None and mb is not None and mb.discard:
        discard = True
    if discard is not None and props["qom-type"] == "memory-backend-file":
        props["discard-data"] = discard
    if page is not None or (mb is not None and mb.allocation_mode == "immediate"):
        props["prealloc"] = True
    props["size"] = size_kib * 1024
    if cell is not None and nodeid is not None:
        props.update(_numa_policy(b, nodeid))
    elif cell is None:
        props.update(_numa_policy(b, None))
    return props


def memory_backend(
    b: Build, oid: str, size_kib: int, node: int | None, *, access: str | None = None
) -> dict[str, JsonValue]:
    """The backend object of a memory device on guest NUMA node *node*: backed as that
    node's RAM (huge pages, access, host policy); *access* (``shared``/``private``) wins."""
    cells = _cells(b)
    cell = next((c for pos, c in enumerate(cells) if (c.id if c.id is not None else pos) == node),
                None)  # fmt: skip
    props = _backend(b, oid, size_kib, cell)
    if access in ("shared", "private"):
        props["share"] = access == "shared"
    return props


def _numa_policy(b: Build, nodeid: int | None) -> dict[str, JsonValue]:
    tune = b.domain.numatune
    if tune is None:
        return {}
    mode, nodeset = tune.mode or "strict", tune.nodeset
    for memnode in tune.memnodes:
        if memnode.cellid == nodeid:
            mode, nodeset = memnode.mode or "strict", memnode.nodeset
            break
    policy = NUMA_POLICY.get(mode)
    if policy is None or not nodeset:
        return {}
    return {"host-nodes": sorted(parse_cpuset(nodeset, what="nodeset")), "policy": policy}
