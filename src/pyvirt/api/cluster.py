"""The cluster this host belongs to (issue 16): ``conn.cluster``.

A cluster is opt-in: a host without a membership file (``pyvirt cluster init`` / ``join``
writes it) works alone, as before. The cluster's shared state lives in etcd
(:mod:`pyvirt.service.cluster`); pyvirtd keeps the host's lease alive (:class:`ClusterAgent`),
so a host is shown ``up`` only while its daemon runs.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyvirt.errors import PyvirtError
from pyvirt.service.cluster.config import (
    DEFAULT_DAEMON_HOLD,
    DEFAULT_RENEW,
    DEFAULT_TTL,
    ClusterConfig,
)
from pyvirt.service.cluster.domains import ClusterDomain, DomainPlacementInfo
from pyvirt.service.cluster.membership import (
    ClusterRecord,
    ClusterStatus,
    EtcdMemberStatus,
    HostStatus,
)
from pyvirt.service.cluster.placement import Candidate, Placement
from pyvirt.service.cluster.records import HostRecord, Liveness
from pyvirt.service.cluster.resources import ClusterResource

if TYPE_CHECKING:
    from pyvirt.api.cluster_evacuate import EvacuationReport
    from pyvirt.api.cluster_peers import PeerCheck
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.cluster.events import ClusterEvent, EventRelay
    from pyvirt.service.cluster.heartbeat import Heartbeat
    from pyvirt.service.cluster.recovery import RecoveryManager
    from pyvirt.service.cluster.resources import ResourceAgent
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = [
    "Candidate",
    "Cluster",
    "ClusterAgent",
    "ClusterConfig",
    "ClusterDomain",
    "ClusterRecord",
    "ClusterResource",
    "ClusterStatus",
    "DomainPlacementInfo",
    "EtcdMemberStatus",
    "HostRecord",
    "HostStatus",
    "Liveness",
    "Placement",
]


#: ``on_watch(object, name, event, detail, data)``: a change seen in etcd (host ``Joined``,
#: ``Left``, ``Down``, ``Up``, ``Maintenance``, ``Restored``; domain ``Claimed``, ``Released``)
WatchCallback = Callable[[str, str, str, str, dict[str, Any]], None]
#: ``run_job(kind, object, work)``: runs ``work()`` as a daemon job and waits for it; raises
#: the job's error (a recovery runs as a ``cluster-recover`` job)
JobRunner = Callable[[str, str, Callable[[], object]], None]


# lazy: membership, heartbeat and etcd code load only when a cluster verb runs (a host that is
# not in a cluster never imports etcd3gw and requests)


def default_host_name() -> str:
    """This machine's short host name (the default cluster host name)."""
    return socket.gethostname().split(".")[0] or "localhost"


