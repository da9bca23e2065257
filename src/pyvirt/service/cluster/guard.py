"""The one check every local start makes: is this host in a cluster? Costs a ``stat`` when
it is not; otherwise :func:`pyvirt.service.cluster.domains.claim_for_start` decides. A plain
migration's source asks the same (:func:`before_migrate`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.service.cluster.config import config_path

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection
    from pyvirt.state.paths import StatePaths

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


def before_migrate(paths: StatePaths, name: str) -> None:
    """Refuse a plain migration of cluster domain *name* (``migrate``): it would move the
    guest but not its ownership in etcd, and the cluster would take it for running where it
    no longer does (``cluster evacuate`` moves both). Nothing outside a cluster (a ``stat``).

    :raises InvalidStateError: *name* is a cluster domain
    """
    from pyvirt.service.cluster.config import read_config  # lazy

    config = read_config(paths)
    if config is None:
        return
    from pyvirt.errors import InvalidStateError  # lazy
    from pyvirt.service.cluster import keys  # lazy
    from pyvirt.service.cluster.domains import owner_of  # lazy
    from pyvirt.service.cluster.membership import open_etcd  # lazy

    etcd = open_etcd(config)
    try:
        if etcd.get(keys.domain(name)) is None:
            return
        owner = owner_of(etcd, name) or "no host"
    finally:
        etcd.close()
    raise InvalidStateError(
        f"domain {name!r} is a domain of cluster {config.cluster!r} (owned by {owner}): a plain "
        "migrate would not move its ownership",
        hint=f"'pyvirt cluster evacuate {config.host}' moves it with its ownership; or shut "
        f"it down and 'pyvirt cluster start {name} --host HOST'",
    )
