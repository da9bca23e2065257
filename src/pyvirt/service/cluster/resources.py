"""Cluster networks and shared pools: defined once in etcd, defined on every member.

``cluster net-define`` / ``pool-define`` store the XML at ``/pyvirt/res/KIND/NAME`` (with a
UUID, so every host gets the same one). Each member's pyvirtd runs a :class:`ResourceAgent`:
it reads the cluster's networks and pools, defines the missing ones locally (an autostart
pool is started; an autostart network is marked autostart, which in pyvirt starts it on first
use by a domain), undefines those the cluster removed, then **watches** ``/pyvirt/res/`` (one
long poll on etcd's watch stream, woken by a change) and does it again. Which local networks
and pools came from the cluster is kept in ``CONFIG/daemon/cluster-resources.json``: a local
network or pool of the same name with another UUID is left alone (and reported).

A shared pool is one every host sees the same (a ``dir`` on shared storage, ``netfs``,
``iscsi``, ...): placement may assume a volume in it is there on every host that has the pool
active.

Each agent also publishes its host's **inventory** (``/pyvirt/inventory/HOST``, bound to the
host's lease): the networks and pools it can use, its NUMA nodes, and which cluster networks
and pools its running domains use. Placement reads the first two; ``net-undefine`` /
``pool-undefine`` refuse while a running domain anywhere uses the network or pool (and a
member still keeps one its running domain uses, until that domain stops).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.etcd import Delete, Etcd, Put, absent, unchanged
from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    PyvirtError,
)
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.membership import open_etcd, require_config

if TYPE_CHECKING:
    from pyvirt.service.cluster.rules import Inventory
    from pyvirt.service.connection import Connection

log = logging.getLogger(__name__)

# lazy: the network/pool models, the advisor and the inventory load only when used

KINDS = ("network", "pool")
#: pool types whose storage every host can see the same (a dir must be on shared storage)
SHARED_POOL_TYPES = ("dir", "netfs", "iscsi", "iscsi-direct", "rbd", "gluster")
#: seconds a watch waits without a change before the agent looks again anyway (the
#: inventory's figures: which running domains use what)
IDLE = 5.0
#: the local record of what the cluster defined here
APPLIED_FILE = "cluster-resources.json"


@dataclass(frozen=True)
class ClusterResource:
    """A cluster network or shared pool (``/pyvirt/res/KIND/NAME``).

    :ivar kind: ``network`` or ``pool``
    :ivar name: its name (unique per kind in the cluster)
    :ivar uuid: its UUID (the same on every host)
    :ivar xml: its definition
    :ivar autostart: start it on every host (a network: on first use by a domain)
    :ivar type: the pool's type, or the network's forward mode
    :ivar defined: when it was defined in the cluster (seconds since the epoch)
    """

    kind: str
    name: str
    uuid: str
    xml: str
    autostart: bool
    type: str
    defined: float

    def encode(self) -> str:
        """The value stored in etcd."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str) -> ClusterResource:
        """The record stored in *value*."""
        data = json.loads(value)
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (without the XML)."""
        return {k: v for k, v in asdict(self).items() if k != "xml"}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidConfigError(f"unknown cluster resource kind {kind!r}", hint="network or pool")


def _verb(kind: str) -> str:
    return "net" if kind == "network" else "pool"


def _what(kind: str) -> str:
    return "network" if kind == "network" else "pool"


def parse_resource(kind: str, xml: str | bytes, *, autostart: bool) -> ClusterResource:
    """A record from a network or pool definition (a UUID is added when it has none).

    :raises InvalidConfigError: invalid XML, or a pool type hosts cannot share
    """
    _check_kind(kind)
    from pyvirt.state.names import check_new_name  # lazy

    if kind == "network":
        from pyvirt.model.network import Network  # lazy: lxml and the model

        net = Network.from_xml(xml)
        check_new_name(net.name, kind="network")
        if not net.uuid:
            net.uuid = str(uuid.uuid4())
        name, ident, text, kind_type = net.name, net.uuid, net.to_xml(), net.mode
    else:
        from pyvirt.model.pool import Pool  # lazy

        pool = Pool.from_xml(xml)
        check_new_name(pool.name, kind="pool")
        if pool.type not in SHARED_POOL_TYPES:
            raise InvalidConfigError(
                f"a pool of type '{pool.type}' cannot be shared by the cluster's hosts",
                hint="use a pool every host sees the same: " + ", ".join(SHARED_POOL_TYPES)
                + " (a dir on shared storage)",
            )  # fmt: skip
        if not pool.uuid:
            pool.uuid = str(uuid.uuid4())
        name, ident, text, kind_type = pool.name, pool.uuid, pool.to_xml(), pool.type
    return ClusterResource(kind, name, ident, text, autostart, kind_type, time.time())


def define(conn: Connection, kind: str, xml: str | bytes, *, autostart: bool) -> ClusterResource:
    """Define a network or shared pool for the whole cluster (each member's pyvirtd then
    defines it locally).

    :raises InvalidConfigError: invalid XML, or a pool type hosts cannot share
    :raises AlreadyExistsError: the cluster has a network (pool) of that name
    """
    config = require_config(conn)
    record = parse_resource(kind, xml, autostart=autostart)
    etcd = open_etcd(config)
    try:
        key = keys.resource(kind, record.name)
        if not etcd.transaction([absent(key)], [Put(key, record.encode())]):
            raise AlreadyExistsError(
                f"cluster {config.cluster!r} already has a {_what(kind)} named {record.name!r}",
                hint=f"choose another name, or 'pyvirt cluster {_verb(kind)}-undefine "
                f"{record.name}' first",
            )  # fmt: skip
    finally:
        etcd.close()
    return record


def list_resources(etcd: Etcd) -> list[ClusterResource]:
    """The cluster's networks, then its pools, each sorted by name."""
    return [ClusterResource.decode(e.value) for e in etcd.get_prefix(keys.RESOURCES)]


