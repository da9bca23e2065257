"""The one check every local start makes: is this host in a cluster? Costs a ``stat`` when
it is not; otherwise :func:`pyvirt.service.cluster.domains.claim_for_start` decides."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.service.cluster.config import config_path

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection

# lazy: the cluster's domain code (and etcd's client) loads only on a cluster member


def before_start(conn: Connection, name: str) -> None:
    """Claim cluster domain *name* for this host before it starts here (see
    :func:`~pyvirt.service.cluster.domains.claim_for_start`); nothing outside a cluster.

    :raises InvalidStateError: another host owns it, or this host holds no live lease
    """
    if not config_path(conn.paths).exists():
        return
    from pyvirt.service.cluster.domains import claim_for_start  # lazy

    claim_for_start(conn, name)
