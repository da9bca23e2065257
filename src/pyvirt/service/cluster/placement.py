"""Where a cluster domain should run: the up host with room for it, least loaded.

A host fits when it is ``up``, not in maintenance (``cluster evacuate``), and its free memory
(MemAvailable, published with its lease) minus :data:`RESERVE_KIB` holds the domain's memory.
Among those that fit, the score prefers the host left with the largest share of its memory
free, minus its load per CPU (a busy host loses even with free memory). A host named in
``avoid`` (anti-affinity, or the host being evacuated) is skipped; ``prefer`` wins when it
fits. Extra per-host *checks* (the rules of :mod:`.rules`: networks and pools, NUMA fit,
affinity groups) refuse a host with a reason; *preferences* (soft affinity groups) lower a
fitting host's score, with the reason shown. :func:`place` is pure: it reads the host list
it is given; :func:`place_domain` reads what a cluster domain's placement needs from etcd and
calls it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidStateError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.membership import HostStatus, list_hosts

if TYPE_CHECKING:
    from pyvirt.drivers.etcd import Etcd
    from pyvirt.service.cluster.domains import ClusterDomain
    from pyvirt.service.cluster.rules import GroupRules

#: a per-host rule: why the host cannot take the domain ('' when it can)
Check = Callable[[HostStatus], str]
#: a per-host preference: the score the host loses and why ((0.0, '') when none)
Preference = Callable[[HostStatus], tuple[float, str]]

# lazy: the domain model (lxml) and the rules load only when a cluster domain is placed

#: KiB a host keeps free for itself beyond what its guests take
RESERVE_KIB = 256 * 1024


@dataclass(frozen=True)
class Candidate:
    """A host considered for a domain: whether it fits, its score, and why (when not, or
    which soft rule it breaks)."""

    host: str
    fits: bool
    score: float
    why: str


@dataclass(frozen=True)
class Placement:
    """The chosen host and every host considered."""

    host: str
    candidates: tuple[Candidate, ...]


def _consider(
    h: HostStatus,
    need_kib: int,
    avoid: set[str],
    checks: Sequence[Check] = (),
    preferences: Sequence[Preference] = (),
) -> Candidate:
    if h.name in avoid:
        return Candidate(h.name, False, 0.0, "avoided")
    if h.maintenance:
        return Candidate(h.name, False, 0.0, "maintenance")
    if h.state != "up" or h.liveness is None:
        return Candidate(h.name, False, 0.0, "down")
    for check in checks:
        why = check(h)
        if why:
            return Candidate(h.name, False, 0.0, why)
    free_after = h.liveness.free_kib - RESERVE_KIB - need_kib
    if free_after < 0:
        return Candidate(h.name, False, 0.0, f"{h.liveness.free_kib // 1024} MiB free")
    share = free_after / max(1, h.record.memory_kib)
    busy = h.liveness.load / max(1, h.record.cpus)
    score, whys = share - busy, []
    for prefer in preferences:
        lost, why = prefer(h)
        score -= lost
        if why:
            whys.append(why)
    return Candidate(h.name, True, score, "; ".join(whys))


def place(
    hosts: Sequence[HostStatus],
    need_kib: int,
    *,
    avoid: Iterable[str] = (),
    prefer: str | None = None,
    checks: Sequence[Check] = (),
    preferences: Sequence[Preference] = (),
) -> Placement:
    """The best host for a domain of *need_kib*.

    :param checks: more rules; a host any of them refuses does not fit (its reason shown)
    :param preferences: soft rules; what a host breaks lowers its score
    :raises InvalidStateError: no host fits (each host's reason is named)
    """
    avoided = set(avoid)
    candidates = tuple(_consider(h, need_kib, avoided, checks, preferences) for h in hosts)
    fitting = [c for c in candidates if c.fits]
    if not fitting:
        reasons = ", ".join(f"{c.host}: {c.why}" for c in candidates) or "no hosts"
        raise InvalidStateError(
            f"no cluster host can take {need_kib // 1024} MiB ({reasons})",
            hint="free memory on a host, bring a host up, or lower the domain's memory",
        )
    chosen = next((c for c in fitting if c.host == prefer), None)
    if chosen is None:
        chosen = max(fitting, key=lambda c: (c.score, c.host))
    return Placement(chosen.host, candidates)


def domain_checks(etcd: Etcd, record: ClusterDomain) -> list[Check]:
    """The rules of :mod:`.rules` for cluster domain *record*, with what they need read from
    etcd (inventories only for a domain needing networks, pools or NUMA; its groups' members
    and the owners only for a domain in an affinity group)."""
    checks: list[Check] = []
    if (record.affinity or record.anti_affinity) and not record.soft:
        rule = _group_rules(etcd, record)
        checks.append(lambda h: rule.why_not(h.name))
    return checks + resource_checks(etcd, record)


def resource_checks(etcd: Etcd, record: ClusterDomain) -> list[Check]:
    """The rules of :mod:`.rules` for cluster domain *record* other than its affinity
    groups: the networks and pools it needs, NUMA fit (inventories read from etcd only when
    it needs one of them)."""
    from pyvirt.model.domain import Domain  # lazy: lxml and the model
    from pyvirt.service.cluster import rules  # lazy

    checks: list[Check] = []
    dom = Domain.from_xml(record.xml)
    needs = rules.needs_of(dom)
    if needs:
        inventories = {
            e.key[len(keys.INVENTORY) :]: rules.Inventory.from_json(json.loads(e.value))
            for e in etcd.get_prefix(keys.INVENTORY)
        }
        checks.append(lambda h: rules.resources_missing(needs, inventories.get(h.name)))
        if needs.numa:
            fits: dict[object, str] = {}  # a cluster's hosts come in a few shapes

            def numa(h: HostStatus) -> str:
                inv = inventories.get(h.name)
                if inv is None or inv.shape is None:
                    return "no NUMA topology published"
                if inv.shape not in fits:
                    fits[inv.shape] = rules.numa_fit(dom, inv.shape)
                return fits[inv.shape]

            checks.append(numa)
    return checks


def group_members(etcd: Etcd, records: Iterable[ClusterDomain]) -> dict[str, tuple[str, str]]:
    """The members of *records*' affinity groups: domain -> its ``(affinity,
    anti_affinity)`` groups among those (read from etcd)."""
    groups: dict[str, tuple[str, str]] = {}
    wanted = {("affinity", r.affinity) for r in records if r.affinity}
    wanted |= {("anti-affinity", r.anti_affinity) for r in records if r.anti_affinity}
    for kind, group in sorted(wanted):
        prefix = keys.group(kind, group)
        for e in etcd.get_prefix(prefix):
            member = e.key[len(prefix) :]
            aff, anti = groups.get(member, ("", ""))
            groups[member] = (group, anti) if kind == "affinity" else (aff, group)
    return groups


def owners_of(etcd: Etcd) -> dict[str, str]:
    """Every owned cluster domain's owner (read from etcd)."""
    return {
        e.key[len(keys.OWNERS) :]: str(json.loads(e.value)["host"])
        for e in etcd.get_prefix(keys.OWNERS)
    }


