"""``/api/v1/cluster``: this host's cluster membership and the cluster's domains (issue 16).
The heartbeat, fencing and recovery run in :mod:`pyvirt.daemon.cluster_agent`.

``init``/``join`` start the heartbeat and answer once the host is ``up``; ``leave`` stops it
and revokes the lease. A daemon that stops leaves its lease to expire (it is not revoked: the
host's guests keep running, and a daemon restarted within the TTL goes on with the same lease).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.cluster import ClusterConfig
from pyvirt.daemon.cluster_agent import agent_of, announce
from pyvirt.daemon.context import Daemon, daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.models import ERRORS
from pyvirt.daemon.routes.jobs import JobAccepted, accepted, owner_of

__all__ = ["router"]

log = logging.getLogger("pyvirtd.cluster")

router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"], responses=ERRORS)

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
_GROUP = r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})?$"


class _Etcd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    etcd: str = Field(
        min_length=1, max_length=4096, description="etcd client URLs, comma-separated"
    )
    host: str | None = Field(None, pattern=_NAME, description="this host's name in the cluster")
    address: str = Field("", max_length=1024, description="this daemon's URI for other hosts")
    etcd_ca: str | None = Field(None, max_length=4096)
    etcd_cert: str | None = Field(None, max_length=4096)
    etcd_key: str | None = Field(None, max_length=4096)
    kernel_watchdog: bool = Field(
        True, description="arm /dev/watchdog (softdog) while HA guests run on this host"
    )
    daemon_hold: float = Field(
        120.0, ge=0, le=3600,
        description="seconds the watchdog holds the lease after pyvirtd is killed or hangs",
    )  # fmt: skip


class InitBody(_Etcd):
    """``cluster init``: a new cluster in etcd with this host as its first member."""

    name: str = Field("pyvirt", pattern=_NAME, description="the cluster's name")
    ttl: int = Field(8, ge=2, le=300, description="seconds of a host's lease")
    renew: float = Field(1.0, gt=0, le=100, description="seconds between renewals")


class JoinBody(_Etcd):
    """``cluster join``: join the cluster in etcd."""


def _started(daemon: Daemon, config: ClusterConfig) -> dict[str, Any]:
    agent = agent_of(daemon)
    agent.reload()
    if not agent.wait_up(10.0):
        log.warning("cluster: host %s joined but its lease is not up yet", config.host)
    return config.to_json()


@router.get("/membership")
def membership(request: Request) -> dict[str, Any] | None:
    """This host's membership file, or null when it is not in a cluster."""
    config = daemon_of(request).conn.cluster.membership()
    return config.to_json() if config is not None else None


@router.post("/init")
def init(request: Request, body: InitBody) -> dict[str, Any]:
    """Create a cluster in etcd with this host as its first member; the heartbeat starts."""
    daemon = daemon_of(request)
    config = daemon.conn.cluster.init(
        body.etcd,
        name=body.name,
        host=body.host,
        address=body.address,
        ttl=body.ttl,
        renew=body.renew,
        etcd_ca=body.etcd_ca,
        etcd_cert=body.etcd_cert,
        etcd_key=body.etcd_key,
        kernel_watchdog=body.kernel_watchdog,
        daemon_hold=body.daemon_hold,
    )
    return _started(daemon, config)


@router.post("/join")
def join(request: Request, body: JoinBody) -> dict[str, Any]:
    """Join the cluster in etcd; the heartbeat starts."""
    daemon = daemon_of(request)
    config = daemon.conn.cluster.join(
        body.etcd,
        host=body.host,
        address=body.address,
        etcd_ca=body.etcd_ca,
        etcd_cert=body.etcd_cert,
        etcd_key=body.etcd_key,
        kernel_watchdog=body.kernel_watchdog,
        daemon_hold=body.daemon_hold,
    )
    return _started(daemon, config)


