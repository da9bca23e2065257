"""The cluster this host belongs to (issue 16): ``conn.cluster``.

A cluster is opt-in: a host without a membership file (``pyvirt cluster init`` / ``join``
writes it) works alone, as before. The cluster's shared state lives in etcd
(:mod:`pyvirt.service.cluster`); pyvirtd keeps the host's lease alive (:class:`ClusterAgent`),
so a host is shown ``up`` only while its daemon runs.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from pyvirt.service.cluster.config import DEFAULT_RENEW, DEFAULT_TTL, ClusterConfig
from pyvirt.service.cluster.domains import ClusterDomain, DomainPlacementInfo
from pyvirt.service.cluster.membership import (
    ClusterRecord,
    ClusterStatus,
    EtcdMemberStatus,
    HostStatus,
)
from pyvirt.service.cluster.placement import Candidate, Placement
from pyvirt.service.cluster.records import HostRecord, Liveness

if TYPE_CHECKING:
    from pyvirt.service.cluster.heartbeat import Heartbeat
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = [
    "Candidate",
    "Cluster",
    "ClusterAgent",
    "ClusterConfig",
    "ClusterDomain",
    "ClusterRecord",
    "ClusterStatus",
    "DomainPlacementInfo",
    "EtcdMemberStatus",
    "HostRecord",
    "HostStatus",
    "Liveness",
    "Placement",
]


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
        from pyvirt.service.cluster.membership import cluster_status  # lazy

        return cluster_status(self._service)

    # cluster domains -----------------------------------------------------------------------

    def define(self, xml: str | bytes, *, ha: bool = False) -> ClusterDomain:
        """Define a domain for the whole cluster (no host owns it until it starts).

        :raises AlreadyExistsError: the cluster has a domain of that name
        """
        from pyvirt.service.cluster import domains  # lazy

        return domains.define(self._service, xml, ha=ha)

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
        from pyvirt.service.cluster.membership import list_hosts, open_etcd, require_config

        config = require_config(self._service)
        etcd = open_etcd(config)
        try:
            record = domains.get(etcd, name, cluster=config.cluster)
            return placement.place(list_hosts(etcd), record.memory_kib, avoid=avoid or ())
        finally:
            etcd.close()

    def start(self, name: str, *, host: str | None = None) -> str:
        """Start cluster domain *name* on *host*, or on the host placement picks; the host.

        The chosen host's pyvirtd defines the domain there as the cluster has it, claims its
        ownership and starts it; another host owning it refuses.

        :raises InvalidStateError: another host owns it, or no host fits
        """
        from pyvirt.service.cluster.membership import hosts, require_config  # lazy

        config = require_config(self._service)
        target = host or self.place(name).host
        if target == config.host:
            self.run_here(name)
            return target
        known = {h.name: h for h in hosts(self._service)}
        if target not in known:
            from pyvirt.errors import NotFoundError  # lazy

            raise NotFoundError(
                f"cluster has no host named {target!r}", hint="see 'pyvirt cluster list'"
            )
        address = known[target].record.address
        if not address:
            from pyvirt.errors import UnsupportedError  # lazy

            raise UnsupportedError(
                f"cluster host {target!r} published no address for its pyvirtd",
                hint="join it with --address URI (its pyvirt+tls:// or pyvirt+unix:// URI)",
            )
        import pyvirt.api  # lazy

        pyvirt.api.open(address).cluster.run_here(name)
        return target

    def run_here(self, name: str) -> None:
        """Define cluster domain *name* on this host as the cluster has it and start it here
        (ownership is claimed by the start)."""
        from pyvirt.service.cluster import domains  # lazy

        domains.adopt(self._service, name)
        from pyvirt.api.domain import Domain  # lazy

        Domain(self._service, name).start()

    def release(self, name: str) -> bool:
        """Give up this host's ownership of a shut-off cluster domain; whether it was ours."""
        from pyvirt.service.cluster import domains  # lazy

        return domains.release(self._service, name)

    def agent(self, on_change: Callable[[str], None] | None = None) -> ClusterAgent:
        """The heartbeat keeper for pyvirtd (call :meth:`ClusterAgent.reload` to start it)."""
        return ClusterAgent(self._service, on_change)


class ClusterAgent:
    """pyvirtd's part in the cluster: keeps this host's lease alive while the daemon runs.

    :param service: the daemon's embedded service connection
    :param on_change: called with ``"up"``/``"down"`` when the host's lease state changes
    """

    def __init__(
        self, service: ServiceConnection, on_change: Callable[[str], None] | None = None
    ) -> None:
        self._service = service
        self._on_change = on_change
        self._heartbeat: Heartbeat | None = None

    @property
    def state(self) -> str:
        """``up``, ``down`` or ``none`` (not in a cluster)."""
        return self._heartbeat.state if self._heartbeat is not None else "none"

    def reload(self) -> None:
        """Start, restart or stop the heartbeat as the membership file now says."""
        from pyvirt.service.cluster.config import read_config  # lazy
        from pyvirt.service.cluster.heartbeat import Heartbeat  # lazy
        from pyvirt.service.cluster.membership import open_etcd  # lazy

        config = read_config(self._service.paths)
        if self._heartbeat is not None and config == self._heartbeat.config:
            return
        self.stop(revoke=config is None)
        if config is not None:
            self._heartbeat = Heartbeat(
                open_etcd(config),
                config,
                on_change=self._on_change,
                host_root=self._service.host.host_root,
                lease_file=self._service.paths.run / "cluster-lease",
            )
            self._heartbeat.start()

    def wait_up(self, timeout: float = 5.0) -> bool:
        """Wait until the host's lease is alive (after :meth:`reload`); whether it is."""
        return self._heartbeat.wait_up(timeout) if self._heartbeat is not None else False

    def stop(self, *, revoke: bool = True) -> None:
        """Stop the heartbeat (revoking the lease: the host shows ``down`` at once)."""
        if self._heartbeat is not None:
            self._heartbeat.stop(revoke=revoke)
            self._heartbeat.etcd.close()
            self._heartbeat = None
