"""``cluster status``: the membership's view (:func:`.membership.cluster_status`) completed
with the cluster's domains — owner, HA, state — and the HA leader. A module of its own because
:mod:`.domains` builds on :mod:`.membership`."""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

from pyvirt.service.cluster import keys
from pyvirt.service.cluster.domains import DomainPlacementInfo, domain_infos
from pyvirt.service.cluster.membership import (
    ClusterStatus,
    open_etcd,
    require_config,
)
from pyvirt.service.cluster.membership import cluster_status as membership_status

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection

__all__ = ["cluster_status", "status_from_json"]


def cluster_status(conn: Connection) -> ClusterStatus:
    """The cluster as this host sees it: hosts, etcd, domains with owners, the HA leader.

    :raises InvalidStateError: this host is not in a cluster
    :raises EtcdUnavailableError: no etcd member answers
    """
    status = membership_status(conn)
    etcd = open_etcd(require_config(conn))
    try:
        domains = domain_infos(etcd)
        entry = etcd.get(keys.LEADER)
    finally:
        etcd.close()
    leader = str(json.loads(entry.value).get("host", "")) if entry is not None else ""
    return dataclasses.replace(status, domains=domains, leader=leader)


def status_from_json(data: dict[str, Any]) -> ClusterStatus:
    """The status *data* (``ClusterStatus.to_json``'s output) describes, domains included."""
    domains = [DomainPlacementInfo.from_json(d) for d in data.get("domains") or []]
    return dataclasses.replace(ClusterStatus.from_json(data), domains=domains)