def resources(conn: Connection) -> list[ClusterResource]:
    """The cluster's networks and shared pools (``cluster resources``)."""
    config = require_config(conn)
    etcd = open_etcd(config)
    try:
        return list_resources(etcd)
    finally:
        etcd.close()


def _users_in_cluster(etcd: Etcd, kind: str, name: str) -> str:
    """Who uses network/pool *name*: a cluster domain needing it, or a running domain on a
    host (from the hosts' inventories); '' when nobody does."""
    from pyvirt.service.cluster.domains import ClusterDomain  # lazy
    from pyvirt.service.cluster.rules import Inventory  # lazy

    tag = f"{kind}:{name}"
    for entry in etcd.get_prefix(keys.INVENTORY):
        inv = Inventory.from_json(json.loads(entry.value))
        if inv.used.get(tag):
            host = entry.key[len(keys.INVENTORY) :]
            return f"domain '{inv.used[tag][0]}' on host '{host}'"
    from pyvirt.model.domain import Domain  # lazy
    from pyvirt.service.cluster.rules import needs_of  # lazy

    for entry in etcd.get_prefix(keys.DOMAINS):
        record = ClusterDomain.decode(entry.value)
        needs = needs_of(Domain.from_xml(record.xml))
        if name in (needs.networks if kind == "network" else needs.pools):
            return f"cluster domain '{record.name}'"
    return ""


def undefine(conn: Connection, kind: str, name: str) -> None:
    """Remove a cluster network or pool (each member's pyvirtd undefines it locally).

    :raises NotFoundError: the cluster has no such network (pool)
    :raises InvalidStateError: a running domain uses it, here or on another host, or a
        cluster domain needs it
    """
    _check_kind(kind)
    config = require_config(conn)
    here = local_users(conn, kind, name)
    if here:
        raise InvalidStateError(
            f"cluster {_what(kind)} {name!r} is used by domain '{here[0]}' on host '{config.host}'",
            hint="shut the domain down (or detach it) first",
        )
    etcd = open_etcd(config)
    try:
        key = keys.resource(kind, name)
        entry = etcd.get(key)
        if entry is None:
            raise NotFoundError(
                f"the cluster has no {_what(kind)} named {name!r}",
                hint="see 'pyvirt cluster resources'",
            )
        user = _users_in_cluster(etcd, kind, name)
        if user:
            raise InvalidStateError(
                f"cluster {_what(kind)} {name!r} is used by {user}",
                hint="shut the domain down, or undefine the cluster domain, first",
            )
        if not etcd.transaction([unchanged(entry)], [Delete(key)]):
            raise InvalidStateError(f"cluster {_what(kind)} {name!r} changed meanwhile; try again")
    finally:
        etcd.close()


# this host --------------------------------------------------------------------------------


def local_users(conn: Connection, kind: str, name: str) -> list[str]:
    """The running domains on this host using network (pool) *name*."""
    if kind == "network":
        return conn.networks.users(name)
    return [
        dom_name
        for dom_name, dom in conn.domains.running_definitions()
        if any(d.type == "volume" and d.source_pool == name for d in dom.devices.disks)
    ]


