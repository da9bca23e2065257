"""Maintenance mode (``cluster evacuate HOST`` / ``cluster restore HOST``): the etcd side.

A host in maintenance has a mark at ``/pyvirt/maintenance/NAME`` (not leased: it outlives
daemon restarts). Placement never chooses it (so HA recovery does not either) and a start of
a cluster domain there is refused (the ownership claim's transaction requires the mark to be
absent). Evacuation moves each domain the host owns to the host placement picks; the owner
key changes by a transaction that checks the old owner is still the source and the new one
is alive (its liveness key bound to the lease the owner key is bound to) and not in
maintenance — for a running domain, at the moment the source QEMU has paused with its whole
state sent and before the destination runs it (:mod:`pyvirt.api.cluster_evacuate`), so the
guest never runs on two hosts and its owner is always the host that may run it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from pyvirt.drivers.etcd import Compare, Etcd, Put, absent, unchanged
from pyvirt.errors import InvalidStateError, NotFoundError, PyvirtError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.domains import ClusterDomain, placed_value
from pyvirt.service.cluster.membership import HostStatus
from pyvirt.service.cluster.placement import Check, Preference, group_rule_for, place
from pyvirt.service.cluster.records import Liveness
from pyvirt.service.cluster.rules import group_rules


@dataclass(frozen=True)
class Evacuated:
    """What evacuation did with one domain.

    :ivar name: the domain
    :ivar action: ``moved`` (live-migrated), ``owner moved`` (shut off: only its ownership
        moved) or ``failed``
    :ivar target: the host it went to (or was meant to go to; '' when none fitted)
    :ivar error: why it failed ('' otherwise)
    """

    name: str
    action: str
    target: str = ""
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"name": self.name, "action": self.action, "target": self.target,
                "error": self.error}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Evacuated:
        """The result *data* (:meth:`to_json`'s output) describes."""
        return cls(str(data["name"]), str(data["action"]), str(data.get("target") or ""),
                   str(data.get("error") or ""))  # fmt: skip

    def describe(self) -> str:
        """One line for people: ``moved to hb``, ``owner moved to hb``, ``failed: why``."""
        if self.action == "failed":
            return f"failed: {self.error}"
        return f"{self.action} to {self.target}"


@dataclass(frozen=True)
class EvacuationReport:
    """The outcome of ``cluster evacuate HOST``: the host (now in maintenance) and each
    domain it owned."""

    host: str
    domains: tuple[Evacuated, ...]

    @property
    def failed(self) -> list[Evacuated]:
        """The domains that could not be moved (they stay where they were, owned there)."""
        return [d for d in self.domains if d.action == "failed"]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"host": self.host, "domains": [d.to_json() for d in self.domains]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EvacuationReport:
        """The report *data* (:meth:`to_json`'s output) describes."""
        return cls(str(data["host"]), tuple(Evacuated.from_json(d) for d in data["domains"]))


def require_host(hosts: Sequence[HostStatus], host: str) -> HostStatus:
    """*host*'s status among *hosts*.

    :raises NotFoundError: the cluster has no such host
    """
    for h in hosts:
        if h.name == host:
            return h
    raise NotFoundError(f"cluster has no host named {host!r}", hint="see 'pyvirt cluster list'")


def check_room(hosts: Sequence[HostStatus], host: str, owned: Sequence[str]) -> None:
    """Refuse an evacuation that has domains to move and no host to move them to (nothing
    is marked or moved then).

    :raises InvalidStateError: every other host is down or in maintenance
    """
    if not owned:
        return
    others = [h for h in hosts if h.name != host]
    if any(h.state == "up" and not h.maintenance for h in others):
        return
    why = ", ".join(f"{h.name}: {'maintenance' if h.maintenance else h.state}" for h in others)
    raise InvalidStateError(
        f"no other cluster host can take host {host!r}'s domains "
        f"({', '.join(sorted(owned))}): {why or 'it is the only host'}",
        hint="bring another host up (or 'pyvirt cluster restore' one), then evacuate again",
    )


def plan(
    hosts: Sequence[HostStatus],
    domains: Sequence[ClusterDomain],
    host: str,
    *,
    groups: Mapping[str, tuple[str, str]] | None = None,
    owners: Mapping[str, str] | None = None,
    checks: Mapping[str, Sequence[Check]] | None = None,
) -> list[tuple[ClusterDomain, str, str]]:
    """Where each of *host*'s *domains* goes: ``(domain, target, why)`` with *target* ''
    and *why* placement's refusal when no host fits. Largest domains are placed first, and
    each placement takes its memory off the chosen host's free memory for the next (the
    published figures are only refreshed every few seconds). Pure.

    The affinity groups are those of placement at start (:mod:`.rules`): hard ones refuse a
    host (a domain no host satisfies is planned as failed, the rule named), ``--soft`` ones
    lower its score. A domain being evacuated counts where the plan sends it, not on *host*
    (the members of an affinity group on *host* go together, where the first one goes).

    :param groups: the groups of the cluster's domains: domain -> ``(affinity,
        anti_affinity)`` (:func:`~pyvirt.service.cluster.placement.group_members`)
    :param owners: each owned cluster domain's owner
    :param checks: more rules per domain name (networks, pools, NUMA fit)
    """
    pool = list(hosts)
    moving = {d.name for d in domains}
    where = {n: h for n, h in (owners or {}).items() if n not in moving}
    out: list[tuple[ClusterDomain, str, str]] = []
    for dom in sorted(domains, key=lambda d: (-d.memory_kib, d.name)):
        more = list((checks or {}).get(dom.name, ()))
        prefs: list[Preference] = []
        if dom.affinity or dom.anti_affinity:
            rule = group_rules(dom.name, dom.affinity, dom.anti_affinity, groups or {}, where,
                               soft=dom.soft)  # fmt: skip
            hard, prefs = group_rule_for(rule)
            more += hard
        try:
            chosen = place(pool, dom.memory_kib, avoid=[host], checks=more,
                           preferences=prefs).host  # fmt: skip
        except PyvirtError as err:
            out.append((dom, "", err.message))
            continue
        out.append((dom, chosen, ""))
        where[dom.name] = chosen
        pool = [_minus(h, dom.memory_kib) if h.name == chosen else h for h in pool]
    return out


def _minus(h: HostStatus, kib: int) -> HostStatus:
    live = h.liveness
    if live is None:
        return h
    return replace(h, liveness=replace(live, free_kib=max(0, live.free_kib - kib)))


def owned_by(etcd: Etcd, host: str) -> list[ClusterDomain]:
    """The cluster domains *host* owns now, by name."""
    owners = {
        e.key[len(keys.OWNERS) :]: json.loads(e.value)["host"] for e in etcd.get_prefix(keys.OWNERS)
    }
    return [
        ClusterDomain.decode(e.value)
        for e in etcd.get_prefix(keys.DOMAINS)
        if owners.get(e.key[len(keys.DOMAINS) :]) == host
    ]


def mark(etcd: Etcd, host: str, by: str) -> bool:
    """Put *host* in maintenance; whether it was not already."""
    value = json.dumps({"since": time.time(), "by": by}, separators=(",", ":"))
    key = keys.maintenance(host)
    return etcd.transaction([absent(key)], [Put(key, value)])


def unmark(etcd: Etcd, host: str) -> bool:
    """End *host*'s maintenance; whether it was in maintenance."""
    return etcd.delete(keys.maintenance(host))


def hand_over(
    etcd: Etcd, name: str, source: str, target: str, *, state: str, back: bool = False
) -> None:
    """Move the ownership of domain *name* from *source* to *target* in one transaction: it
    succeeds only while *source* still owns it and *target* is alive (the new owner key is
    bound to *target*'s live lease) and not in maintenance — unless *back*: the ownership
    returns to the host being evacuated after a failed move. *state*: ``running`` or
    ``stopped`` (what ``/pyvirt/placed/NAME`` says afterwards).

    :raises InvalidStateError: the ownership changed meanwhile, or *target* is down or in
        maintenance; nothing changed
    """
    owner = etcd.get(keys.owner(name))
    if owner is None or json.loads(owner.value).get("host") != source:
        raise InvalidStateError(
            f"cluster domain {name!r} is no longer owned by host {source!r}",
            hint="see 'pyvirt cluster domains'",
        )
    alive = etcd.get(keys.alive(target))
    if alive is None:
        raise InvalidStateError(f"cluster host {target!r} is down", hint="choose another host")
    lease = alive.lease or Liveness.decode(alive.value).lease
    value = json.dumps({"host": target, "since": time.time()}, separators=(",", ":"))
    conditions = [unchanged(owner), Compare(keys.alive(target), "lease", "EQUAL", lease)]
    if not back:
        conditions.append(absent(keys.maintenance(target)))
    ok = etcd.transaction(
        conditions,
        [
            Put(keys.owner(name), value, lease=lease),
            Put(keys.placed(name), placed_value(target, state)),
        ],
    )
    if not ok:
        raise InvalidStateError(
            f"the ownership of cluster domain {name!r} could not move from {source!r} to "
            f"{target!r} (it changed meanwhile, or {target!r} went down or into maintenance)",
            hint="evacuate again",
        )