@router.post("/leave", status_code=204)
def leave(request: Request, force: bool = False) -> None:
    """Leave the cluster: the heartbeat stops and the lease is revoked."""
    daemon = daemon_of(request)
    daemon.conn.cluster.leave(force=force)
    agent_of(daemon).reload()


@router.get("/hosts")
def hosts(request: Request) -> list[dict[str, Any]]:
    """The cluster's hosts with their state."""
    return [h.to_json() for h in daemon_of(request).conn.cluster.hosts()]


@router.get("/events")
def events(request: Request) -> list[dict[str, Any]]:
    """The last cluster events this daemon published (oldest first; the event stream's
    ``cluster`` kind has the new ones)."""
    return [ev.to_json() for ev in list(daemon_of(request).cluster_events)]


@router.get("/status")
def status(request: Request) -> dict[str, Any]:
    """The cluster, its etcd members and hosts, as this host sees them."""
    return daemon_of(request).conn.cluster.status().to_json()


# cluster domains -----------------------------------------------------------------------------


class DefineBody(BaseModel):
    """``cluster define``: a domain for the whole cluster."""

    model_config = ConfigDict(extra="forbid")

    xml: str = Field(min_length=1, max_length=1024 * 1024, description="the domain XML")
    ha: bool = Field(False, description="restart it on another host when its host dies")
    affinity: str = Field("", pattern=_GROUP, description="its affinity group")
    anti_affinity: str = Field("", pattern=_GROUP, description="its anti-affinity group")
    soft: bool = Field(False, description="its groups are preferences, not rules")


class StartBody(BaseModel):
    """``cluster start``: where to start it (placement decides when absent)."""

    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, pattern=_NAME)
    #: the leader's restart of an HA domain: a failed start gives the ownership back
    recovery: bool = False


@router.get("/domains")
def list_domains(request: Request) -> list[dict[str, Any]]:
    """The cluster's domains with their owners."""
    return [d.to_json() for d in daemon_of(request).conn.cluster.domains()]


@router.post("/domains", status_code=201)
def define(request: Request, body: DefineBody) -> dict[str, Any]:
    """Define a domain for the whole cluster."""
    d = daemon_of(request).conn.cluster.define(
        body.xml, ha=body.ha, affinity=body.affinity, anti_affinity=body.anti_affinity,
        soft=body.soft,
    )  # fmt: skip
    return {"name": d.name, "uuid": d.uuid, "ha": d.ha, "memory_kib": d.memory_kib,
            "vcpus": d.vcpus, "defined": d.defined, "affinity": d.affinity,
            "anti_affinity": d.anti_affinity, "soft": d.soft}  # fmt: skip


@router.delete("/domains/{name}", status_code=204)
def undefine(request: Request, name: str) -> None:
    """Remove a cluster domain (refused while a host owns it)."""
    daemon_of(request).conn.cluster.undefine(name)


@router.get("/domains/{name}/placement")
def placement(request: Request, name: str) -> dict[str, Any]:
    """Where the domain would start now, and every host considered."""
    p = daemon_of(request).conn.cluster.place(name)
    return {
        "host": p.host,
        "candidates": [
            {"host": c.host, "fits": c.fits, "score": c.score, "why": c.why} for c in p.candidates
        ],
    }


@router.post("/domains/{name}/start")
def start(request: Request, name: str, body: StartBody | None = None) -> dict[str, str]:
    """Start the domain on the given host or where placement puts it; the host."""
    body = body or StartBody(host=None)
    host = daemon_of(request).conn.cluster.start(name, host=body.host, recovery=body.recovery)
    return {"host": host}


@router.post("/domains/{name}/run-here", status_code=204)
def run_here(request: Request, name: str, recovery: bool = False) -> None:
    """Define the domain here as the cluster has it and start it here (*recovery*: the
    leader's restart of an HA domain; a failed start gives the ownership back)."""
    daemon_of(request).conn.cluster.run_here(name, recovery=recovery)