def _applied_path(conn: Connection) -> Path:
    return conn.paths.daemon_config_dir / APPLIED_FILE


def read_applied(conn: Connection) -> dict[str, dict[str, str]]:
    """What the cluster defined on this host: kind -> name -> UUID."""
    try:
        data = json.loads(_applied_path(conn).read_text())
    except (OSError, ValueError):
        return {k: {} for k in KINDS}
    return {k: {str(n): str(u) for n, u in (data.get(k) or {}).items()} for k in KINDS}


def _write_applied(conn: Connection, applied: dict[str, dict[str, str]]) -> None:
    from pyvirt.state.atomic import atomic_write  # lazy

    path = _applied_path(conn)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(applied, sort_keys=True).encode(), sync=False)


def _local_uuid(conn: Connection, kind: str, name: str) -> str | None:
    """The UUID of local network (pool) *name*, or ``None`` when there is none."""
    if kind == "network":
        try:
            return conn.networks.info(name).uuid
        except NotFoundError:
            return None
    pool = conn.pools.config(name) or conn.pools.live(name)
    return pool.uuid if pool is not None else None


def _define_here(conn: Connection, res: ClusterResource) -> None:
    if res.kind == "network":
        conn.networks.define_xml(res.xml)
        if res.autostart:
            conn.networks.autostart(res.name, True)
        return
    conn.pools.define_xml(res.xml)
    if res.autostart:
        conn.pools.set_autostart(res.name, True)


def _start_pool(conn: Connection, res: ClusterResource) -> None:
    if conn.pools.live(res.name) is not None:
        return
    try:
        conn.pools.start(res.name)
    except PyvirtError:
        if res.type != "dir":
            raise
        conn.pools.start(res.name, build=True)  # a dir not made yet on this host's mount


def _remove_here(conn: Connection, kind: str, name: str) -> None:
    if kind == "network":
        if conn.networks.is_active(name):
            conn.networks.destroy(name)
        conn.networks.undefine(name)
        return
    if conn.pools.live(name) is not None:
        conn.pools.destroy(name)
    if conn.pools.config(name) is not None:
        conn.pools.undefine(name)


@dataclass
class SyncReport:
    """What one :func:`sync` did: (kind, name) lists, and problems as text."""

    defined: list[tuple[str, str]]
    removed: list[tuple[str, str]]
    kept: list[tuple[str, str]]
    problems: list[str]


def sync(conn: Connection, wanted: list[ClusterResource], *, start: bool = True) -> SyncReport:
    """Make this host's networks and pools follow the cluster's (*wanted*): define (and
    start) what is missing, undefine what the cluster removed unless a running domain uses
    it. Errors of one network or pool are reported, not raised.

    :param start: also start autostart pools defined before that are not active (not on the
        agent's idle rounds: a mount that fails is not retried every few seconds)
    """
    applied = read_applied(conn)
    report = SyncReport([], [], [], [])
    want = {(r.kind, r.name): r for r in wanted}
    for (kind, name), res in sorted(want.items()):
        try:
            local = _local_uuid(conn, kind, name)
            if local is None:
                _define_here(conn, res)
                applied[kind][name] = res.uuid
                report.defined.append((kind, name))
            elif local.lower() != res.uuid.lower():
                if name not in applied[kind]:
                    report.problems.append(
                        f"local {_what(kind)} '{name}' has another UUID ({local}): "
                        "the cluster's is not defined here"
                    )
                continue
            elif name not in applied[kind]:
                applied[kind][name] = res.uuid  # the same one, defined here before
            if kind == "pool" and res.autostart and (start or (kind, name) in report.defined):
                _start_pool(conn, res)
        except PyvirtError as err:
            report.problems.append(f"{_what(kind)} '{name}': {err.message}")
    for kind in KINDS:
        for name in sorted(set(applied[kind]) - {n for k, n in want if k == kind}):
            try:
                if _local_uuid(conn, kind, name) is None:
                    del applied[kind][name]
                    continue
                if local_users(conn, kind, name):
                    report.kept.append((kind, name))
                    continue
                _remove_here(conn, kind, name)
                del applied[kind][name]
                report.removed.append((kind, name))
            except PyvirtError as err:
                report.problems.append(f"{_what(kind)} '{name}': {err.message}")
    _write_applied(conn, applied)
    return report


