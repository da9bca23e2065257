"""Placement rules beyond memory and load (pure): what a domain needs from a host and whether
a host has it.

- **Networks and pools**: a domain with an ``<interface type='network'>`` needs that network
  on the host (active, or marked autostart: pyvirt starts it on first use); a disk of
  ``type='volume'`` needs its pool active there. Hosts publish what they have in their
  inventory (``/pyvirt/inventory/HOST``).
- **NUMA fit**: a domain with guest NUMA cells, a ``<vcpu cpuset>``, ``<vcpupin>`` or a
  ``<numatune>`` nodeset goes only where the host's NUMA nodes can hold it: pinned CPUs and
  nodes exist there, and the cells fit the nodes' memory (first fit, largest cell first). The
  advisor's own refusals (:func:`pyvirt.service.tuning.advisor.advise`) are reused.
- **Affinity groups**: domains defined with the same ``--anti-affinity GROUP`` never share a
  host; domains with the same ``--affinity GROUP`` all go to the host where one of them
  already is (is owned). Both are hard rules; refusals name the group and the domain. A domain
  defined with ``--soft`` takes its groups as preferences: no host is refused for them, but
  each one broken costs the host :data:`SOFT_PENALTY` of placement score (more than any
  difference of free memory and load), so a host keeping them wins whenever one fits.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError
from pyvirt.model.cpuset import format_cpuset, parse_cpuset
from pyvirt.service.tuning.advisor import HostNode, HostShape, advise

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain


@functools.lru_cache(maxsize=256)
def _cpus(spec: str) -> tuple[int, ...]:
    """The CPUs of a cpuset string, sorted (cached: a cluster's hosts repeat a few)."""
    return tuple(sorted(parse_cpuset(spec))) if spec else ()


@dataclass(frozen=True)
class Inventory:
    """What a host can offer a domain now (``/pyvirt/inventory/HOST``).

    :ivar networks: networks a domain can use there (active or autostart)
    :ivar pools: active storage pools
    :ivar shape: its sockets, cores and NUMA nodes (``None``: not published)
    :ivar used: for each cluster network/pool (``network:NAME``, ``pool:NAME``), the running
        domains there that use it
    """

    networks: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    shape: HostShape | None = None
    used: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the value stored in etcd)."""
        out: dict[str, Any] = {
            "networks": list(self.networks),
            "pools": list(self.pools),
            "used": {k: list(v) for k, v in sorted(self.used.items())},
        }
        if self.shape is not None:
            s = self.shape
            out["shape"] = {
                "sockets": s.sockets,
                "cores": s.cores_per_socket,
                "threads": s.threads_per_core,
                "nodes": [
                    {"id": n.id, "cpus": format_cpuset(n.cpus), "memory_kib": n.memory_kib}
                    for n in s.nodes
                ],
            }
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inventory:
        """The inventory *data* (:meth:`to_json`'s output) describes."""
        shape = None
        raw = data.get("shape")
        if isinstance(raw, dict):
            nodes = tuple(
                HostNode(int(n["id"]), _cpus(str(n.get("cpus") or "")), int(n.get("memory_kib", 0)))
                for n in raw.get("nodes") or []
            )
            shape = HostShape(
                int(raw.get("sockets", 1)),
                int(raw.get("cores", 1)),
                int(raw.get("threads", 1)),
                nodes,
            )
        return cls(
            networks=tuple(data.get("networks") or ()),
            pools=tuple(data.get("pools") or ()),
            shape=shape,
            used={str(k): tuple(v) for k, v in (data.get("used") or {}).items()},
        )


@dataclass(frozen=True)
class Needs:
    """What a domain needs from its host beyond memory.

    :ivar networks: networks its interfaces use
    :ivar pools: pools its volume disks use
    :ivar numa: whether it has guest NUMA cells or pinning (then :func:`numa_fit` applies)
    """

    networks: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    numa: bool = False

    def __bool__(self) -> bool:
        return bool(self.networks or self.pools or self.numa)


def _pins(dom: Domain) -> set[int]:
    cpus: set[int] = set()
    tune = dom.cputune
    for pin in tune.vcpupins if tune is not None else []:
        if pin.cpuset:
            try:
                cpus |= parse_cpuset(pin.cpuset)
            except InvalidConfigError:
                continue
    return cpus


def _nodesets(dom: Domain) -> set[int]:
    tune = dom.numatune
    if tune is None:
        return set()
    nodes: set[int] = set()
    for spec in [tune.nodeset, *(m.nodeset for m in tune.memnodes)]:
        if spec:
            try:
                nodes |= parse_cpuset(spec)
            except InvalidConfigError:
                continue
    return nodes


def needs_of(dom: Domain) -> Needs:
    """What *dom* needs from a host (networks, pools, NUMA)."""
    networks = sorted(
        {
            i.source_network
            for i in dom.devices.interfaces
            if i.type == "network" and i.source_network
        }
    )
    pools = sorted(
        {d.source_pool for d in dom.devices.disks if d.type == "volume" and d.source_pool}
    )
    cells = dom.cpu.numa_cells if dom.cpu is not None else []
    numa = bool(cells or dom.vcpu.cpuset or _pins(dom) or _nodesets(dom))
    return Needs(tuple(networks), tuple(pools), numa)


def _mib(kib: int) -> str:
    return f"{kib // 1024} MiB"


def numa_fit(dom: Domain, shape: HostShape) -> str:
    """Why *dom*'s NUMA cells or pinning do not fit *shape* ('' when they do)."""
    findings = {a.code: a for a in advise(dom, shape)}
    missing = findings.get("cpuset-missing")
    if missing is not None:
        return missing.message.split(" is ", 1)[-1]  # "pinned to CPUs 9 which this host ..."
    known = {c for n in shape.nodes for c in n.cpus}
    pinned = sorted(_pins(dom) - known)
    if pinned and known:
        return f"vcpupin names CPUs {format_cpuset(pinned)} this host lacks"
    ids = {n.id for n in shape.nodes}
    nodes = sorted(_nodesets(dom) - ids)
    if nodes:
        return f"numatune names NUMA nodes {format_cpuset(nodes)} this host lacks"
    cells = dom.cpu.numa_cells if dom.cpu is not None else []
    if not cells:
        return ""
    room = sorted((n.memory_kib for n in shape.nodes), reverse=True)
    for size in sorted((c.memory_kib or 0 for c in cells), reverse=True):
        at = next((i for i, free in enumerate(room) if free >= size), None)
        if at is None:
            sizes = ", ".join(_mib(c.memory_kib or 0) for c in cells)
            nodes_text = ", ".join(_mib(n.memory_kib) for n in shape.nodes)
            return f"guest NUMA cells ({sizes}) do not fit its nodes ({nodes_text})"
        room[at] -= size
    return ""


def resources_missing(needs: Needs, inv: Inventory | None) -> str:
    """Why a host with inventory *inv* lacks a network or pool *needs* names ('' if not)."""
    if not needs.networks and not needs.pools:
        return ""
    if inv is None:
        return "no inventory published"
    nets = [n for n in needs.networks if n not in inv.networks]
    if nets:
        return f"lacks network '{nets[0]}'"
    pools = [p for p in needs.pools if p not in inv.pools]
    if pools:
        return f"lacks pool '{pools[0]}'"
    return ""


#: placement score a host loses for each soft rule it breaks: an anti-affinity group member
#: there, or its affinity group's members elsewhere (scores of memory and load are in -1..1)
SOFT_PENALTY = 2.0


@dataclass(frozen=True)
class GroupRules:
    """A domain's affinity groups and where the other members of each are.

    :ivar name: the domain placed
    :ivar affinity: its affinity group ('' for none)
    :ivar anti_affinity: its anti-affinity group ('' for none)
    :ivar affine: host -> the other members of its affinity group owned there
    :ivar anti: host -> the other members of its anti-affinity group owned there
    :ivar soft: the rules are preferences (:meth:`penalty`), never refusals
    """

    name: str
    affinity: str = ""
    anti_affinity: str = ""
    affine: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    anti: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    soft: bool = False

    def why_not(self, host: str) -> str:
        """Why *host* breaks a hard rule ('' when it does not, or the rules are soft)."""
        return "" if self.soft else self.broken(host)

    def penalty(self, host: str) -> float:
        """The score *host* loses for the soft rules it breaks (0 for hard rules: those
        refuse it instead): :data:`SOFT_PENALTY` per anti-affinity member there, and once
        when the affinity group's members are elsewhere."""
        if not self.soft:
            return 0.0
        count = len(self.anti.get(host, ())) if self.anti_affinity else 0
        if self.affinity and self.affine and host not in self.affine:
            count += 1
        return SOFT_PENALTY * count

    def broken(self, host: str) -> str:
        """The first rule *host* breaks, soft or hard ('' when none)."""
        if self.anti_affinity and host in self.anti:
            return f"anti-affinity group '{self.anti_affinity}': {', '.join(self.anti[host])} there"
        if self.affinity and self.affine and host not in self.affine:
            where = sorted(self.affine.items())[0]
            return f"affinity group '{self.affinity}': {where[1][0]} is on {where[0]}"
        return ""


def group_rules(
    name: str,
    affinity: str,
    anti_affinity: str,
    groups: Mapping[str, tuple[str, str]],
    owners: Mapping[str, str],
    *,
    soft: bool = False,
) -> GroupRules:
    """The rules for domain *name* given every cluster domain's ``(affinity,
    anti_affinity)`` groups and the owner of each owned domain (*soft*: as preferences)."""
    affine: dict[str, list[str]] = {}
    anti: dict[str, list[str]] = {}
    for other, host in sorted(owners.items()):
        if other == name or other not in groups:
            continue
        aff, anti_group = groups[other]
        if affinity and aff == affinity:
            affine.setdefault(host, []).append(other)
        if anti_affinity and anti_group == anti_affinity:
            anti.setdefault(host, []).append(other)
    return GroupRules(
        name,
        affinity,
        anti_affinity,
        {h: tuple(v) for h, v in affine.items()},
        {h: tuple(v) for h, v in anti.items()},
        soft,
    )
