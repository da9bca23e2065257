"""The cluster through a pyvirtd: :class:`RemoteCluster`, the same results as
:mod:`pyvirt.api.cluster`. The daemon starts or stops its heartbeat as the membership changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyvirt.api.cluster import (
    Candidate,
    Cluster,
    ClusterConfig,
    ClusterDomain,
    ClusterResource,
    ClusterStatus,
    DomainPlacementInfo,
    HostStatus,
    Placement,
)
from pyvirt.api.cluster_evacuate import EvacuationReport
from pyvirt.api.remote._resources import path
from pyvirt.service.cluster.status import status_from_json  # the modules api.cluster loads

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.progress import CancelToken, Progress

__all__ = ["RemoteCluster"]

# lazy: the job-waiting code loads only for evacuate and restore


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
        ttl: int = 8,
        renew: float = 1.0,
        etcd_ca: str | None = None,
        etcd_cert: str | None = None,
        etcd_key: str | None = None,
        kernel_watchdog: bool = True,
        daemon_hold: float = 120.0,
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
            "kernel_watchdog": kernel_watchdog,
            "daemon_hold": daemon_hold,
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
        kernel_watchdog: bool = True,
        daemon_hold: float = 120.0,
    ) -> ClusterConfig:
        """``cluster join`` on the daemon's host."""
        body = {
            "etcd": etcd if isinstance(etcd, str) else ",".join(etcd),
            "host": host,
            "address": address,
            "etcd_ca": etcd_ca,
            "etcd_cert": etcd_cert,
            "etcd_key": etcd_key,
            "kernel_watchdog": kernel_watchdog,
            "daemon_hold": daemon_hold,
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
        return status_from_json(self._client.json("GET", path("cluster", "status")))

    def define(
        self,
        xml: str | bytes,
        *,
        ha: bool = False,
        affinity: str = "",
        anti_affinity: str = "",
        soft: bool = False,
    ) -> ClusterDomain:
        """``cluster define`` through the daemon."""
        text = xml.decode() if isinstance(xml, bytes) else xml
        body: dict[str, Any] = {"xml": text, "ha": ha}
        if affinity:
            body["affinity"] = affinity
        if anti_affinity:
            body["anti_affinity"] = anti_affinity
        if soft:
            body["soft"] = True
        d = self._client.json("POST", path("cluster", "domains"), body)
        return ClusterDomain(d["name"], d["uuid"], text, d["ha"], d["memory_kib"], d["vcpus"],
                             d["defined"], d.get("affinity", ""),
                             d.get("anti_affinity", ""), bool(d.get("soft", False)))  # fmt: skip

    def undefine(self, name: str) -> None:
        """``cluster undefine`` through the daemon."""
        self._client.request("DELETE", path("cluster", "domains", name))

    def domains(self) -> list[DomainPlacementInfo]:
        """``cluster domains`` through the daemon (records without their XML)."""
        data = self._client.json("GET", path("cluster", "domains"))
        return [DomainPlacementInfo.from_json(d) for d in data]

    def place(self, name: str, *, avoid: list[str] | None = None) -> Placement:
        """``cluster place`` through the daemon."""
        data = self._client.json("GET", path("cluster", "domains", name, "placement"))
        return Placement(data["host"], tuple(Candidate(**c) for c in data["candidates"]))

    def start(self, name: str, *, host: str | None = None, recovery: bool = False) -> str:
        """``cluster start`` through the daemon; the host it started on."""
        body: dict[str, object] = {"host": host} if host else {}
        if recovery:
            body["recovery"] = True
        return str(
            self._client.json("POST", path("cluster", "domains", name, "start"), body)["host"]
        )

    def run_here(self, name: str, *, recovery: bool = False) -> None:
        """Define and start the domain on the daemon's host (a *recovery*'s failed start
        gives the ownership back)."""
        where = path("cluster", "domains", name, "run-here")
        self._client.request("POST", where + ("?recovery=true" if recovery else ""))

    def release(self, name: str) -> bool:
        """Give up the daemon host's ownership of the domain."""
        return bool(
            self._client.json("POST", path("cluster", "domains", name, "release"))["released"]
        )

    def evacuate(
        self,
        host: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> EvacuationReport:
        """``cluster evacuate`` as the daemon's job (waited for, with its progress)."""
        doc = self._client.json("POST", path("cluster", "hosts", host, "evacuate"))
        return EvacuationReport.from_json(self._wait(doc, progress, cancel))

    def restore(self, host: str) -> bool:
        """``cluster restore`` as the daemon's job."""
        doc = self._client.json("POST", path("cluster", "hosts", host, "restore"))
        return bool(self._wait(doc, None, None)["restored"])

    def _wait(
        self, doc: dict[str, Any], progress: Progress | None, cancel: CancelToken | None
    ) -> Any:
        from pyvirt.api.remote.jobs import JobInfo, wait_for  # lazy

        job = wait_for(self._client, JobInfo.from_json(doc["job"]), progress=progress,
                       cancel=cancel)  # fmt: skip
        return job.result

    def resource_define(self, kind: str, xml: str | bytes, *, autostart: bool = False
                        ) -> ClusterResource:  # fmt: skip
        """``cluster net-define`` / ``pool-define`` through the daemon."""
        text = xml.decode() if isinstance(xml, bytes) else xml
        where = path("cluster", "networks" if kind == "network" else "pools")
        d = self._client.json("POST", where, {"xml": text, "autostart": autostart})
        return ClusterResource(**{**d, "xml": text})

    def resource_undefine(self, kind: str, name: str) -> None:
        """``cluster net-undefine`` / ``pool-undefine`` through the daemon."""
        where = path("cluster", "networks" if kind == "network" else "pools", name)
        self._client.request("DELETE", where)

    def resources(self) -> list[ClusterResource]:
        """``cluster resources`` through the daemon (records without their XML)."""
        return [
            ClusterResource(**{**d, "xml": ""})
            for d in self._client.json("GET", path("cluster", "resources"))
        ]
