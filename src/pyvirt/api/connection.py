""":class:`Connection`, the root of the public API (``pyvirt.api.open(uri)`` returns one).

Embedded: state lives on this host (:mod:`pyvirt.state.paths`) and no daemon is needed.
Remote (a pyvirtd over a unix socket, TLS or ssh): :mod:`pyvirt.api.remote`, behind the same
classes.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.api.cluster import Cluster
    from pyvirt.api.domains import DomainCollection
    from pyvirt.api.host import Host
    from pyvirt.api.networks import NetworkCollection
    from pyvirt.api.nodedevs import NodeDeviceCollection
    from pyvirt.api.pools import PoolCollection
    from pyvirt.service.connection import Connection as ServiceConnection

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: each collection module
# loads only when used (``pyvirt list`` must not load pools, networks, node devices or host code:
# ~20-70 ms).


class Connection:
    """A connection to one host. Cheap to create; opens nothing eagerly.

    The collections are loaded on first use (function-local imports keep ``pyvirt list``
    from importing storage and network code).
    """

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    @property
    def uri(self) -> str:
        """The URI this connection was opened with (``pyvirt:///embed`` by default)."""
        return self._service.uri

    @property
    def cache_dir(self) -> str:
        """This connection's cache directory (downloads such as fetched install trees)."""
        return str(self._service.paths.cache)

    @cached_property
    def domains(self) -> DomainCollection:
        """Domains (virsh's domain commands)."""
        from pyvirt.api.domains import DomainCollection  # lazy

        return DomainCollection(self._service)

    @cached_property
    def networks(self) -> NetworkCollection:
        """Virtual networks (``net-*``)."""
        from pyvirt.api.networks import NetworkCollection  # lazy

        return NetworkCollection(self._service)

    @cached_property
    def pools(self) -> PoolCollection:
        """Storage pools and their volumes (``pool-*``, ``vol-*``)."""
        from pyvirt.api.pools import PoolCollection  # lazy

        return PoolCollection(self._service)

    @cached_property
    def nodedevs(self) -> NodeDeviceCollection:
        """Host devices (``nodedev-*``)."""
        from pyvirt.api.nodedevs import NodeDeviceCollection  # lazy

        return NodeDeviceCollection(self._service)

    @cached_property
    def host(self) -> Host:
        """The host: versions, capabilities, node statistics, KSM, hugepages, images."""
        from pyvirt.api.host import Host  # lazy

        return Host(self._service)

    @cached_property
    def cluster(self) -> Cluster:
        """The cluster this host belongs to, if any (``cluster-*``; issue 16)."""
        from pyvirt.api.cluster import Cluster  # lazy

        return Cluster(self._service)
