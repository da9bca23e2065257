"""Creating a cluster, joining and leaving it, and listing its hosts.

The cluster record and each host's registration are written with compare-and-swap
transactions, so two hosts racing for one name (or two ``init``s against one etcd) cannot both
win. A host's liveness is a separate key bound to its lease (:mod:`.heartbeat`): a dead host
stays registered, shown ``down``.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.etcd import (
    DEFAULT_TIMEOUT,
    Delete,
    Entry,
    Etcd,
    Put,
    absent,
    parse_endpoints,
    unchanged,
)
from pyvirt.errors import AlreadyExistsError, InvalidConfigError, InvalidStateError, NotFoundError
from pyvirt.service.cluster import keys, peers
from pyvirt.service.cluster.config import (
    DEFAULT_DAEMON_HOLD,
    DEFAULT_RENEW,
    DEFAULT_TTL,
    MAX_DAEMON_HOLD,
    ClusterConfig,
    check_host_name,
    check_tls_files,
    read_config,
    remove_config,
    write_config,
)
from pyvirt.service.cluster.records import HostRecord, Liveness, describe_host, host_id

if TYPE_CHECKING:
    from pyvirt.service.cluster.domains import DomainPlacementInfo
    from pyvirt.service.connection import Connection


@dataclass(frozen=True)
class ClusterRecord:
    """The cluster's own record (``/pyvirt/cluster``).

    :ivar name: the cluster's name
    :ivar created: when ``cluster init`` ran (seconds since the epoch)
    :ivar ttl: seconds of a host's lease
    :ivar renew: seconds between a host's renewals
    """

    name: str
    created: float
    ttl: int = DEFAULT_TTL
    renew: float = DEFAULT_RENEW

    def encode(self) -> str:
        """The value stored in etcd."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str) -> ClusterRecord:
        """The record stored in *value*."""
        data = json.loads(value)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class HostStatus:
    """A member as ``cluster list`` shows it.

    :ivar record: its registration
    :ivar state: ``up`` (its lease is alive) or ``down``
    :ivar liveness: its liveness record while it is up
    :ivar maintenance: since when it is in maintenance (seconds since the epoch; 0: it is not)
    """

    record: HostRecord
    state: str
    liveness: Liveness | None = None
    maintenance: float = 0.0

    @property
    def name(self) -> str:
        """The host's name."""
        return self.record.name

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostStatus:
        """The status *data* (:meth:`to_json`'s output) describes."""
        fields = set(HostRecord.__dataclass_fields__)
        record = HostRecord.decode(json.dumps({k: v for k, v in data.items() if k in fields}))
        live = None
        if data.get("state") == "up":
            live = Liveness(
                lease=0,
                since=float(data.get("up_since", 0.0)),
                pid=0,
                free_kib=int(data.get("free_kib", 0)),
                load=float(data.get("load", 0.0)),
            )
        since = float(data.get("maintenance_since") or 0.0) if data.get("maintenance") else 0.0
        return cls(record=record, state=str(data.get("state", "down")), liveness=live,
                   maintenance=since)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``cluster list --json``)."""
        out: dict[str, Any] = {"name": self.name, "state": self.state}
        # the peer secret's digest stays in etcd: only daemons check it
        out.update({k: v for k, v in self.record.to_json().items()
                    if k not in ("name", "peer_sha256")})  # fmt: skip
        if self.liveness is not None:
            out["free_kib"] = self.liveness.free_kib
            out["load"] = self.liveness.load
            out["up_since"] = self.liveness.since
        out["maintenance"] = bool(self.maintenance)
        if self.maintenance:
            out["maintenance_since"] = self.maintenance
        return out


def open_etcd(config: ClusterConfig, *, fast: bool = False) -> Etcd:
    """A client of the cluster's etcd as *config* says; *fast*: one try per member with a
    short timeout (the heartbeat's: a renewal must not hang past the next one)."""
    if fast:
        timeout = min(DEFAULT_TIMEOUT, max(0.5, config.renew))
        return Etcd(config.endpoints, ca=config.etcd_ca, cert=config.etcd_cert,
                    key=config.etcd_key, timeout=timeout, retry_for=0)  # fmt: skip
    return Etcd(config.endpoints, ca=config.etcd_ca, cert=config.etcd_cert, key=config.etcd_key)


def require_config(conn: Connection) -> ClusterConfig:
    """This host's membership.

    :raises InvalidStateError: the host is not in a cluster
    """
    config = read_config(conn.paths)
    if config is None:
        raise InvalidStateError(
            "this host is not in a cluster",
            hint="create one with 'pyvirt cluster init --etcd URL' or join one with "
            "'pyvirt cluster join --etcd URL'",
        )
    return config


def _refuse_if_member(conn: Connection) -> None:
    config = read_config(conn.paths)
    if config is not None:
        raise AlreadyExistsError(
            f"this host is already in cluster {config.cluster!r} as {config.host!r}",
            hint="leave it first with 'pyvirt cluster leave'",
        )


def read_cluster(etcd: Etcd) -> ClusterRecord:
    """The cluster's record.

    :raises NotFoundError: etcd holds no pyvirt cluster
    """
    entry = etcd.get(keys.CLUSTER)
    if entry is None:
        raise NotFoundError(
            f"etcd at {', '.join(etcd.endpoints)} holds no pyvirt cluster",
            hint="create one with 'pyvirt cluster init --etcd URL'",
        )
    return ClusterRecord.decode(entry.value)


def _register(conn: Connection, etcd: Etcd, config: ClusterConfig) -> HostRecord:
    """Register this host under its name with a new peer secret's digest and its pyvirtd's
    certificate (:mod:`.peers`); a name held by another machine is refused."""
    record = replace(
        describe_host(conn, config.host, config.address, time.time()),
        tls_fingerprint=peers.local_fingerprint(conn.paths, config.address),
        peer_sha256=peers.digest(peers.new_secret(conn.paths)),
    )
    key = keys.host(config.host)
    if etcd.transaction([absent(key)], [Put(key, record.encode())]):
        return record
    current = etcd.get(key)
    if current is None:  # left between the two requests: try once more
        if etcd.transaction([absent(key)], [Put(key, record.encode())]):
            return record
        raise AlreadyExistsError(f"cluster host name {config.host!r} was taken meanwhile")
    old = HostRecord.decode(current.value)
    if old.host_id != record.host_id:
        raise AlreadyExistsError(
            f"cluster host name {config.host!r} is registered by another machine "
            f"({old.address or 'no address'})",
            hint="choose another name with --name, or remove the old host with "
            "'pyvirt cluster leave' on it",
        )
    # the same machine and state directory re-joining (e.g. after 'leave --force')
    record = HostRecord(**{**record.__dict__, "joined": old.joined})
    if not etcd.transaction([unchanged(current)], [Put(key, record.encode())]):
        raise InvalidStateError(f"cluster host {config.host!r} changed meanwhile; try again")
    return record


def init_cluster(
    conn: Connection,
    endpoints: str | list[str],
    *,
    name: str,
    host: str,
    address: str = "",
    ttl: int = DEFAULT_TTL,
    renew: float = DEFAULT_RENEW,
    etcd_ca: str | None = None,
    etcd_cert: str | None = None,
    etcd_key: str | None = None,
    kernel_watchdog: bool = True,
    daemon_hold: float = DEFAULT_DAEMON_HOLD,
) -> ClusterConfig:
    """Create a cluster in etcd and make this host its first member.

    :raises AlreadyExistsError: this host is in a cluster, or etcd already holds one
    :raises InvalidConfigError: bad endpoints, name or timings
    """
    _refuse_if_member(conn)
    check_host_name(host)
    _check_hold(daemon_hold)
    check_host_name(name)
    check_tls_files(etcd_ca, etcd_cert, etcd_key)
    if not 2 <= ttl <= 300 or not 0 < renew <= ttl / 3:
        raise InvalidConfigError(
            f"lease TTL {ttl} s with renewal every {renew:g} s is out of range",
            hint="the TTL must be 2-300 s and renewal at most a third of it",
        )
    config = ClusterConfig(
        cluster=name,
        host=host,
        endpoints=parse_endpoints(endpoints),
        address=address,
        ttl=ttl,
        renew=renew,
        etcd_ca=etcd_ca,
        etcd_cert=etcd_cert,
        etcd_key=etcd_key,
        kernel_watchdog=kernel_watchdog,
        daemon_hold=daemon_hold,
    )
    etcd = open_etcd(config, fast=True)  # an unreachable etcd fails at once, not in 6 s
    try:
        cluster = ClusterRecord(name=name, created=time.time(), ttl=ttl, renew=renew)
        if not etcd.transaction([absent(keys.CLUSTER)], [Put(keys.CLUSTER, cluster.encode())]):
            existing = read_cluster(etcd)
            raise AlreadyExistsError(
                f"etcd at {', '.join(config.endpoints)} already holds cluster {existing.name!r}",
                hint="join it with 'pyvirt cluster join --etcd URL'",
            )
        _register(conn, etcd, config)
        config = _with_members(etcd, config)
    finally:
        etcd.close()
    write_config(conn.paths, config)
    return config


def _check_hold(seconds: float) -> None:
    if not 0 <= seconds <= MAX_DAEMON_HOLD:
        raise InvalidConfigError(
            f"a daemon hold of {seconds:g} s is out of range",
            hint=f"give 0-{MAX_DAEMON_HOLD:g} s (0: no hold; HA guests fenced when pyvirtd dies)",
        )


def _with_members(etcd: Etcd, config: ClusterConfig) -> ClusterConfig:
    """*config* with every etcd member's client URLs added to the endpoints given (a host
    told one member still reaches the others when that one is down)."""
    urls = [u for m in etcd.members() for u in m.client_urls]
    endpoints = parse_endpoints([*config.endpoints, *urls])
    return ClusterConfig(**{**config.__dict__, "endpoints": endpoints})


def join_cluster(
    conn: Connection,
    endpoints: str | list[str],
    *,
    host: str,
    address: str = "",
    etcd_ca: str | None = None,
    etcd_cert: str | None = None,
    etcd_key: str | None = None,
    kernel_watchdog: bool = True,
    daemon_hold: float = DEFAULT_DAEMON_HOLD,
) -> ClusterConfig:
    """Join the cluster whose etcd is at *endpoints* as *host*.

    :raises NotFoundError: etcd holds no cluster
    :raises AlreadyExistsError: this host is in a cluster, or *host* is another machine's name
    """
    _refuse_if_member(conn)
    check_host_name(host)
    _check_hold(daemon_hold)
    check_tls_files(etcd_ca, etcd_cert, etcd_key)
    probe = ClusterConfig(
        cluster="",
        host=host,
        endpoints=parse_endpoints(endpoints),
        address=address,
        etcd_ca=etcd_ca,
        etcd_cert=etcd_cert,
        etcd_key=etcd_key,
        kernel_watchdog=kernel_watchdog,
        daemon_hold=daemon_hold,
    )
    etcd = open_etcd(probe, fast=True)  # an unreachable etcd fails at once, not in 6 s
    try:
        cluster = read_cluster(etcd)
        config = ClusterConfig(
            **{
                **probe.__dict__,
                "cluster": cluster.name,
                "ttl": cluster.ttl,
                "renew": cluster.renew,
            }
        )
        _register(conn, etcd, config)
    finally:
        etcd.close()
    write_config(conn.paths, config)
    return config


def leave_cluster(conn: Connection, *, force: bool = False) -> ClusterConfig | None:
    """Remove this host from its cluster: its registration, liveness and membership file.

    With *force*, a cluster that cannot be reached (or a broken membership file) does not stop
    the local membership file from being removed.

    :raises InvalidStateError: the host is not in a cluster
    """
    try:
        config = require_config(conn)
    except InvalidConfigError:
        if not force:
            raise
        remove_config(conn.paths)
        _forget_secret(conn)
        return None
    etcd = open_etcd(config)
    try:
        key = keys.host(config.host)
        entry = etcd.get(key)
        if entry is not None and HostRecord.decode(entry.value).host_id == host_id(conn):
            etcd.transaction([unchanged(entry)], [Delete(key), Delete(keys.alive(config.host))])
    except Exception:
        if not force:
            raise
    finally:
        etcd.close()
    remove_config(conn.paths)
    _forget_secret(conn)
    return config


def _forget_secret(conn: Connection) -> None:
    peers.remove_secret(conn.paths)


def list_hosts(etcd: Etcd) -> list[HostStatus]:
    """Every registered host with its state, sorted by name."""
    alive = {e.key[len(keys.ALIVE) :]: e for e in etcd.get_prefix(keys.ALIVE)}
    maint = {e.key[len(keys.MAINTENANCE) :]: e for e in etcd.get_prefix(keys.MAINTENANCE)}
    out: list[HostStatus] = []
    for entry in etcd.get_prefix(keys.HOSTS):
        record = HostRecord.decode(entry.value)
        live = alive.get(record.name)
        out.append(
            HostStatus(
                record=record,
                state="up" if live is not None else "down",
                liveness=Liveness.decode(live.value) if live is not None else None,
                maintenance=_since(maint.get(record.name)),
            )
        )
    return out


def _since(entry: Entry | None) -> float:
    """When a maintenance mark was set (0.0: no mark)."""
    if entry is None:
        return 0.0
    try:
        return float(json.loads(entry.value).get("since", 0.0)) or 1.0
    except (ValueError, AttributeError):
        return 1.0  # a mark we cannot read is still a mark


@dataclass(frozen=True)
class EtcdMemberStatus:
    """One etcd member as ``cluster status`` shows it."""

    name: str
    client_urls: tuple[str, ...]
    healthy: bool


@dataclass(frozen=True)
class ClusterStatus:
    """What ``cluster status`` shows: the cluster, this host, etcd, the hosts."""

    cluster: ClusterRecord
    host: str
    hosts: list[HostStatus]
    etcd: list[EtcdMemberStatus]
    #: the cluster's domains with their owners and states (:mod:`.status` fills them in)
    domains: list[DomainPlacementInfo] = field(default_factory=list)
    #: the host whose recovery manager leads HA recovery ('' when none; :mod:`.status`)
    leader: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterStatus:
        """The status *data* (:meth:`to_json`'s output) describes, without its domains
        (:func:`pyvirt.service.cluster.status.status_from_json` adds them)."""
        return cls(
            leader=str(data.get("leader") or ""),
            cluster=ClusterRecord(**data["cluster"]),
            host=str(data["host"]),
            hosts=[HostStatus.from_json(h) for h in data.get("hosts") or []],
            etcd=[
                EtcdMemberStatus(str(m["name"]), tuple(m["client_urls"]), bool(m["healthy"]))
                for m in data.get("etcd") or []
            ],
        )

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (``cluster status --json``)."""
        return {
            "cluster": asdict(self.cluster),
            "host": self.host,
            "hosts": [h.to_json() for h in self.hosts],
            "etcd": [
                {"name": m.name, "client_urls": list(m.client_urls), "healthy": m.healthy}
                for m in self.etcd
            ],
            "domains": [d.to_json() for d in self.domains],
            "leader": self.leader,
        }


def cluster_status(conn: Connection) -> ClusterStatus:
    """The cluster as this host sees it.

    :raises InvalidStateError: this host is not in a cluster
    :raises EtcdUnavailableError: no etcd member answers
    """
    config = require_config(conn)
    etcd = open_etcd(config)
    try:
        cluster = read_cluster(etcd)
        hosts = list_hosts(etcd)
        members = etcd.members()
        health = etcd.endpoint_health()
        etcd_status = [
            EtcdMemberStatus(
                name=m.name,
                client_urls=m.client_urls,
                healthy=any(health.get(u, False) for u in m.client_urls)
                or _answers(etcd, m.client_urls),
            )
            for m in members
        ]
    finally:
        etcd.close()
    return ClusterStatus(cluster=cluster, host=config.host, hosts=hosts, etcd=etcd_status)


def _answers(etcd: Etcd, urls: tuple[str, ...]) -> bool:
    """Whether a member not among our endpoints answers at one of its client URLs."""
    if not urls:
        return False
    probe = etcd.sibling(urls, timeout=1.0)
    try:
        return any(probe.endpoint_health().values())
    finally:
        probe.close()


def hosts(conn: Connection) -> list[HostStatus]:
    """The cluster's hosts (``cluster list``)."""
    config = require_config(conn)
    etcd = open_etcd(config)
    try:
        return list_hosts(etcd)
    finally:
        etcd.close()
