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
from pyvirt.service.cluster.membership import (
    ClusterRecord,
    ClusterStatus,
    EtcdMemberStatus,
    HostStatus,
)
from pyvirt.service.cluster.records import HostRecord, Liveness

if TYPE_CHECKING:
    from pyvirt.service.cluster.heartbeat import Heartbeat
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = [
    "Cluster",
    "ClusterAgent",
    "ClusterConfig",
    "ClusterRecord",
    "ClusterStatus",
    "EtcdMemberStatus",
    "HostRecord",
    "HostStatus",
    "Liveness",
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
