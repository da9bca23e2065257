"""The remote :class:`~pyvirt.api.connection.Connection`: the same classes, requests to a pyvirtd.

``networks``, ``pools`` (with volumes), ``nodedevs``, ``host``, ``jobs`` and :meth:`events`
are remote too. A remote collection or handle subclasses the embedded one and overrides the
verbs the daemon serves with REST calls (``self._client``, a
:class:`pyvirt.client.transport.Client`). A verb it does not override runs the inherited code
on ``self._service``, which is:

* for the daemon of a state directory on this host (its unix socket): the embedded service of
  that same state directory, opened on first use (:class:`LocalService`); the file locks
  serialize it with the daemon exactly as they serialize two CLIs;
* for any other target (TLS, ssh, a socket of no local state directory): :class:`Unavailable`,
  whose every attribute raises one :class:`~pyvirt.errors.UnsupportedError` naming the verb.

Adding a remote collection is a few lines here, e.g.::

    @cached_property
    def networks(self) -> NetworkCollection:
        from pyvirt.api.remote.networks import RemoteNetworkCollection  # lazy

        return RemoteNetworkCollection(self._service, self._client)
"""

from __future__ import annotations

import inspect
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from pyvirt.api.connection import Connection
from pyvirt.errors import UnsupportedError
from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from collections.abc import Iterable

    from pyvirt.api.remote.cluster import RemoteCluster
    from pyvirt.api.remote.domains import RemoteDomainCollection
    from pyvirt.api.remote.events import EventStream
    from pyvirt.api.remote.host import RemoteHost
    from pyvirt.api.remote.jobs import Jobs
    from pyvirt.api.remote.networks import RemoteNetworkCollection
    from pyvirt.api.remote.nodedevs import RemoteNodeDeviceCollection
    from pyvirt.api.remote.pools import RemotePoolCollection
    from pyvirt.client.transport import Client
    from pyvirt.client.uri import Target
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = ["LocalService", "RemoteConnection", "Unavailable", "local_paths"]

# lazy: function-local imports marked ``# lazy`` keep start-up fast: the embedded service and
# each remote collection load only when used.


class RemoteConnection(Connection):
    """A connection to a pyvirtd; ``domains`` go through its REST API (see the module doc)."""

    def __init__(self, client: Client, service: ServiceConnection) -> None:
        super().__init__(service)
        self._client = client

    @property
    def uri(self) -> str:
        """The URI of the daemon (``pyvirt:///system`` for the local one found by itself)."""
        return self._client.target.uri

    @property
    def client(self) -> Client:
        """The HTTP client of this connection (one keep-alive connection to the daemon)."""
        return self._client

    @cached_property
    def domains(self) -> RemoteDomainCollection:
        """Domains, through the daemon."""
        from pyvirt.api.remote.domains import RemoteDomainCollection  # lazy

        return RemoteDomainCollection(self._service, self._client)

    @property
    def _local(self) -> ServiceConnection | None:
        """The embedded service of a local daemon's state directory (None: another host)."""
        return None if isinstance(self._service, Unavailable) else self._service

    @cached_property
    def networks(self) -> RemoteNetworkCollection:
        """Virtual networks, through the daemon."""
        from pyvirt.api.remote.networks import RemoteNetworkCollection  # lazy

        return RemoteNetworkCollection(self._client, self._local)

    @cached_property
    def pools(self) -> RemotePoolCollection:
        """Storage pools and volumes, through the daemon (clone, upload, download and wipe
        run as the daemon's jobs)."""
        from pyvirt.api.remote.pools import RemotePoolCollection  # lazy

        return RemotePoolCollection(self._client, self._local)

    @cached_property
    def nodedevs(self) -> RemoteNodeDeviceCollection:
        """Host devices of the daemon's host."""
        from pyvirt.api.remote.nodedevs import RemoteNodeDeviceCollection  # lazy

        return RemoteNodeDeviceCollection(self._client, self._local)

    @cached_property
    def host(self) -> RemoteHost:
        """The daemon's host."""
        from pyvirt.api.remote.host import RemoteHost  # lazy

        return RemoteHost(self._client, self._local)

    @cached_property
    def cluster(self) -> RemoteCluster:
        """The daemon host's cluster."""
        from pyvirt.api.remote.cluster import RemoteCluster  # lazy

        return RemoteCluster(self._client)

    @cached_property
    def jobs(self) -> Jobs:
        """The daemon's jobs: list, get, cancel, wait."""
        from pyvirt.api.remote.jobs import Jobs  # lazy

        return Jobs(self._client)

    def events(
        self,
        kinds: Iterable[str] | None = None,
        *,
        domain: str | None = None,
        network: str | None = None,
        pool: str | None = None,
        timeout: float | None = None,
    ) -> EventStream:
        """The daemon's event stream (on its own HTTP connection), filtered as asked."""
        from pyvirt.api.event_values import check_kinds  # lazy
        from pyvirt.api.remote.events import stream  # lazy
        from pyvirt.client.transport import Client  # lazy

        wanted = check_kinds(kinds) if kinds is not None else None
        client = Client.for_target(self._client.target)
        return stream(self._client.target, client=client, kinds=wanted, domain=domain,
                      network=network, pool=pool, timeout=timeout)  # fmt: skip

    def close(self) -> None:
        """Close the HTTP connection (reopened by the next request)."""
        self._client.close()