def inventory(conn: Connection, shape: Any = None) -> Inventory:
    """This host's inventory: usable networks, active pools, NUMA shape (*shape*, a
    :class:`~pyvirt.service.tuning.advisor.HostShape`; read when ``None``), and which cluster
    networks/pools its running domains use."""
    from pyvirt.service.cluster.rules import Inventory  # lazy

    if shape is None:
        from pyvirt.service.tuning.advisor import read_host  # lazy

        shape = read_host(conn.host.host_root)
    nets = tuple(n.name for n in conn.networks.list() if n.active or n.autostart)
    pools = tuple(p.name for p in conn.pools.list() if p.state == "running")
    applied = read_applied(conn)
    used: dict[str, tuple[str, ...]] = {}
    if any(applied.values()):
        running = conn.domains.running_definitions()
        for dom_name, dom in running:
            for i in dom.devices.interfaces:
                if i.type == "network" and i.source_network in applied["network"]:
                    tag = f"network:{i.source_network}"
                    used[tag] = (*used.get(tag, ()), dom_name)
            for d in dom.devices.disks:
                if d.type == "volume" and d.source_pool in applied["pool"]:
                    tag = f"pool:{d.source_pool}"
                    used[tag] = (*used.get(tag, ()), dom_name)
    return Inventory(nets, pools, shape, used)


class ResourceAgent:
    """pyvirtd's thread that keeps this host's networks and pools in step with the cluster's
    and publishes its inventory (see the module doc).

    :param conn: the daemon's service connection
    :param config: this host's membership
    :param lease: this host's lease now (0: none; the inventory waits for one)
    :param on_event: called with (event, "network:NAME"/"pool:NAME", detail)
    """

    def __init__(
        self,
        conn: Connection,
        config: ClusterConfig,
        lease: Callable[[], int],
        on_event: Callable[[str, str, str], None] | None = None,
    ) -> None:
        self.conn = conn
        self.config = config
        self.lease = lease
        self.on_event = on_event
        self.etcd = open_etcd(config)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._published = ("", 0)
        self._said: set[str] = set()
        self._shape: Any = None
        #: rounds done (tests and the daemon's status read it)
        self.rounds = 0

    def start(self) -> None:
        """Start the agent's thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="cluster-resources", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop the thread (its watch is cut short)."""
        self._stop.set()
        self.etcd.abort_watch()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self.etcd.close()

    def _run(self) -> None:
        changed = True
        while not self._stop.is_set():
            try:
                revision = self.round(start=changed)
                if self._stop.is_set():
                    return
                changed = self.etcd.watch(keys.RESOURCES, revision + 1, idle=IDLE)
            except PyvirtError as err:
                log.warning("cluster: networks and pools: %s", err.message)
                self._stop.wait(IDLE)
            except Exception:
                log.exception("cluster: networks and pools failed")
                self._stop.wait(IDLE)

    def round(self, *, start: bool = True) -> int:
        """Sync once (*start*: see :func:`sync`) and publish the inventory; the etcd revision
        the cluster's list was read at (a watch goes on from the next one)."""
        entries, revision = self.etcd.get_prefix_at(keys.RESOURCES)
        wanted = [ClusterResource.decode(e.value) for e in entries]
        report = sync(self.conn, wanted, start=start)
        for kind, name in report.defined:
            self._event("Defined", f"{kind}:{name}", "from the cluster")
        for kind, name in report.removed:
            self._event("Undefined", f"{kind}:{name}", "removed from the cluster")
        for kind, name in report.kept:
            self._say(f"cluster {kind} '{name}' was removed but a running domain here uses it: "
                      "kept until the domain stops")  # fmt: skip
        for problem in report.problems:
            self._say(problem)
        self.publish()
        self.rounds += 1
        return revision

    def publish(self) -> None:
        """Write this host's inventory (bound to its lease) when it changed."""
        lease = self.lease()
        if not lease:
            return
        if self._shape is None:
            from pyvirt.service.tuning.advisor import read_host  # lazy

            self._shape = read_host(self.conn.host.host_root)
        value = json.dumps(inventory(self.conn, self._shape).to_json(), sort_keys=True,
                           separators=(",", ":"))  # fmt: skip
        if (value, lease) == self._published:
            return
        self.etcd.put(keys.inventory(self.config.host), value, lease=lease)
        self._published = (value, lease)

    def _say(self, message: str) -> None:
        """Log *message* once per agent (a round repeats every few seconds)."""
        if message in self._said:
            return
        self._said.add(message)
        log.warning("cluster: %s", message)

    def _event(self, event: str, what: str, detail: str) -> None:
        if self.on_event is not None:
            self.on_event(event, what, detail)
