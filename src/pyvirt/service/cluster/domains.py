"""Cluster domains: defined once in etcd, owned by exactly one host at a time.

A cluster domain's definition lives at ``/pyvirt/domains/NAME``. Its owner is the host whose
name is at ``/pyvirt/owners/NAME``; that key is written by a transaction that succeeds only
when it is absent (or already this host's), bound to the owner's lease: when the owner's
lease ends, the key goes with it. Only the owner may start the domain: :func:`claim_for_start`
runs before every local start of a cluster member and refuses when another host owns it.
A host running a cluster domain keeps its local definition in step with the cluster's
(:func:`adopt`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.etcd import Delete, Etcd, Put, absent, unchanged
from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
)
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import ClusterConfig, read_config
from pyvirt.service.cluster.membership import open_etcd, require_config

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection

# lazy: the domain model (lxml) and the name checks load only when a definition is parsed

#: where pyvirtd keeps its lease id (written by the heartbeat)
LEASE_FILE = "cluster-lease"
#: HA domains this process claimed (to start them here): name -> monotonic time of the claim
_recent_ha: dict[str, float] = {}


def recent_ha_claims(since: float) -> set[str]:
    """The HA cluster domains this process claimed at or after *since* (monotonic): the
    fencers kill them too, until a recovery round that began after the claim lists them among
    the host's HA guests (a frozen daemon's claims do not age)."""
    for name, when in list(_recent_ha.items()):
        if when < since - 600:
            _recent_ha.pop(name, None)
    return {name for name, when in list(_recent_ha.items()) if when >= since}


@dataclass(frozen=True)
class ClusterDomain:
    """A cluster domain's record (``/pyvirt/domains/NAME``).

    :ivar name: the domain's name (unique in the cluster)
    :ivar uuid: its UUID
    :ivar xml: its definition
    :ivar ha: restart it on another host when its host dies
    :ivar memory_kib: its memory (what placement needs free)
    :ivar vcpus: its vCPUs
    :ivar defined: when it was defined in the cluster (seconds since the epoch)
    :ivar affinity: its affinity group: it goes where the group's other domains are ('')
    :ivar anti_affinity: its anti-affinity group: never on a host with another of the group
    :ivar soft: its affinity rules are preferences: placement breaks them rather than find no
        host (it prefers a host keeping them, among those that fit)
    """

    name: str
    uuid: str
    xml: str
    ha: bool
    memory_kib: int
    vcpus: int
    defined: float
    affinity: str = ""
    anti_affinity: str = ""
    soft: bool = False

    def encode(self) -> str:
        """The value stored in etcd."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str) -> ClusterDomain:
        """The record stored in *value*."""
        data = json.loads(value)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class DomainPlacementInfo:
    """A cluster domain as ``cluster domains`` lists it: its record and its owner (or '')."""

    domain: ClusterDomain
    owner: str
    #: ``running`` or ``stopped`` where it last ran (as its owner published it), or ''
    state: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (without the XML)."""
        d = self.domain
        out: dict[str, Any] = {
            "name": d.name,
            "uuid": d.uuid,
            "ha": d.ha,
            "memory_kib": d.memory_kib,
            "vcpus": d.vcpus,
            "owner": self.owner,
            "state": self.state,
        }
        if d.affinity:
            out["affinity"] = d.affinity
        if d.anti_affinity:
            out["anti_affinity"] = d.anti_affinity
        if d.soft:
            out["soft"] = True
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DomainPlacementInfo:
        """The info *d* (:meth:`to_json`'s output) describes (a record without its XML)."""
        record = ClusterDomain(str(d["name"]), str(d["uuid"]), "", bool(d["ha"]),
                               int(d["memory_kib"]), int(d["vcpus"]), 0.0,
                               str(d.get("affinity") or ""),
                               str(d.get("anti_affinity") or ""),
                               bool(d.get("soft", False)))  # fmt: skip
        return cls(record, str(d.get("owner") or ""), str(d.get("state") or ""))


def _parse(xml: str | bytes) -> ClusterDomain:
    from pyvirt.model.domain import Domain  # lazy: lxml and the model

    dom = Domain.from_xml(xml)
    return ClusterDomain(
        name=dom.name,
        uuid=dom.uuid,
        xml=dom.to_xml(),
        ha=False,
        memory_kib=dom.memory_kib,
        vcpus=dom.vcpu.count,
        defined=time.time(),
    )


def define(
    conn: Connection,
    xml: str | bytes,
    *,
    ha: bool = False,
    affinity: str = "",
    anti_affinity: str = "",
    soft: bool = False,
) -> ClusterDomain:
    """Define a domain for the whole cluster (in an affinity and/or anti-affinity group; with
    *soft*, the groups are preferences).

    :raises InvalidConfigError: invalid XML or group name, or *soft* without a group
    :raises AlreadyExistsError: the cluster has a domain of that name
    """
    from pyvirt.state.names import check_new_name  # lazy

    config = require_config(conn)
    record = _parse(xml)
    check_new_name(record.name, paths=conn.paths)
    for group in (affinity, anti_affinity):
        if group:
            check_group_name(group)
    if soft and not (affinity or anti_affinity):
        raise InvalidConfigError(
            "soft affinity needs an affinity or anti-affinity group",
            hint="add --affinity GROUP or --anti-affinity GROUP, or leave out --soft",
        )
    record = ClusterDomain(
        **{**asdict(record), "ha": ha, "affinity": affinity, "anti_affinity": anti_affinity,
           "soft": soft}
    )  # fmt: skip
    etcd = open_etcd(config)
    try:
        key = keys.domain(record.name)
        puts = [Put(key, record.encode())] + [Put(k, "") for k in _group_keys(record)]
        if not etcd.transaction([absent(key)], puts):
            raise AlreadyExistsError(
                f"cluster {config.cluster!r} already has a domain named {record.name!r}",
                hint="choose another name, or 'pyvirt cluster undefine' the old one",
            )
    finally:
        etcd.close()
    return record


def _group_keys(record: ClusterDomain) -> list[str]:
    """The group index keys of *record* (``/pyvirt/groups/...``)."""
    out = []
    if record.affinity:
        out.append(keys.group_member("affinity", record.affinity, record.name))
    if record.anti_affinity:
        out.append(keys.group_member("anti-affinity", record.anti_affinity, record.name))
    return out


def check_group_name(group: str) -> None:
    """Refuse an affinity group name that is not 1-63 letters, digits, '.', '_' or '-'.

    :raises InvalidConfigError: a bad name
    """
    import re  # lazy

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", group):
        raise InvalidConfigError(
            f"invalid affinity group name {group!r}",
            hint="use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )


def get(etcd: Etcd, name: str, *, cluster: str = "") -> ClusterDomain:
    """Cluster domain *name*.

    :raises NotFoundError: the cluster has no such domain
    """
    entry = etcd.get(keys.domain(name))
    if entry is None:
        raise NotFoundError(
            f"cluster {cluster!r} has no domain named {name!r}"
            if cluster
            else f"the cluster has no domain named {name!r}",
            hint="see 'pyvirt cluster domains'",
        )
    return ClusterDomain.decode(entry.value)


def owner_of(etcd: Etcd, name: str) -> str:
    """The host owning *name* now ('' when none does)."""
    entry = etcd.get(keys.owner(name))
    return json.loads(entry.value)["host"] if entry is not None else ""


def undefine(conn: Connection, name: str) -> None:
    """Remove a cluster domain's definition (refused while a host owns it).

    :raises NotFoundError: no such cluster domain
    :raises InvalidStateError: a host owns it (it runs, or ran and its host is alive)
    """
    config = require_config(conn)
    etcd = open_etcd(config)
    try:
        entry = etcd.get(keys.domain(name))
        if entry is None:
            get(etcd, name, cluster=config.cluster)
            return
        owner = owner_of(etcd, name)
        if owner:
            raise InvalidStateError(
                f"cluster domain {name!r} is owned by host {owner!r}",
                hint=f"stop it there first ('pyvirt cluster release {name}' on {owner})",
            )
        gone = [Delete(keys.domain(name)), Delete(keys.placed(name))]
        gone += [Delete(k) for k in _group_keys(ClusterDomain.decode(entry.value))]
        if not etcd.transaction([unchanged(entry), absent(keys.owner(name))], gone):
            raise InvalidStateError(f"cluster domain {name!r} changed meanwhile; try again")
    finally:
        etcd.close()


def list_domains(conn: Connection) -> list[DomainPlacementInfo]:
    """The cluster's domains with their owners, sorted by name."""
    config = require_config(conn)
    etcd = open_etcd(config)
    try:
        return domain_infos(etcd)
    finally:
        etcd.close()


def domain_infos(etcd: Etcd) -> list[DomainPlacementInfo]:
    """The cluster's domains with their owners and last published states (three reads)."""
    owners = {
        e.key[len(keys.OWNERS) :]: json.loads(e.value)["host"] for e in etcd.get_prefix(keys.OWNERS)
    }
    states = {
        e.key[len(keys.PLACED) :]: str(json.loads(e.value).get("state", ""))
        for e in etcd.get_prefix(keys.PLACED)
    }
    out = []
    for e in etcd.get_prefix(keys.DOMAINS):
        name = e.key[len(keys.DOMAINS) :]
        out.append(DomainPlacementInfo(ClusterDomain.decode(e.value), owners.get(name, ""),
                                       states.get(name, "")))  # fmt: skip
    return out


def live_lease(paths_run: Path, etcd: Etcd) -> int:
    """This host's live lease (the heartbeat's), or 0 when it has none."""
    try:
        lease = int((paths_run / LEASE_FILE).read_text().split()[0], 16)
    except (OSError, ValueError, IndexError):
        return 0
    return lease if etcd.lease_ttl(lease) > 0 else 0


def placed_value(host: str, state: str) -> str:
    """The ``/pyvirt/placed/NAME`` value: the host and the domain's state there."""
    return json.dumps({"host": host, "state": state, "since": time.time()}, separators=(",", ":"))


def claim(etcd: Etcd, config: ClusterConfig, name: str, lease: int) -> None:
    """Make this host the owner of cluster domain *name* (bound to *lease*).

    :raises InvalidStateError: another host owns it, or this host is in maintenance
    """
    key = keys.owner(name)
    free = absent(keys.maintenance(config.host))  # an evacuated host starts nothing
    value = json.dumps({"host": config.host, "since": time.time()}, separators=(",", ":"))
    where = Put(keys.placed(name), placed_value(config.host, "running"))
    if etcd.transaction([absent(key), free], [Put(key, value, lease=lease), where]):
        return
    entry = etcd.get(key)
    # ours (under this lease, or an older one of this host): bound to the live lease
    ours = entry is not None and json.loads(entry.value)["host"] == config.host
    move = [Put(key, value, lease=lease), where]
    if ours and entry is not None and etcd.transaction([unchanged(entry), free], move):
        return
    if etcd.get(keys.maintenance(config.host)) is not None:
        raise InvalidStateError(
            f"cluster domain {name!r} cannot start: host {config.host!r} is in maintenance",
            hint=f"start it on another host, or end the maintenance with "
            f"'pyvirt cluster restore {config.host}'",
        )
    holder = json.loads(entry.value)["host"] if entry is not None else "another host"
    raise InvalidStateError(
        f"cluster domain {name!r} is owned by host {holder!r}",
        hint="start it there, or stop it there first; a cluster domain runs on one host only",
    )


def release(conn: Connection, name: str) -> bool:
    """Give up this host's ownership of *name* (the domain must not run here); whether it
    was ours."""
    config = require_config(conn)
    if conn.domains.live_record(name, cleanup=True) is not None:
        raise InvalidStateError(
            f"domain {name!r} is running on this host", hint="shut it down first"
        )
    etcd = open_etcd(config)
    try:
        entry = etcd.get(keys.owner(name))
        if entry is None or json.loads(entry.value)["host"] != config.host:
            return False
        return etcd.transaction(
            [unchanged(entry)], [Delete(keys.owner(name)), Delete(keys.placed(name))]
        )
    finally:
        etcd.close()


def claim_for_start(conn: Connection, name: str) -> None:
    """Before a local start: when this host is in a cluster and *name* is a cluster domain,
    claim its ownership (refused when another host owns it). A host outside any cluster, or
    a domain of this host only, costs one ``stat``.

    :raises InvalidStateError: another host owns it, or this host holds no live lease
    """
    config = read_config(conn.paths)
    if config is None:
        return
    etcd = open_etcd(config)
    try:
        entry = etcd.get(keys.domain(name))
        if entry is None:
            return
        lease = live_lease(conn.paths.run, etcd)
        if not lease:
            raise InvalidStateError(
                f"cluster domain {name!r} cannot start: this host holds no live cluster lease",
                hint="start pyvirtd (it keeps the host's lease), then try again",
            )
        if ClusterDomain.decode(entry.value).ha:
            _recent_ha[name] = time.monotonic()  # before QEMU starts: fenced from then on
        claim(etcd, config, name, lease)
    finally:
        etcd.close()


def give_up_failed_start(conn: Connection, name: str) -> bool:
    """After a recovery's start of HA cluster domain *name* failed here (after its claim, or
    before): when it does not run here and this host owns it, drop the ownership and leave
    ``placed`` ``running`` with this host, so the leader tries again (on another host, or here
    after a back-off) instead of leaving it stopped; whether the ownership was given up."""
    config = read_config(conn.paths)
    _recent_ha.pop(name, None)  # not starting here any more: nothing for the fencers
    if config is None or conn.domains.live_record(name, cleanup=True) is not None:
        return False
    etcd = open_etcd(config)
    try:
        entry = etcd.get(keys.owner(name))
        if entry is None or json.loads(entry.value).get("host") != config.host:
            return False
        again = Put(keys.placed(name), placed_value(config.host, "running"))
        return etcd.transaction([unchanged(entry)], [Delete(keys.owner(name)), again])
    finally:
        etcd.close()


def adopt(conn: Connection, name: str) -> ClusterDomain:
    """Define cluster domain *name* on this host as the cluster has it (new or updated).

    :raises AlreadyExistsError: a local domain of that name has another UUID
    """
    config = require_config(conn)
    etcd = open_etcd(config)
    try:
        record = get(etcd, name, cluster=config.cluster)
    finally:
        etcd.close()
    if conn.domains.store.exists(name):
        local_uuid = conn.domains.uuid_of(name)
        if local_uuid != record.uuid:
            raise AlreadyExistsError(
                f"a local domain {name!r} with another UUID ({local_uuid}) exists on this host",
                hint="rename or undefine the local domain",
            )
    conn.domains.define(record.xml)
    return record