def local_paths(target: Target) -> StatePaths | None:
    """The state directory of this host whose daemon listens at ``target`` (``None``: the
    target is not a local daemon's unix socket)."""
    if target.kind != "unix" or target.path is None:
        return None
    sock = Path(target.path).absolute()
    candidates = [StatePaths.default()]
    if target.params.get("root"):
        candidates.insert(0, StatePaths.from_root(Path(target.params["root"])))
    if sock.parent.name == "run":  # ROOT/run/pyvirtd.sock: a PYVIRT_STATE_DIR layout
        candidates.append(StatePaths.from_root(sock.parent.parent))
    for paths in candidates:
        if paths.daemon_socket == sock and paths.config.is_dir():
            return paths
    return None


class LocalService:
    """The embedded service of a local daemon's state directory, opened on first use (a
    remote connection that only talks to the daemon never pays for it)."""

    def __init__(self, paths: StatePaths) -> None:
        self._paths = paths
        self._conn: ServiceConnection | None = None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        if self._conn is None:
            from pyvirt.service.connection import Connection as Service  # lazy

            self._conn = Service(self._paths, "pyvirt:///embed")
        return getattr(self._conn, name)


class Unavailable:
    """Stands in for the embedded service on a connection to another host: every attribute
    raises :class:`~pyvirt.errors.UnsupportedError` naming the API verb that needed it."""

    def __init__(self, uri: str) -> None:
        self._uri = uri

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        verb = _api_caller() or name
        raise UnsupportedError(
            f"{verb} is not available over a remote connection yet; run it on the host",
            hint=f"run pyvirt on the host of {self._uri} (or use -c pyvirt:///embed there)",
        )


def _api_caller() -> str | None:
    """``Class.verb()`` of the innermost public API method on the stack (the verb a user
    called), for :class:`Unavailable`'s message."""
    frame = inspect.currentframe()
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        func = frame.f_code.co_name
        if module.startswith("pyvirt.api.") and not func.startswith(("_", "<")):
            owner = frame.f_locals.get("self")
            cls = type(owner).__name__.removeprefix("Remote") if owner is not None else ""
            return f"{cls}.{func}()" if cls else f"{func}()"
        frame = frame.f_back
    return None


def service_for(target: Target) -> ServiceConnection:
    """What inherited (non-overridden) verbs run on for ``target`` (see the module doc)."""
    paths = local_paths(target)
    service: object = LocalService(paths) if paths is not None else Unavailable(target.uri)
    return cast("ServiceConnection", service)