class Cluster:
    """This host's view of its cluster (``pyvirt cluster ...``)."""

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    def membership(self) -> ClusterConfig | None:
        """This host's membership, or ``None`` when it is not in a cluster."""
        from pyvirt.service.cluster.config import read_config  # lazy

        return read_config(self._service.paths)

    def init(
        self,
        etcd: str | list[str],
        *,
        name: str = "pyvirt",
        host: str | None = None,
        address: str = "",
        ttl: int = DEFAULT_TTL,
        renew: float = DEFAULT_RENEW,
        etcd_ca: str | None = None,
        etcd_cert: str | None = None,
        etcd_key: str | None = None,
        kernel_watchdog: bool = True,
        daemon_hold: float = DEFAULT_DAEMON_HOLD,
    ) -> ClusterConfig:
        """Create a cluster in *etcd* (client URLs) with this host as its first member.

        :raises AlreadyExistsError: this host is in a cluster, or etcd already holds one
        :raises EtcdUnavailableError: no etcd member answers
        """
        from pyvirt.service.cluster.membership import init_cluster  # lazy

        return init_cluster(
            self._service,
            etcd,
            name=name,
            host=host or default_host_name(),
            address=address,
            ttl=ttl,
            renew=renew,
            etcd_ca=etcd_ca,
            etcd_cert=etcd_cert,
            etcd_key=etcd_key,
            kernel_watchdog=kernel_watchdog,
            daemon_hold=daemon_hold,
        )

    def join(
        self,
        etcd: str | list[str],
        *,
        host: str | None = None,
        address: str = "",
        etcd_ca: str | None = None,
        etcd_cert: str | None = None,
        etcd_key: str | None = None,
        kernel_watchdog: bool = True,
        daemon_hold: float = DEFAULT_DAEMON_HOLD,
    ) -> ClusterConfig:
        """Join the cluster whose etcd is at *etcd* as *host* (default: this host's name).

        :raises NotFoundError: etcd holds no pyvirt cluster
        :raises AlreadyExistsError: this host is in a cluster, or the name is another machine's
        """
        from pyvirt.service.cluster.membership import join_cluster  # lazy

        return join_cluster(
            self._service,
            etcd,
            host=host or default_host_name(),
            address=address,
            etcd_ca=etcd_ca,
            etcd_cert=etcd_cert,
            etcd_key=etcd_key,
            kernel_watchdog=kernel_watchdog,
            daemon_hold=daemon_hold,
        )

    def leave(self, *, force: bool = False) -> None:
        """Leave the cluster (with *force*, even when etcd cannot be reached).

        :raises InvalidStateError: this host is not in a cluster
        """
        from pyvirt.service.cluster.membership import leave_cluster  # lazy

        leave_cluster(self._service, force=force)

    def hosts(self) -> list[HostStatus]:
        """The cluster's hosts with their state (``up``/``down``), sorted by name."""
        from pyvirt.service.cluster.membership import hosts  # lazy

        return hosts(self._service)

    def status(self) -> ClusterStatus:
        """The cluster, its etcd members and hosts, as this host sees them."""
        from pyvirt.service.cluster.status import cluster_status  # lazy

        return cluster_status(self._service)

    # cluster domains -----------------------------------------------------------------------

    def define(
        self,
        xml: str | bytes,
        *,
        ha: bool = False,
        affinity: str = "",
        anti_affinity: str = "",
        soft: bool = False,
    ) -> ClusterDomain:
        """Define a domain for the whole cluster (no host owns it until it starts); with
        *anti_affinity*, never on a host with another domain of that group; with *affinity*,
        on the host where the group's other domains are; with *soft*, those two are
        preferences (placement breaks them rather than find no host).

        :raises AlreadyExistsError: the cluster has a domain of that name
        """
        from pyvirt.service.cluster import domains  # lazy

        return domains.define(self._service, xml, ha=ha, affinity=affinity,
                              anti_affinity=anti_affinity, soft=soft)  # fmt: skip

    def undefine(self, name: str) -> None:
        """Remove a cluster domain (refused while a host owns it)."""
        from pyvirt.service.cluster import domains  # lazy

        domains.undefine(self._service, name)

    def domains(self) -> list[DomainPlacementInfo]:
        """The cluster's domains with their owners."""
        from pyvirt.service.cluster import domains  # lazy

        return domains.list_domains(self._service)

    def place(self, name: str, *, avoid: list[str] | None = None) -> Placement:
        """Where cluster domain *name* would start now (and why), without starting it."""
        from pyvirt.service.cluster import domains, placement  # lazy
        from pyvirt.service.cluster.membership import open_etcd, require_config  # lazy

        config = require_config(self._service)
        etcd = open_etcd(config)
        try:
            record = domains.get(etcd, name, cluster=config.cluster)
            return placement.place_domain(etcd, record, avoid=avoid or ())
        finally:
            etcd.close()

    def start(self, name: str, *, host: str | None = None, recovery: bool = False) -> str:
        """Start cluster domain *name* on *host*, or on the host placement picks; the host.

        The chosen host's pyvirtd defines the domain there as the cluster has it, claims its
        ownership and starts it; another host owning it refuses. A *recovery*'s failed start
        gives the ownership back (see :meth:`run_here`).

        :raises InvalidStateError: another host owns it, or no host fits
        """
        from pyvirt.service.cluster.membership import hosts, require_config  # lazy

        config = require_config(self._service)
        target = host or self._owner(name) or self.place(name).host
        if target == config.host:
            self.run_here(name, recovery=recovery)
            return target
        known = {h.name: h for h in hosts(self._service)}
        if target not in known:
            from pyvirt.errors import NotFoundError  # lazy

            raise NotFoundError(
                f"cluster has no host named {target!r}", hint="see 'pyvirt cluster list'"
            )
        from pyvirt.api.cluster_peers import open_peer  # lazy

        peer = open_peer(self._service, config.host, known[target].record)
        try:
            peer.cluster.run_here(name, recovery=recovery)
        finally:
            close = getattr(peer, "close", None)
            if close is not None:
                close()
        return target

    def _owner(self, name: str) -> str:
        """The host owning cluster domain *name* ('' when none does): a start without a
        host goes there (any other host would be refused)."""
        from pyvirt.service.cluster import domains  # lazy
        from pyvirt.service.cluster.membership import open_etcd, require_config  # lazy

        etcd = open_etcd(require_config(self._service))
        try:
            return domains.owner_of(etcd, name)
        finally:
            etcd.close()

    def run_here(self, name: str, *, recovery: bool = False) -> None:
        """Define cluster domain *name* on this host as the cluster has it and start it here
        (ownership is claimed by the start). For a *recovery* (the leader restarting an HA
        domain), a start that fails gives the ownership back, so that the leader tries again
        (:func:`pyvirt.service.cluster.domains.give_up_failed_start`)."""
        from pyvirt.service.cluster import domains  # lazy

        try:
            domains.adopt(self._service, name)
            from pyvirt.api.domain import Domain  # lazy

            Domain(self._service, name).start()
        except PyvirtError:
            if recovery:
                domains.give_up_failed_start(self._service, name)
            raise

    def peer_verifier(self) -> PeerCheck:
        """pyvirtd's check of the credentials the cluster's other hosts present
        (:mod:`pyvirt.api.cluster_peers`)."""
        from pyvirt.api.cluster_peers import peer_verifier  # lazy

        return peer_verifier(self._service)

    def release(self, name: str) -> bool:
        """Give up this host's ownership of a shut-off cluster domain; whether it was ours."""
        from pyvirt.service.cluster import domains  # lazy

        return domains.release(self._service, name)

    # maintenance ---------------------------------------------------------------------------

    def evacuate(
        self,
        host: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> EvacuationReport:
        """Put *host* in maintenance and move every cluster domain it owns to the hosts
        placement picks (running ones live); what happened to each
        (:func:`pyvirt.api.cluster_evacuate.evacuate`).

        :raises NotFoundError: the cluster has no such host
        :raises InvalidStateError: it owns domains and no other host can take them
        """
        from pyvirt.api.cluster_evacuate import evacuate  # lazy

        return evacuate(self._service, host, progress=progress, cancel=cancel)

    def restore(self, host: str) -> bool:
        """End *host*'s maintenance (no guest moves back by itself); whether it was in
        maintenance.

        :raises NotFoundError: the cluster has no such host
        """
        from pyvirt.api.cluster_evacuate import restore  # lazy

        return restore(self._service, host)

    # cluster networks and shared pools --------------------------------------------------------

    def resource_define(self, kind: str, xml: str | bytes, *, autostart: bool = False
                        ) -> ClusterResource:  # fmt: skip
        """Define a network (*kind* ``network``) or shared pool (``pool``) for the whole
        cluster; every member's pyvirtd defines it locally (and starts an autostart pool).

        :raises AlreadyExistsError: the cluster has one of that name
        :raises InvalidConfigError: bad XML, or a pool type hosts cannot share
        """
        from pyvirt.service.cluster import resources  # lazy

        return resources.define(self._service, kind, xml, autostart=autostart)

    def resource_undefine(self, kind: str, name: str) -> None:
        """Remove a cluster network or pool (refused while a running domain uses it).

        :raises NotFoundError: no such cluster network (pool)
        :raises InvalidStateError: a domain uses it
        """
        from pyvirt.service.cluster import resources  # lazy

        resources.undefine(self._service, kind, name)

    def resources(self) -> list[ClusterResource]:
        """The cluster's networks and shared pools."""
        from pyvirt.service.cluster import resources  # lazy

        return resources.resources(self._service)

    def agent(
        self,
        on_change: Callable[[str], None] | None = None,
        on_event: Callable[[str, str, str], None] | None = None,
        *,
        on_watch: WatchCallback | None = None,
        run_job: JobRunner | None = None,
        tls_cert: str | None = None,
        on_remote: WatchCallback | None = None,
    ) -> ClusterAgent:
        """pyvirtd's cluster work (call :meth:`ClusterAgent.reload` to start it); *tls_cert*:
        the certificate of its TLS listener, if it has one."""
        return ClusterAgent(self._service, on_change, on_event, on_watch=on_watch,
                            run_job=run_job, tls_cert=tls_cert, on_remote=on_remote)  # fmt: skip


#: an event's own fields: not taken as a relayed event's data keys
_EVENT_FIELDS = frozenset({"daemon", "kind", "obj", "object", "name", "event", "detail", "seq"})


class ClusterAgent:
    """pyvirtd's part in the cluster while the daemon runs: keeps this host's lease alive
    (:class:`~pyvirt.service.cluster.heartbeat.Heartbeat`), fences its HA guests when the lease
    cannot be renewed in time (itself, and through the watchdog process when the daemon is dead
    or hung), runs the recovery manager that restarts a dead host's HA guests elsewhere
    (:mod:`pyvirt.service.cluster.recovery`), and keeps the host's networks and pools in step
    with the cluster's, publishing its inventory (:mod:`pyvirt.service.cluster.resources`).

    :param service: the daemon's embedded service connection
    :param on_change: called with ``"up"``/``"down"`` when the host's lease state changes
    :param on_event: called with (event, domain, detail) for fencing and recoveries
    :param on_watch: called for each change of the cluster seen in etcd (see
        :mod:`pyvirt.service.cluster.watch`), from the recovery thread
    :param run_job: runs a recovery's start as a daemon job (see :data:`JobRunner`)
    :param tls_cert: the certificate of pyvirtd's TLS listener (None: it has none); its
        fingerprint is kept in the host's registration for the other hosts to pin
    :param on_remote: called for each event of another host (its fencing, the leader's
        recoveries, an evacuation's progress: :mod:`pyvirt.service.cluster.events`), with
        the host it happened on in the data's ``origin``; this host's own events (those of
        *on_event*, and :meth:`announce`'s) go to the others
    """

    def __init__(
        self,
        service: ServiceConnection,
        on_change: Callable[[str], None] | None = None,
        on_event: Callable[[str, str, str], None] | None = None,
        *,
        on_watch: WatchCallback | None = None,
        run_job: JobRunner | None = None,
        tls_cert: str | None = None,
        on_remote: WatchCallback | None = None,
    ) -> None:
        self._service = service
        self._tls_cert = tls_cert
        self._on_change = on_change
        self._on_event = on_event
        self._on_watch = on_watch
        self._run_job = run_job
        self._on_remote = on_remote
        self._relay: EventRelay | None = None
        self._heartbeat: Heartbeat | None = None
        self._recovery: RecoveryManager | None = None
        self._resources: ResourceAgent | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._spawned_at = 0.0

    @property
    def state(self) -> str:
        """``up``, ``down`` or ``none`` (not in a cluster)."""
        return self._heartbeat.state if self._heartbeat is not None else "none"

    @property
    def leader(self) -> bool:
        """Whether this host's recovery manager leads."""
        return self._recovery is not None and self._recovery.leader

    def reload(self) -> None:
        """Start, restart or stop the cluster work as the membership file now says."""
        from pyvirt.service.cluster import watchdog  # lazy
        from pyvirt.service.cluster.config import read_config  # lazy
        from pyvirt.service.cluster.heartbeat import Heartbeat  # lazy
        from pyvirt.service.cluster.membership import open_etcd  # lazy
        from pyvirt.service.cluster.recovery import RecoveryManager  # lazy
        from pyvirt.service.cluster.resources import ResourceAgent  # lazy

        config = read_config(self._service.paths)
        if self._heartbeat is not None and config == self._heartbeat.config:
            return
        self.stop(revoke=config is None)
        if config is None:
            return
        heartbeat = Heartbeat(
            open_etcd(config, fast=True),
            config,
            on_change=self._on_change,
            on_fence=self._fence,
            on_tick=self._tick,
            host_root=self._service.host.host_root,
            lease_file=self._service.paths.run / "cluster-lease",
            held_file=self._service.paths.run / watchdog.HELD,
        )
        self._heartbeat = heartbeat
        self._recovery = RecoveryManager(
            open_etcd(config),
            config,
            running=lambda: set(self._service.domains.running_names()),
            start_on=self._start_on,
            lease=lambda: heartbeat.lease if heartbeat.state == "up" else 0,
            on_event=self._domain_event,
            paths=self._service.paths,
        )
        if self._on_remote is not None:
            from pyvirt.service.cluster.events import EventRelay  # lazy

            self._relay = EventRelay(open_etcd(config), open_etcd(config), config.host,
                                     self._remote)  # fmt: skip
            self._relay.start()
        self._resources = ResourceAgent(
            self._service, config, lambda: heartbeat.lease if heartbeat.state == "up" else 0
        )
        self._stop.clear()
        heartbeat.start()
        self._resources.start()
        self._thread = threading.Thread(target=self._rounds, name="cluster-recovery", daemon=True)
        self._thread.start()

    def wait_up(self, timeout: float = 5.0) -> bool:
        """Wait until the host's lease is alive (after :meth:`reload`); whether it is."""
        return self._heartbeat.wait_up(timeout) if self._heartbeat is not None else False

    def stop(self, *, revoke: bool = True) -> None:
        """Stop the cluster work; with *revoke*, end the lease (the host shows ``down`` at
        once) and the watchdog (leaving the cluster); without, a restarted daemon goes on
        (and while HA guests run here, the watchdog renews the lease meanwhile)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._heartbeat is not None:
            heartbeat = self._heartbeat
            lease, deadline, names = heartbeat.lease, heartbeat.fence_deadline, []
            if not revoke and lease and deadline is not None:
                running = set(self._service.domains.running_names())
                names = [n for n in self._fence_names() if n in running]
            heartbeat.stop(revoke=revoke)
            heartbeat.etcd.close()
            self._heartbeat = None
            if names and deadline is not None:
                self._hold(lease, deadline, names)
        if self._recovery is not None:
            self._recovery.etcd.close()
            self._recovery = None
        if self._resources is not None:
            self._resources.stop()
            self._resources = None
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        if revoke:
            from pyvirt.service.cluster import watchdog  # lazy

            watchdog.stop(self._service.paths)

    def announce(self, obj: str, name: str, event: str, detail: str = "",
                 data: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Show an event of this host on the other members' event streams too (not on this
        one's: the caller publishes it here); nothing outside a cluster."""
        if self._relay is not None:
            self._relay.announce(obj, name, event, detail, data)

    def _domain_event(self, event: str, name: str, detail: str) -> None:
        """A fencing or recovery event: here (``on_event``) and on the other members."""
        if self._on_event is not None:
            self._on_event(event, name, detail)
        if self._relay is not None:
            self._relay.announce("domain", name, event, detail,
                                 {"domain": name, "host": self._relay.host})  # fmt: skip

    def _remote(self, ev: ClusterEvent) -> None:
        if self._on_remote is not None:
            # never the event's own fields as data keys (an event of a newer daemon)
            data = {k: v for k, v in ev.data.items() if k not in _EVENT_FIELDS}
            self._on_remote(ev.object, ev.name, ev.event, ev.detail,
                            {**data, "origin": ev.host, "at": ev.time})  # fmt: skip

    # the threads' work ---------------------------------------------------------------------

    def _rounds(self) -> None:
        import logging  # lazy

        from pyvirt.service.cluster.watch import ClusterWatch  # lazy

        log = logging.getLogger("pyvirt.cluster")
        watch: ClusterWatch | None = None
        self._publish_certificate(log)
        while not self._stop.is_set():
            recovery, heartbeat = self._recovery, self._heartbeat
            if recovery is None or heartbeat is None:
                return
            self._report_watchdog()  # one rename attempt: ENOENT unless the watchdog fenced
            try:
                recovery.round()
            except PyvirtError as err:
                log.warning("cluster: recovery round: %s", err.message)
            except Exception:
                log.exception("cluster: recovery round failed")
            if self._on_watch is not None:
                watch = watch or ClusterWatch(heartbeat.config.host)
                try:
                    for c in watch.poll(recovery.etcd):
                        self._on_watch(c.object, c.name, c.event, c.detail, c.data)
                except PyvirtError as err:
                    log.debug("cluster: watch round: %s", err.message)
                except Exception:
                    log.exception("cluster: watch round failed")
            self._stop.wait(heartbeat.config.renew)

    def _publish_certificate(self, log: Any) -> None:
        """Keep the host's registration's certificate fingerprint that of pyvirtd's TLS
        listener now (another certificate than at join, or a listener added since)."""
        from pyvirt.service.cluster import peers  # lazy
        from pyvirt.service.cluster.records import host_id  # lazy

        recovery, heartbeat = self._recovery, self._heartbeat
        if self._tls_cert is None or recovery is None or heartbeat is None:
            return
        config = heartbeat.config
        fingerprint = peers.local_fingerprint(self._service.paths, config.address,
                                              self._tls_cert or None)  # fmt: skip
        if not fingerprint:
            return
        try:
            if peers.publish_fingerprint(recovery.etcd, config.host, host_id(self._service),
                                         fingerprint):  # fmt: skip
                log.info("cluster: published this host's TLS certificate SHA256 %s", fingerprint)
        except PyvirtError as err:
            log.warning("cluster: cannot publish the TLS certificate: %s", err.message)

    def _report_watchdog(self) -> None:
        """Report what the watchdog fenced while this daemon was not running or hung."""
        import time  # lazy

        from pyvirt.service.cluster import watchdog  # lazy

        try:
            records = watchdog.take_fenced(self._service.paths)
        except OSError:
            return  # RUN unreadable: nothing to report (the watchdog's log has it)
        for when, names in records:
            ago = max(0, int(time.time() - when))
            for name in names:
                self._domain_event("Fenced", name, f"by the watchdog {ago} s ago "
                                   "(pyvirtd was not renewing the lease)")  # fmt: skip

    def _fence(self) -> None:
        from pyvirt.service.cluster.fence import kill_now  # lazy

        killed = kill_now(self._service.paths, self._fence_names())
        for name in killed:
            self._domain_event("Fenced", name, "lease not renewed in time")

    def _hold(self, lease: int, deadline: float, names: list[str]) -> None:
        """A clean stop with HA guests running: the watchdog renews the lease for a while
        (:func:`pyvirt.service.cluster.watchdog.hold`), so a restart does not fence them."""
        import logging  # lazy

        from pyvirt.service.cluster import watchdog  # lazy

        log = logging.getLogger("pyvirt.cluster")
        if watchdog.hold(self._service.paths, lease, deadline, names):
            log.warning(
                "cluster: pyvirtd stops with HA guests running (%s): its watchdog renews the "
                "lease for up to %g s; restart pyvirtd by then, or they are fenced and "
                "restarted elsewhere",
                ", ".join(names),
                watchdog.STOP_HOLD,
            )
        else:
            log.error("cluster: no watchdog to hold the lease: HA guests %s will be fenced",
                      ", ".join(names))  # fmt: skip

    def _fence_names(self) -> list[str]:
        """The HA guests to kill at the fence deadline: those the last round saw owned here
        and running, and every HA cluster domain running here now (a migration's destination
        runs one before a round sees it owned here; a host runs no cluster domain it does not
        own otherwise)."""
        recovery = self._recovery
        if recovery is None:
            return []
        here = set(recovery.fence_names())  # owned and running, or claimed since the last round
        if recovery.ha_known:
            here.update(recovery.ha_known.intersection(self._service.domains.running_names()))
        return sorted(here)

    def _tick(self, deadline: float | None) -> None:
        """Pet the watchdog process (start one when none listens and the host holds a lease)."""
        import time  # lazy

        from pyvirt.service.cluster import watchdog  # lazy

        if self._recovery is None:
            return
        # until the first round lists them, the watchdog keeps the names it has (a restarted
        # daemon); without a lease, it keeps its deadline too
        ready = self._recovery.ready
        if not ready and deadline is None:
            return
        names = self._fence_names() if ready else None
        paths = self._service.paths
        heartbeat = self._heartbeat
        lease = heartbeat.lease if heartbeat is not None and deadline is not None else 0
        if watchdog.pet(paths, deadline or 0.0, names, lease) or deadline is None:
            return
        if time.monotonic() - self._spawned_at > 5.0:
            self._spawned_at = time.monotonic()
            watchdog.spawn(paths)

    def _start_on(self, name: str, host: str) -> None:
        cluster = Cluster(self._service)

        def work() -> object:
            if self._heartbeat is not None and host == self._heartbeat.config.host:
                cluster.run_here(name, recovery=True)
            else:
                cluster.start(name, host=host, recovery=True)
            return {"domain": name, "host": host}

        if self._run_job is None:
            work()
        else:
            self._run_job("cluster-recover", f"domain/{name}", work)