def _group_rules(etcd: Etcd, record: ClusterDomain) -> GroupRules:
    """*record*'s affinity groups, with their members' owners read from etcd."""
    from pyvirt.service.cluster import rules  # lazy

    return rules.group_rules(record.name, record.affinity, record.anti_affinity,
                             group_members(etcd, [record]), owners_of(etcd),
                             soft=record.soft)  # fmt: skip


def group_rule_for(rule: GroupRules) -> tuple[list[Check], list[Preference]]:
    """*rule* as placement's checks (hard rules) or preferences (``--soft``)."""
    if rule.soft:

        def prefer(h: HostStatus) -> tuple[float, str]:
            lost = rule.penalty(h.name)
            return (lost, f"soft {rule.broken(h.name)}") if lost else (0.0, "")

        return [], [prefer]
    return [lambda h: rule.why_not(h.name)], []


def domain_preferences(etcd: Etcd, record: ClusterDomain) -> list[Preference]:
    """The soft rules of cluster domain *record* (its groups when defined ``--soft``)."""
    if not (record.soft and (record.affinity or record.anti_affinity)):
        return []
    return group_rule_for(_group_rules(etcd, record))[1]


def place_domain(
    etcd: Etcd, record: ClusterDomain, *, avoid: Iterable[str] = (), prefer: str | None = None
) -> Placement:
    """The best host for cluster domain *record*: memory and load, its networks and pools,
    NUMA fit and its affinity groups.

    :raises InvalidStateError: no host fits (each host's reason is named)
    """
    checks = domain_checks(etcd, record)
    return place(list_hosts(etcd), record.memory_kib, avoid=avoid, prefer=prefer, checks=checks,
                 preferences=domain_preferences(etcd, record))  # fmt: skip
