"""NUMA placement advisor: the seed's sizing rules applied to one domain on one host.

Rules (from the seed's CPU-virtualization/NUMA chapter and its case analysis):

``vcpus-max``
    more than 64 vCPUs is refused unless forced (``define --force``); more than 32 is warned
    (``vcpus-many``): split the workload over several domains.
``vcpu-overcommit``
    more vCPUs than the host has logical CPUs (alone, or together with running domains).
``memory-node``
    memory larger than one host NUMA node: part of it is remote, unless the guest has NUMA
    cells that each fit a host node (vNUMA), which the advice suggests.
``vcpus-span``
    more vCPUs than one host node (socket) has CPUs: the guest spans sockets.
``cpuset-span``, ``cpuset-missing``
    a ``<vcpu cpuset>`` that spans host nodes, or names CPUs the host lacks.
``shape``
    an explicit ``<topology>`` that is not a recommended socket x core shape: 1x1, 1x2, 1x4,
    1x8, 2x1, 2x2, 2x4, 2x8 are fine; 2x3, 2x5, 2x7 split a guest socket's cores unevenly
    across host sockets and are warned with a stronger message; other shapes get the nearest
    recommended ones. Domains without ``<topology>`` (QEMU's default N sockets x 1 core) are
    judged by their vCPU count only.

A note on the seed's "8 GB NUMA node per core": Linux (and the seed's own next paragraph,
"NUMA is per socket, not per core") makes one node per socket, so on the seed's host a node is
8 cores and 64 GiB; that is what pyvirt reads from sysfs and checks against.

:func:`advise` is pure (a :class:`~pyvirt.model.domain.Domain` and a :class:`HostShape` in,
advice out); :func:`read_host` builds the shape from sysfs under a root path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pyvirt.errors import InvalidConfigError
from pyvirt.model.cpuset import format_cpuset, parse_cpuset
from pyvirt.service.hooks import HookResult, register_hook

if TYPE_CHECKING:
    import logging

    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the NUMA advisor hook
# runs at every start; host CPU and NUMA probes load only when a domain has vCPUs to place.


def _log() -> logging.Logger:
    """This module's logger; ``logging`` loads only when something is logged (~3 ms of
    ``define``, which imports this module)."""
    import logging  # local import: see the docstring

    return logging.getLogger(__name__)


WARN_VCPUS = 32
MAX_VCPUS = 64
GOOD_SHAPES = ((1, 1), (1, 2), (1, 4), (1, 8), (2, 1), (2, 2), (2, 4), (2, 8))
BAD_SHAPES = ((2, 3), (2, 5), (2, 7))
_GIB = 1024 * 1024


@dataclass(frozen=True)
class HostNode:
    """One host NUMA node: its CPUs and memory."""

    id: int
    cpus: tuple[int, ...]
    memory_kib: int


@dataclass(frozen=True)
class HostShape:
    """What the advisor and the planner need to know about a host."""

    sockets: int
    cores_per_socket: int
    threads_per_core: int
    nodes: tuple[HostNode, ...]

    @property
    def cpus(self) -> int:
        """Logical CPUs."""
        return sum(len(n.cpus) for n in self.nodes) or (
            self.sockets * self.cores_per_socket * self.threads_per_core
        )

    @property
    def memory_kib(self) -> int:
        """Total memory of all nodes."""
        return sum(n.memory_kib for n in self.nodes)

    @property
    def node_memory_kib(self) -> int:
        """Memory of the largest node."""
        return max((n.memory_kib for n in self.nodes), default=0)

    @property
    def node_cpus(self) -> int:
        """Logical CPUs of the largest node."""
        return max((len(n.cpus) for n in self.nodes), default=0)

    def node_of(self, cpu: int) -> int | None:
        """The node holding ``cpu``."""
        return next((n.id for n in self.nodes if cpu in n.cpus), None)

    @classmethod
    def uniform(
        cls, sockets: int, cores: int, memory_kib: int, *, threads: int = 1, nodes: int = 0
    ) -> HostShape:
        """A host with ``nodes`` equal nodes (default: one per socket), CPUs numbered in order."""
        nodes = nodes or sockets
        per_node = sockets * cores * threads // nodes
        return cls(
            sockets,
            cores,
            threads,
            tuple(
                HostNode(i, tuple(range(i * per_node, (i + 1) * per_node)), memory_kib // nodes)
                for i in range(nodes)
            ),
        )


#: seconds :func:`host_shape` reuses what it read (the shape changes only with CPU or memory
#: hot-plug; a start and a migration's prepare read it on the way to QEMU, ~1.5 ms each)
SHAPE_TTL = 5.0
_shapes: dict[Path, tuple[float, HostShape]] = {}


def host_shape(root: Path = Path("/")) -> HostShape:
    """:func:`read_host`, reused for :data:`SHAPE_TTL` seconds."""
    import time  # lazy

    now = time.monotonic()
    hit = _shapes.get(root)
    if hit is not None and now - hit[0] < SHAPE_TTL:
        return hit[1]
    shape = read_host(root)
    _shapes[root] = (now, shape)
    return shape


def read_host(root: Path = Path("/")) -> HostShape:
    """The shape of the host whose ``/proc`` and ``/sys`` are under ``root``."""
    from pyvirt.host.cpu import read_host_cpu  # lazy
    from pyvirt.host.numa import read_cells  # lazy

    cpu = read_host_cpu(root)
    cells = read_cells(root)
    topo = cpu.topology
    return HostShape(
        sockets=topo.sockets,
        cores_per_socket=topo.cores * topo.dies,
        threads_per_core=topo.threads,
        nodes=tuple(HostNode(c.id, c.cpu_ids, c.memory_kib) for c in cells),
    )


@dataclass(frozen=True)
class Advice:
    """One finding: what is wrong and what to do instead."""

    level: Literal["warning", "error"]
    code: str
    message: str
    hint: str

    def __str__(self) -> str:
        return f"{self.message}; instead, {self.hint}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _gib(kib: int) -> str:
    value = kib / _GIB
    return f"{value:.0f} GiB" if value >= 10 or value == int(value) else f"{value:.1f} GiB"


def _nearest_shapes(total: int, sockets: int) -> str:
    """The recommended shapes just below and above ``total`` vCPUs, keeping ``sockets``."""
    good = sorted({s * c for s, c in GOOD_SHAPES})
    lower = max((g for g in good if g <= total), default=good[0])
    higher = min((g for g in good if g >= total), default=good[-1])
    picks = []
    for target in dict.fromkeys((lower, higher)):
        fits = [sc for sc in GOOD_SHAPES if sc[0] * sc[1] == target]
        s, c = min(fits, key=lambda sc: abs(sc[0] - sockets))
        picks.append(f"{s}x{c} ({target} vCPUs)")
    return " or ".join(picks)


def _vcpu_rules(name: str, vcpus: int, host: HostShape, running: int) -> list[Advice]:
    out = []
    if vcpus > MAX_VCPUS:
        out.append(
            Advice(
                "error",
                "vcpus-max",
                f"domain '{name}' has {vcpus} vCPUs, more than the limit of {MAX_VCPUS}",
                f"give it at most {WARN_VCPUS} vCPUs and split the workload over several "
                "domains (or pass --force to define it anyway)",
            )
        )
    elif vcpus > WARN_VCPUS:
        out.append(
            Advice(
                "warning",
                "vcpus-many",
                f"domain '{name}' has {vcpus} vCPUs, more than the recommended {WARN_VCPUS}",
                f"use at most {WARN_VCPUS} vCPUs per domain and split the workload",
            )
        )
    if vcpus > host.cpus:
        out.append(
            Advice(
                "warning",
                "vcpu-overcommit",
                f"domain '{name}' has {vcpus} vCPUs but the host has only {host.cpus} CPUs",
                f"give it at most {host.cpus} vCPUs; vCPUs beyond the host's CPUs only add "
                "scheduling overhead",
            )
        )
    elif running and vcpus + running > host.cpus:
        out.append(
            Advice(
                "warning",
                "vcpu-overcommit",
                f"domain '{name}' ({vcpus} vCPUs) and the running domains ({running} vCPUs) "
                f"need {vcpus + running} vCPUs but the host has {host.cpus} CPUs",
                "stop another domain or give this one fewer vCPUs; avoid overcommitting CPUs",
            )
        )
    if len(host.nodes) > 1 and host.node_cpus < vcpus <= host.cpus:
        out.append(
            Advice(
                "warning",
                "vcpus-span",
                f"domain '{name}' has {vcpus} vCPUs but one host NUMA node (socket) has "
                f"{host.node_cpus} CPUs, so its vCPUs span sockets",
                f"give it at most {host.node_cpus} vCPUs, or a topology of "
                f"{len(host.nodes)} sockets with one guest NUMA cell per socket",
            )
        )
    return out


def _memory_rules(dom: Domain, host: HostShape) -> list[Advice]:
    mem = dom.memory_kib
    name = dom.name
    if mem > host.memory_kib:
        return [
            Advice(
                "warning",
                "memory-overcommit",
                f"domain '{name}' has {_gib(mem)} of memory but the host has "
                f"{_gib(host.memory_kib)}",
                f"give it at most {_gib(host.node_memory_kib)} (one NUMA node)",
            )
        ]
    if len(host.nodes) < 2 or mem <= host.node_memory_kib:
        return []
    cells = dom.cpu.numa_cells if dom.cpu is not None else []
    if cells and all((c.memory_kib or 0) <= host.node_memory_kib for c in cells):
        return []  # vNUMA: the guest knows which memory is local
    return [
        Advice(
            "warning",
            "memory-node",
            f"domain '{name}' has {_gib(mem)} of memory, more than one host NUMA node "
            f"({_gib(host.node_memory_kib)}); part of it will be remote",
            f"give it at most {_gib(host.node_memory_kib)}, or define guest NUMA cells "
            "(<cpu><numa><cell>) of at most one host node each so the guest places memory",
        )
    ]


def _shape_rules(dom: Domain) -> list[Advice]:
    topo = dom.cpu.topology if dom.cpu is not None else None
    if topo is None:
        return []
    shape = (topo.sockets, topo.cores)
    text = f"{topo.sockets}x{topo.cores}"
    if shape in GOOD_SHAPES:
        return []
    total = topo.sockets * topo.cores
    if shape in BAD_SHAPES:
        return [
            Advice(
                "warning",
                "shape",
                f"domain '{dom.name}' uses {text} (sockets x cores): an odd core count per "
                "socket splits guest sockets across host sockets and causes remote memory access",
                f"use {_nearest_shapes(total, topo.sockets)}",
            )
        ]
    return [
        Advice(
            "warning",
            "shape",
            f"domain '{dom.name}' uses {text} (sockets x cores), not one of the recommended "
            "shapes 1x1, 1x2, 1x4, 1x8, 2x1, 2x2, 2x4, 2x8",
            f"use {_nearest_shapes(total, topo.sockets)}",
        )
    ]


def _cpuset_rules(dom: Domain, host: HostShape) -> list[Advice]:
    spec = dom.vcpu.cpuset
    if not spec:
        return []
    try:
        cpus = parse_cpuset(spec)
    except InvalidConfigError:
        return []
    known = {c for n in host.nodes for c in n.cpus}
    missing = sorted(cpus - known)
    if missing and known:
        return [
            Advice(
                "warning",
                "cpuset-missing",
                f"domain '{dom.name}' is pinned to CPUs {','.join(map(str, missing))} which "
                "this host does not have",
                f"pin it to CPUs of one node, e.g. {format_cpuset(host.nodes[0].cpus)}",
            )
        ]
    nodes = sorted({n for c in cpus if (n := host.node_of(c)) is not None})
    if len(nodes) > 1:
        best = next(n.cpus for n in host.nodes if n.id == nodes[0])
        return [
            Advice(
                "warning",
                "cpuset-span",
                f"domain '{dom.name}' cpuset {spec} spans host NUMA nodes "
                f"{', '.join(map(str, nodes))}",
                f"pin it to the CPUs of one node (e.g. {format_cpuset(best)}) with memory bound "
                "there too (numatune)",
            )
        ]
    return []


def advise(dom: Domain, host: HostShape | None = None, *, running_vcpus: int = 0) -> list[Advice]:
    """Every finding for ``dom`` on ``host`` (the real host when ``None``).

    :param running_vcpus: vCPUs of the other running domains (overcommit check)
    """
    host = host or read_host()
    vcpus = dom.vcpu.count
    return [
        *_vcpu_rules(dom.name, vcpus, host, running_vcpus),
        *_memory_rules(dom, host),
        *_shape_rules(dom),
        *_cpuset_rules(dom, host),
    ]


def check_define(dom: Domain, host: HostShape | None = None, *, force: bool = False) -> list[str]:
    """Advice for ``define``: warnings as text; refusals raise unless ``force``.

    :raises InvalidConfigError: an ``error`` finding and no ``force``
    """
    found = advise(dom, host)
    errors = [a for a in found if a.level == "error"]
    if errors and not force:
        raise InvalidConfigError(errors[0].message, hint=errors[0].hint)
    return [str(a) for a in found]


def running_vcpus(mgr: DomainManager, *, exclude: str = "") -> int:
    """vCPUs of the running domains other than ``exclude`` (from their QEMU ``-smp``)."""
    total = 0
    for name in mgr.running_names():
        if name == exclude:
            continue
        rec = mgr.live_record(name, cleanup=False)
        if rec is None:
            continue
        argv = list(rec.argv)
        for i, arg in enumerate(argv[:-1]):
            if arg == "-smp":
                head = argv[i + 1].split(",")[0]
                total += int(head) if head.isdigit() else 0
    return total


def advise_domain(
    mgr: DomainManager, ident: str, host: HostShape | None = None
) -> tuple[str, list[Advice]]:
    """Advice for a defined or running domain (``numa-advise``): its name and the findings."""
    name = mgr.resolve(ident)
    dom = mgr.definition(name)
    return name, advise(dom, host, running_vcpus=running_vcpus(mgr, exclude=name))


class AdvisorHook:
    """Lifecycle hook: the advice at start.

    ``compile`` (only when a start plan is built) runs the rules; findings that depend on the
    definition alone are kept in the plan and ``before_launch`` logs them on every start (no
    rules run then, so a cached start stays fast); the overcommit finding that depends on the
    domains running now is logged by ``compile`` only. A transient domain (``create``) with
    more than 64 vCPUs is refused; a defined one passed ``define`` (with ``--force``) and is
    only warned about.
    """

    name = "numa-advisor"

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None:
        """Run the rules; refuse a transient domain above the vCPU limit."""
        try:
            host = host_shape()
        except OSError as err:  # pragma: no cover - sysfs unreadable
            _log().warning("warning: NUMA advice skipped: %s", err)
            return None
        running = running_vcpus(mgr, exclude=dom.name)
        found = advise(dom, host, running_vcpus=running)
        errors = [a for a in found if a.level == "error"]
        if errors and not mgr.store.exists(dom.name):
            raise InvalidConfigError(
                errors[0].message,
                hint="define the domain with 'define --force' and start it, or " + errors[0].hint,
            )
        static = advise(dom, host)
        for advice in found:
            if advice not in static:  # depends on what runs now: said once, not cached
                _log().warning("warning: %s", advice)
        if not static:
            return None
        return HookResult(data={"warnings": [str(a) for a in static]})

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Log the definition's findings (every start, from the plan)."""
        for text in data.get("warnings", []):
            _log().warning("warning: %s", text)

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do (warnings are logged at compile)."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Nothing to undo."""


register_hook(AdvisorHook())
