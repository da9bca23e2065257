"""Capacity planner (``pyvirt plan``): NUMA-aligned VM sizes, placement, disk provisioning.

Input: a host (:class:`~pyvirt.service.tuning.advisor.HostShape`: the real one, or a description)
and workloads (name, count, optional vCPUs/memory, a disk profile). Output: one proposed VM
per workload instance with its vCPUs, memory, guest topology, host NUMA node and CPUs, and
per workload the disk provisioning (thin/thick), image format and cache mode, with reasons.

Sizing follows the seed's case analysis (案例分析): a mail system needs little CPU and lets
Linux use free memory as disk cache, so the host is cut into *fixed-size NUMA-aligned units*:
VMs without explicit sizes get an equal share of one node, with a vCPU count from the
recommended shapes (1, 2, 4, 8 per socket). On the seed's host (2 sockets x 8 cores,
128 GiB, one node per socket), 4 mail servers become 4 VMs of 4 vCPUs and 32 GiB, two per
node. VMs with explicit sizes are placed first (largest memory first, on the node with most
room); a VM larger than any node is placed across nodes with a vNUMA note.

Disk profiles (:data:`PROFILES`) map a description such as "many small files, random I/O" or
"database" to thin or thick provisioning and a cache mode, each with its reason.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from pyvirt.errors import InvalidConfigError
from pyvirt.model import units
from pyvirt.model.cpuset import format_cpuset
from pyvirt.service.tuning.advisor import GOOD_SHAPES, HostShape

_GIB = 1024 * 1024


@dataclass(frozen=True)
class DiskProfile:
    """How disks of one kind of workload should be provisioned and cached."""

    name: str
    description: str
    provisioning: str  # thin | thick
    format: str  # qcow2 | raw
    preallocation: str  # off | metadata | falloc | full
    cache: str  # none | writeback | writethrough | directsync | unsafe
    io: str  # native | threads
    reasons: tuple[str, ...]


PROFILES: dict[str, DiskProfile] = {
    p.name: p
    for p in (
        DiskProfile(
            "mail",
            "many small files, random I/O from many processes at once (mail store)",
            "thin",
            "qcow2",
            "metadata",
            "none",
            "native",
            (
                "thin: the seed's case analysis recommends thin provisioning for mail user "
                "disks: no large initial allocation, grows on demand",
                "cache=none: the guest's Linux page cache already uses free memory as disk "
                "cache (seed, 案例分析); host caching would cache the same data twice",
            ),
        ),
        DiskProfile(
            "database",
            "database: small random reads and writes, needs flushes honoured",
            "thick",
            "raw",
            "full",
            "none",
            "native",
            (
                "thick: the seed's case analysis picks thick provisioning for the mail "
                "system's database to speed up small-block I/O (no allocation on write)",
                "cache=none, io=native: the database has its own buffer pool and issues "
                "flushes; O_DIRECT avoids double caching and keeps write ordering",
            ),
        ),
        DiskProfile(
            "web",
            "read-mostly system and content disks",
            "thin",
            "qcow2",
            "metadata",
            "writeback",
            "threads",
            (
                "thin: content grows slowly; space is allocated when written",
                "cache=writeback: reads are served from the host page cache; guest "
                "flushes are still honoured",
            ),
        ),
        DiskProfile(
            "fileserver",
            "large files, sequential I/O",
            "thick",
            "raw",
            "falloc",
            "none",
            "native",
            (
                "thick raw: sequential throughput without qcow2 cluster lookups or "
                "fragmentation from allocation on write",
                "cache=none: large streams would evict everything else from the host cache",
            ),
        ),
        DiskProfile(
            "scratch",
            "disposable data (CI, build caches)",
            "thin",
            "qcow2",
            "off",
            "unsafe",
            "threads",
            (
                "thin: short-lived images should not reserve space",
                "cache=unsafe: flushes are ignored; fastest, and acceptable only because the "
                "data may be lost on a host crash",
            ),
        ),
    )
}
_KEYWORDS = (
    ("small file", "mail"),
    ("mail", "mail"),
    ("random", "mail"),
    ("database", "database"),
    ("db", "database"),
    ("sql", "database"),
    ("sequential", "fileserver"),
    ("large file", "fileserver"),
    ("file", "fileserver"),
    ("web", "web"),
    ("read", "web"),
    ("scratch", "scratch"),
    ("ci", "scratch"),
)


def profile_for(text: str) -> DiskProfile:
    """The disk profile named by, or described by, ``text``.

    :raises InvalidConfigError: nothing matches
    """
    key = text.strip().lower()
    if key in PROFILES:
        return PROFILES[key]
    for word, name in _KEYWORDS:
        if re.search(rf"\b{re.escape(word)}", key):
            return PROFILES[name]
    raise InvalidConfigError(
        f"disk profile '{text}' is unknown",
        hint=f"use one of {', '.join(PROFILES)} or a description like 'many small files'",
    )


def parse_size_kib(text: str, what: str = "memory") -> int:
    """``32G``, ``512M``, ``1T`` or a bare number of KiB (libvirt's units), in KiB.

    :raises InvalidConfigError: not a size
    """
    return units.parse_size_kib(text, what=what)


def _kv(text: str, what: str) -> dict[str, str]:
    out = {}
    for item in re.split(r"[,\n]", text):
        item = item.split("#", 1)[0].strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise InvalidConfigError(f"{what} item '{item}' is not key=value")
        out[key.strip().lower()] = value.strip()
    return out


def _int(value: Any, what: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidConfigError(f"{what} '{value}' is not a whole number") from None
    if number <= 0:
        raise InvalidConfigError(f"{what} must be positive, not {number}")
    return number


def parse_host(text: str) -> HostShape:
    """A host description: JSON or ``key=value`` lines/commas.

    Keys: ``sockets``, ``cores`` (per socket), ``threads`` (per core, default 1),
    ``memory`` (``128G``), ``nodes`` (default: one per socket).

    :raises InvalidConfigError: missing or bad keys
    """
    data: dict[str, Any]
    if text.lstrip().startswith("{"):
        try:
            data = {k.lower(): v for k, v in json.loads(text).items()}
        except (ValueError, AttributeError) as err:
            raise InvalidConfigError(f"host description is not valid JSON: {err}") from None
    else:
        data = dict(_kv(text, "host description"))
    for key in ("sockets", "cores", "memory"):
        if key not in data:
            raise InvalidConfigError(
                f"host description lacks '{key}'",
                hint="give sockets, cores (per socket), memory, e.g. sockets=2,cores=8,memory=128G",
            )
    memory = data["memory"]
    mem_kib = memory if isinstance(memory, int) else parse_size_kib(str(memory))
    sockets = _int(data["sockets"], "sockets")
    return HostShape.uniform(
        sockets,
        _int(data["cores"], "cores"),
        mem_kib,
        threads=_int(data.get("threads", 1), "threads"),
        nodes=_int(data.get("nodes", sockets), "nodes"),
    )


@dataclass(frozen=True)
class Workload:
    """One kind of VM wanted ``count`` times."""

    name: str
    count: int = 1
    vcpus: int | None = None
    memory_kib: int | None = None
    disk: DiskProfile = field(default_factory=lambda: PROFILES["web"])
    disk_size: str | None = None


def parse_workload(text: str) -> Workload:
    """``name=mail,count=4,vcpus=4,memory=32G,disk=mail[,disk_size=200G]``.

    :raises InvalidConfigError: missing name, bad numbers, unknown profile or key
    """
    kv = _kv(text, "workload")
    unknown = set(kv) - {"name", "count", "vcpus", "memory", "disk", "disk_size"}
    if unknown:
        raise InvalidConfigError(f"workload key '{sorted(unknown)[0]}' is unknown")
    if not kv.get("name"):
        raise InvalidConfigError("workload needs a name", hint="e.g. name=mail,count=4,disk=mail")
    return Workload(
        name=kv["name"],
        count=_int(kv.get("count", 1), "count"),
        vcpus=_int(kv["vcpus"], "vcpus") if "vcpus" in kv else None,
        memory_kib=parse_size_kib(kv["memory"]) if "memory" in kv else None,
        disk=profile_for(kv.get("disk", "web")),
        disk_size=kv.get("disk_size"),
    )


def parse_workloads_file(text: str) -> list[Workload]:
    """A workloads file: a JSON list of objects, or one ``key=value,...`` workload per line."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as err:
            raise InvalidConfigError(f"workloads file is not valid JSON: {err}") from None
        return [parse_workload(",".join(f"{k}={v}" for k, v in item.items())) for item in items]
    lines = [ln.split("#", 1)[0].strip() for ln in text.splitlines()]
    return [parse_workload(ln) for ln in lines if ln]


@dataclass
class _Node:
    id: int
    cpus: list[int]
    free_mem: int
    next_cpu: int = 0


@dataclass(frozen=True)
class PlannedVm:
    """One proposed VM."""

    name: str
    workload: str
    vcpus: int
    memory_kib: int
    sockets: int
    cores: int
    nodes: tuple[int, ...]
    cpuset: str
    provisioning: str
    cache: str
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    """The planner's answer."""

    host: HostShape
    vms: tuple[PlannedVm, ...]
    workloads: tuple[Workload, ...]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "host": {
                "sockets": self.host.sockets,
                "cores_per_socket": self.host.cores_per_socket,
                "threads_per_core": self.host.threads_per_core,
                "cpus": self.host.cpus,
                "memory_kib": self.host.memory_kib,
                "nodes": [asdict(n) for n in self.host.nodes],
            },
            "vms": [asdict(v) for v in self.vms],
            "workloads": [
                {
                    "name": w.name,
                    "count": w.count,
                    "disk_profile": w.disk.name,
                    "disk": asdict(w.disk),
                    "disk_size": w.disk_size,
                }
                for w in self.workloads
            ],
            "notes": list(self.notes),
        }


