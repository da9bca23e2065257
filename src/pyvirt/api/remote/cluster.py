"""The cluster through a pyvirtd: :class:`RemoteCluster`, the same results as
:mod:`pyvirt.api.cluster`. The daemon starts or stops its heartbeat as the membership changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyvirt.api.cluster import Cluster, ClusterConfig, ClusterStatus, HostStatus
from pyvirt.api.remote._resources import path

if TYPE_CHECKING:
    from pyvirt.client.transport import Client

__all__ = ["RemoteCluster"]


def _config(data: dict[str, Any]) -> ClusterConfig:
    return ClusterConfig.from_json(data, source="the daemon's answer")


class RemoteCluster(Cluster):
    """``conn.cluster`` of a remote connection."""

    def __init__(self, client: Client) -> None:
        super().__init__(None)  # type: ignore[arg-type]
        self._client = client

    def membership(self) -> ClusterConfig | None:
        """The daemon host's membership, or ``None``."""
        data = self._client.json("GET", path("cluster", "membership"))
        return _config(data) if data else None

    def init(
        self,
        etcd: str | list[str],
        *,
        name: str = "pyvirt",
        host: str | None = None,
        address: str = "",
        ttl: int = 6,
        renew: float = 1.0,
        etcd_ca: str | None = None,
        etcd_cert: str | None = None,
        etcd_key: str | None = None,
    ) -> ClusterConfig:
        """``cluster init`` on the daemon's host."""
        body = {
            "etcd": etcd if isinstance(etcd, str) else ",".join(etcd),
            "name": name,
            "host": host,
            "address": address,
            "ttl": ttl,
            "renew": renew,
            "etcd_ca": etcd_ca,
            "etcd_cert": etcd_cert,
            "etcd_key": etcd_key,
        }
        return _config(self._client.json("POST", path("cluster", "init"), body))

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
        """``cluster join`` on the daemon's host."""
        body = {
            "etcd": etcd if isinstance(etcd, str) else ",".join(etcd),
            "host": host,
            "address": address,
            "etcd_ca": etcd_ca,
            "etcd_cert": etcd_cert,
            "etcd_key": etcd_key,
        }
        return _config(self._client.json("POST", path("cluster", "join"), body))

    def leave(self, *, force: bool = False) -> None:
        """``cluster leave`` on the daemon's host."""
        self._client.request("POST", path("cluster", "leave") + ("?force=true" if force else ""))

    def hosts(self) -> list[HostStatus]:
        """``cluster list`` as the daemon's host sees it."""
        return [HostStatus.from_json(h) for h in self._client.json("GET", path("cluster", "hosts"))]

    def status(self) -> ClusterStatus:
        """``cluster status`` as the daemon's host sees it."""
        return ClusterStatus.from_json(self._client.json("GET", path("cluster", "status")))