@router.post("/domains/{name}/release")
def release(request: Request, name: str) -> dict[str, bool]:
    """Give up this host's ownership of the (shut-off) domain."""
    return {"released": daemon_of(request).conn.cluster.release(name)}


# maintenance ---------------------------------------------------------------------------------


def _job(request: Request, kind: str, host: str, work: Any) -> JSONResponse:
    reg = registry_of(daemon_of(request))
    job = reg.start(kind, f"host/{host}", work, owner=owner_of(request), unit="percent")
    return accepted(job)


@router.post("/hosts/{host}/evacuate", status_code=202, response_model=JobAccepted)
def evacuate(request: Request, host: str = Path(pattern=_NAME)) -> JSONResponse:
    """Put the host in maintenance and move its cluster domains off it (a job; its result
    says what happened to each domain)."""
    daemon = daemon_of(request)
    cluster = daemon.conn.cluster

    def work(job: Job) -> Any:
        said = [-1]

        def progress(done: int, total: int) -> None:
            job.report(done, total)
            quarter = 100 * done // max(1, total) // 25
            if quarter > said[0]:  # every member's stream: at 0, 25, 50, 75 and 100 %
                said[0] = quarter
                announce(daemon, "host", host, "Evacuating", f"{quarter * 25} %", host=host,
                         percent=quarter * 25)  # fmt: skip

        progress(0, 100)
        report = cluster.evacuate(host, progress=progress, cancel=job.token)
        moved = len(report.domains) - len(report.failed)
        announce(daemon, "host", host, "Evacuated",
                 f"{moved} moved, {len(report.failed)} failed", host=host,
                 moved=moved, failed=len(report.failed))  # fmt: skip
        return report.to_json()

    return _job(request, "cluster-evacuate", host, work)


@router.post("/hosts/{host}/restore", status_code=202, response_model=JobAccepted)
def restore(request: Request, host: str = Path(pattern=_NAME)) -> JSONResponse:
    """End the host's maintenance (a job; no guest moves back by itself)."""
    cluster = daemon_of(request).conn.cluster

    def work(job: Job) -> Any:
        return {"host": host, "restored": cluster.restore(host)}

    return _job(request, "cluster-restore", host, work)


# cluster networks and shared pools -----------------------------------------------------------


class ResourceBody(BaseModel):
    """``cluster net-define`` / ``pool-define``: a network or shared pool for every host."""

    model_config = ConfigDict(extra="forbid")

    xml: str = Field(min_length=1, max_length=1024 * 1024, description="the network/pool XML")
    autostart: bool = Field(False, description="start it on every host")


@router.get("/resources")
def list_resources(request: Request) -> list[dict[str, Any]]:
    """The cluster's networks and shared pools."""
    return [r.to_json() for r in daemon_of(request).conn.cluster.resources()]


@router.post("/networks", status_code=201)
def define_network(request: Request, body: ResourceBody) -> dict[str, Any]:
    """Define a network on every host of the cluster."""
    return (
        daemon_of(request)
        .conn.cluster.resource_define("network", body.xml, autostart=body.autostart)
        .to_json()
    )


@router.delete("/networks/{name}", status_code=204)
def undefine_network(request: Request, name: str) -> None:
    """Remove a cluster network (refused while a domain uses it)."""
    daemon_of(request).conn.cluster.resource_undefine("network", name)


@router.post("/pools", status_code=201)
def define_pool(request: Request, body: ResourceBody) -> dict[str, Any]:
    """Define a shared pool on every host of the cluster."""
    return (
        daemon_of(request)
        .conn.cluster.resource_define("pool", body.xml, autostart=body.autostart)
        .to_json()
    )


@router.delete("/pools/{name}", status_code=204)
def undefine_pool(request: Request, name: str) -> None:
    """Remove a cluster pool (refused while a domain uses it)."""
    daemon_of(request).conn.cluster.resource_undefine("pool", name)