def _shape(vcpus: int, spans: int) -> tuple[int, int]:
    """Guest sockets x cores: one socket per host node spanned, when it divides evenly."""
    if spans > 1 and vcpus % spans == 0:
        return spans, vcpus // spans
    return 1, vcpus


def _take(node: _Node, vcpus: int, mem: int) -> list[int]:
    cpus = [node.cpus[(node.next_cpu + i) % len(node.cpus)] for i in range(vcpus)]
    node.next_cpu += vcpus
    node.free_mem -= mem
    return sorted(cpus)


def _place(
    host: HostShape, nodes: list[_Node], w: Workload, name: str, vcpus: int, mem: int
) -> PlannedVm:
    """Put one VM on the node with most free memory that fits it, else across nodes."""
    notes = []
    fits = [n for n in nodes if n.free_mem >= mem and n.next_cpu + vcpus <= len(n.cpus)]
    if fits:
        chosen = [max(fits, key=lambda n: (n.free_mem, -n.next_cpu))]
        cpus = _take(chosen[0], vcpus, mem)
    else:
        need = max(
            math.ceil(mem / max(1, host.node_memory_kib)),
            math.ceil(vcpus / max(1, host.node_cpus)),
        )
        chosen = sorted(nodes, key=lambda n: -n.free_mem)[: max(1, min(need, len(nodes)))]
        chosen.sort(key=lambda n: n.id)
        share = math.ceil(vcpus / len(chosen))
        cpus = [c for n in chosen for c in _take(n, share, mem // len(chosen))][:vcpus]
        where = ", ".join(str(n.id) for n in chosen)
        if len(chosen) > 1:
            notes.append(
                f"larger than one node: spans nodes {where}; give it one guest NUMA cell per "
                "node (vNUMA) or make it smaller"
            )
        else:
            notes.append(f"node {where} is already full: this VM overcommits it")
    if vcpus not in {s * c for s, c in GOOD_SHAPES}:
        notes.append(f"{vcpus} vCPUs is not a recommended shape (1, 2, 4, 8 or 16 vCPUs)")
    sockets, cores = _shape(vcpus, len(chosen))
    return PlannedVm(
        name=name,
        workload=w.name,
        vcpus=vcpus,
        memory_kib=mem,
        sockets=sockets,
        cores=cores,
        nodes=tuple(n.id for n in chosen),
        cpuset=format_cpuset(cpus),
        provisioning=w.disk.provisioning,
        cache=w.disk.cache,
        notes=tuple(notes),
    )


def _unit(nodes: list[_Node], count: int) -> tuple[int, int, int]:
    """Fixed-size unit for ``count`` VMs spread evenly over the room left on ``nodes``.

    :returns: vCPUs (a recommended per-socket count), memory (whole GiB), VMs per node
    """
    slots = {n.id: 0 for n in nodes}
    for _ in range(count):  # each VM goes where its share of the room stays largest
        best = max(
            nodes,
            key=lambda n: (
                n.free_mem // (slots[n.id] + 1),
                (len(n.cpus) - n.next_cpu) // (slots[n.id] + 1),
                -n.id,
            ),
        )
        slots[best.id] += 1
    used = [n for n in nodes if slots[n.id]]
    free_cpus = min((len(n.cpus) - n.next_cpu) // slots[n.id] for n in used)
    free_mem = min(n.free_mem // slots[n.id] for n in used)
    vcpus = max([c for s, c in GOOD_SHAPES if s == 1 and c <= free_cpus] or [1])
    return vcpus, max(_GIB, free_mem // _GIB * _GIB), max(slots.values())


def make_plan(host: HostShape, workloads: list[Workload], *, reserve_kib: int = 0) -> Plan:
    """Size and place every VM of ``workloads`` on ``host``.

    VMs with explicit vCPUs and memory are placed first (largest memory first); the others
    share the room left as equal, NUMA-aligned units.

    :param reserve_kib: memory kept for the host on each node (default none, as in the seed)
    :raises InvalidConfigError: no workloads
    """
    if not workloads:
        raise InvalidConfigError(
            "no workloads to plan", hint="add --workload name=mail,count=4,disk=mail"
        )
    nodes = [_Node(n.id, list(n.cpus), n.memory_kib - reserve_kib) for n in host.nodes]
    notes: list[str] = []
    order: list[str] = []
    explicit: list[tuple[Workload, str]] = []
    implicit: list[tuple[Workload, str]] = []
    for w in workloads:
        for i in range(w.count):
            name = w.name if w.count == 1 else f"{w.name}{i + 1}"
            order.append(name)
            sized = w.vcpus is not None and w.memory_kib is not None
            (explicit if sized else implicit).append((w, name))
    placed: dict[str, PlannedVm] = {}
    for w, name in sorted(explicit, key=lambda t: -(t[0].memory_kib or 0)):
        placed[name] = _place(host, nodes, w, name, w.vcpus or 1, w.memory_kib or _GIB)
    if implicit:
        unit_cpus, unit_mem, per_node = _unit(nodes, len(implicit))
        notes.append(
            f"fixed-size NUMA units: {per_node} VM(s) per node in the room left -> "
            f"{unit_cpus} vCPUs, {unit_mem // _GIB} GiB each (seed, 案例分析: size VMs as "
            "fixed units along the NUMA layout)"
        )
        for w, name in implicit:
            placed[name] = _place(
                host, nodes, w, name, w.vcpus or unit_cpus, w.memory_kib or unit_mem
            )
    total = sum(v.vcpus for v in placed.values())
    if total > host.cpus:
        notes.append(f"vCPUs overcommitted: {total} vCPUs on {host.cpus} host CPUs")
    short = [str(n.id) for n in nodes if n.free_mem < 0]
    if short:
        notes.append(
            f"memory overcommitted on node(s) {', '.join(short)}: use fewer or smaller VMs"
        )
    if not reserve_kib:
        notes.append("no memory kept for the host itself; consider --reserve 2G (per node)")
    return Plan(host, tuple(placed[n] for n in order), tuple(workloads), tuple(notes))
