"""pyvirtd's part in a cluster (issue 16): at start-up, when this host is a member, the
heartbeat that keeps its etcd lease alive, the fencer and watchdog, and the recovery manager
(:class:`pyvirt.api.cluster.ClusterAgent`). A host outside any cluster pays one ``stat``: the
cluster code is imported only for a member (or when ``/api/v1/cluster`` is first used).

A daemon that stops leaves its lease to expire (it is not revoked: the host's guests keep
running, and a daemon restarted within the TTL goes on with the same lease).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pyvirt.daemon.context import Daemon

if TYPE_CHECKING:
    from pyvirt.api.cluster import ClusterAgent

__all__ = ["agent_of", "setup"]

log = logging.getLogger("pyvirtd.cluster")

# lazy: the cluster code (etcd's client, the membership records) loads only on a member


def agent_of(daemon: Daemon) -> ClusterAgent:
    """The daemon's cluster agent (made on first use; :meth:`ClusterAgent.reload` starts it)."""
    from pyvirt.api.cluster import ClusterAgent  # lazy

    if daemon.cluster_agent is None:

        def host_event(state: str) -> None:
            config = daemon.conn.cluster.membership()
            name = config.host if config is not None else ""
            daemon.bus.publish("cluster", "host", name, "Up" if state == "up" else "Down")

        def domain_event(event: str, name: str, detail: str) -> None:
            daemon.bus.publish("cluster", "domain", name, event, detail)

        daemon.cluster_agent = daemon.conn.cluster.agent(host_event, domain_event)
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
