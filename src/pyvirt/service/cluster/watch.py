"""The cluster's changes as events: hosts joining, leaving, going down and coming up again,
entering and leaving maintenance, and domains changing owner.

Every pyvirtd of the cluster polls etcd once per renewal interval (in its recovery thread, not
in the event loop) and compares what it reads with the previous round: :func:`snapshot` reads
the hosts' registrations, their liveness keys and the domains' owners (three range reads), and
:func:`diff` turns two snapshots into :class:`Change` values. A round that cannot reach etcd
keeps the last snapshot, so the changes made meanwhile show once etcd answers again. The first
round only takes the snapshot: a daemon that starts does not report the cluster's past.

Fencing and recovery are reported where they happen (the fenced host, the leader): see
:mod:`pyvirt.service.cluster.recovery` and :mod:`pyvirt.service.cluster.watchdog`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pyvirt.drivers.etcd import Etcd
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.membership import HostStatus, list_hosts

__all__ = ["Change", "ClusterWatch", "Snapshot", "diff", "snapshot"]


@dataclass(frozen=True)
class Change:
    """One change: ``object`` is ``host`` or ``domain``, ``event`` a capitalised word
    (``Joined``, ``Left``, ``Down``, ``Up``, ``Maintenance``, ``Restored``; ``Claimed``,
    ``Released``), ``detail`` a short phrase and ``data`` what the web console shows."""

    object: str
    name: str
    event: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HostView:
    """What the watch remembers of a host."""

    state: str
    address: str
    maintenance: bool


@dataclass(frozen=True)
class Snapshot:
    """The hosts (name → :class:`HostView`) and owners (domain → host) at one round."""

    hosts: dict[str, HostView]
    owners: dict[str, str]


def _view(h: HostStatus) -> HostView:
    # h.maintenance: since when its maintenance mark is set (``cluster evacuate``), 0 if unset
    return HostView(state=h.state, address=h.record.address, maintenance=bool(h.maintenance))


def snapshot(etcd: Etcd) -> Snapshot:
    """The cluster's hosts and owners now (three range reads)."""
    hosts = {h.name: _view(h) for h in list_hosts(etcd)}
    owners = {
        e.key[len(keys.OWNERS) :]: str(json.loads(e.value).get("host", ""))
        for e in etcd.get_prefix(keys.OWNERS)
    }
    return Snapshot(hosts, owners)


def _up(state: str) -> bool:
    return state != "down"


def diff(old: Snapshot, new: Snapshot, *, skip_host: str = "") -> list[Change]:
    """The changes from *old* to *new*, hosts first, each sorted by name. *skip_host*'s
    ``Up``/``Down`` are left out (pyvirtd reports its own lease from its heartbeat)."""
    out: list[Change] = []
    for name in sorted(old.hosts.keys() | new.hosts.keys()):
        before, after = old.hosts.get(name), new.hosts.get(name)
        if before is None and after is not None:
            out.append(Change("host", name, "Joined", after.address or "no address",
                              {"host": name, "state": after.state}))  # fmt: skip
            continue
        if after is None:
            out.append(Change("host", name, "Left", "", {"host": name, "state": "gone"}))
            continue
        assert before is not None
        data = {"host": name, "state": after.state}
        if _up(before.state) != _up(after.state) and name != skip_host:
            if _up(after.state):
                out.append(Change("host", name, "Up", "lease granted", data))
            else:
                out.append(Change("host", name, "Down", "lease expired", data))
        if before.maintenance != after.maintenance:
            if after.maintenance:
                out.append(Change("host", name, "Maintenance", "evacuated", data))
            else:
                out.append(Change("host", name, "Restored", "maintenance ended", data))
    for name in sorted(old.owners.keys() | new.owners.keys()):
        was, now = old.owners.get(name, ""), new.owners.get(name, "")
        if was == now:
            continue
        if now:
            detail = f"{now}" + (f" (was {was})" if was else "")
            out.append(Change("domain", name, "Claimed", detail,
                              {"domain": name, "owner": now, "previous": was}))  # fmt: skip
        else:
            out.append(Change("domain", name, "Released", f"was {was}",
                              {"domain": name, "owner": "", "previous": was}))  # fmt: skip
    return out


class ClusterWatch:
    """Polled once per round: the changes since the last round that reached etcd.

    :param host: this host's name (its own ``Up``/``Down`` come from its heartbeat)
    """

    def __init__(self, host: str) -> None:
        self.host = host
        self.last: Snapshot | None = None

    def poll(self, etcd: Etcd) -> list[Change]:
        """Read the cluster and return what changed (nothing on the first call).

        :raises EtcdUnavailableError: etcd did not answer (the last snapshot is kept)
        """
        now = snapshot(etcd)
        old, self.last = self.last, now
        return [] if old is None else diff(old, now, skip_host=self.host)
