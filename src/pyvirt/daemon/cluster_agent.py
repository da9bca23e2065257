"""pyvirtd's part in a cluster (issue 16): at start-up, when this host is a member, the
heartbeat that keeps its etcd lease alive, the fencer and watchdog, and the recovery manager
(:class:`pyvirt.api.cluster.ClusterAgent`). A host outside any cluster pays one ``stat``: the
cluster code is imported only for a member (or when ``/api/v1/cluster`` is first used).

The cluster's changes are events of kind ``cluster`` on the daemon's event stream (the last
:data:`~pyvirt.daemon.context.CLUSTER_EVENTS` are kept for ``GET /api/v1/cluster/events``):

- ``host`` events: ``Up``/``Down`` of this host's own lease (from its heartbeat), and
  ``Joined``, ``Left``, ``Down``, ``Up``, ``Maintenance``, ``Restored`` of the other hosts, as
  the recovery thread sees them in etcd once per renewal interval;
- ``domain`` events: ``Claimed``/``Released`` (its owner changed, seen in etcd), ``Fenced`` (on
  the host that killed it: by pyvirtd's fence timer, or by the watchdog while pyvirtd was not
  running, reported when it runs again), ``Recovering``, ``Recovered``, ``RecoveryFailed`` (on
  the leader). A recovery's start is a ``cluster-recover`` job.
- ``host`` events ``Evacuating`` (its percent done) and ``Evacuated`` (what moved), from the
  daemon running ``cluster evacuate``.

``Fenced``, the recovery events and the evacuation's are cluster-wide: every member's stream
shows them (:mod:`pyvirt.service.cluster.events`, relayed through etcd and watched), those of
another host with its name in the data's ``origin``.

A daemon that stops leaves its lease to expire (it is not revoked: the host's guests keep
running, and a daemon restarted within the TTL goes on with the same lease).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyvirt.daemon.context import Daemon
from pyvirt.errors import OperationFailedError

if TYPE_CHECKING:
    from pyvirt.api.cluster import ClusterAgent

__all__ = ["agent_of", "announce", "publish", "setup"]

log = logging.getLogger("pyvirtd.cluster")

# lazy: the cluster code (etcd's client, the membership records) loads only on a member


def publish(daemon: Daemon, obj: str, name: str, event: str, detail: str = "",
            **data: Any) -> None:  # fmt: skip
    """Publish a ``cluster`` event and keep it among the recent ones; from any thread."""
    daemon.cluster_events.append(daemon.bus.publish("cluster", obj, name, event, detail, **data))


def announce(daemon: Daemon, obj: str, name: str, event: str, detail: str = "",
             **data: Any) -> None:  # fmt: skip
    """Publish a ``cluster`` event here and on every other member's event stream."""
    publish(daemon, obj, name, event, detail, **data)
    if daemon.cluster_agent is not None:
        agent_of(daemon).announce(obj, name, event, detail, data)


def _run_job(daemon: Daemon, kind: str, obj: str, work: Callable[[], object]) -> None:
    """Run *work* as a daemon job and wait for it; its error is raised again."""
    registry = daemon.jobs
    job = registry.start(kind, obj, lambda _job: work(), unit="percent", total=100)
    job = registry.wait(job.id)
    if job.state != "completed":
        error = job.error or {}
        raise OperationFailedError(
            str(error.get("error") or f"job {job.id} {job.state}"),
            hint=error.get("hint") or f"see 'pyvirt job {job.id}'",
        )


def agent_of(daemon: Daemon) -> ClusterAgent:
    """The daemon's cluster agent (made on first use; :meth:`ClusterAgent.reload` starts it)."""
    from pyvirt.api.cluster import ClusterAgent  # lazy

    if daemon.cluster_agent is None:

        def here() -> str:
            config = daemon.conn.cluster.membership()
            return config.host if config is not None else ""

        def host_event(state: str) -> None:
            name = here()
            up = state == "up"
            publish(daemon, "host", name, "Up" if up else "Down",
                    "this host's lease is alive" if up else "this host cannot renew its lease",
                    host=name, state=state)  # fmt: skip

        def domain_event(event: str, name: str, detail: str) -> None:
            publish(daemon, "domain", name, event, detail, domain=name, host=here())

        def watch_event(obj: str, name: str, event: str, detail: str,
                        data: dict[str, Any]) -> None:  # fmt: skip
            publish(daemon, obj, name, event, detail, **data)

        def run_job(kind: str, obj: str, work: Callable[[], object]) -> None:
            _run_job(daemon, kind, obj, work)

        cfg = daemon.config  # the TLS listener's certificate ('' : the self-signed one)
        tls_cert = (cfg.tls_cert or "") if cfg.listen_tcp else None
        daemon.cluster_agent = daemon.conn.cluster.agent(
            host_event, domain_event, on_watch=watch_event, run_job=run_job, tls_cert=tls_cert,
            on_remote=watch_event,
        )  # fmt: skip
    assert isinstance(daemon.cluster_agent, ClusterAgent)
    return daemon.cluster_agent


def setup(daemon: Daemon) -> None:
    """Start the cluster work when the daemon starts, if this host is in a cluster."""
    membership = daemon.paths.cluster_membership

    async def start() -> None:
        if not membership.exists():
            return
        try:
            await asyncio.to_thread(agent_of(daemon).reload)
        except Exception as err:  # a broken membership file must not stop the daemon
            log.error("cluster: cannot take part in the cluster: %s", err)

    async def stop() -> None:
        if daemon.cluster_agent is not None:
            await asyncio.to_thread(agent_of(daemon).stop, revoke=False)

    daemon.on_startup.append(start)
    daemon.on_shutdown.append(stop)
