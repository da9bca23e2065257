"""What the daemon's parts share: the embedded API connection, the event bus, the state paths,
and the start-up/shut-down work the features register.

Route handlers reach it with ``daemon_of(request)``. Handlers are plain ``def`` functions: the
API is synchronous (file locks, subprocesses), so FastAPI runs them in its thread pool, and
the per-object ``flock`` locks serialize them exactly as they serialize CLI processes.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from starlette.requests import HTTPConnection

import pyvirt.api
from pyvirt.daemon.bus import Event, EventBus
from pyvirt.daemon.jobs import JobRegistry
from pyvirt.state.paths import StatePaths

__all__ = ["Daemon", "DaemonConfig", "daemon_of"]

#: cluster events a daemon keeps for the web console's Cluster page
CLUSTER_EVENTS = 100


@dataclass
class DaemonConfig:
    """pyvirtd's settings (command line over ``CONFIG/daemon/pyvirtd.toml``)."""

    paths: StatePaths
    #: ``HOST:PORT`` of the TLS listener, or None (unix socket only)
    listen_tcp: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    #: CA file: TLS clients presenting a certificate signed by it are authenticated by it
    tls_client_ca: str | None = None
    #: extra DNS names/addresses of the self-signed certificate (``tls_names`` in the file)
    tls_names: tuple[str, ...] = ()
    #: start autostart networks, pools and domains when the daemon starts (``pyvirtd`` turns
    #: it on unless ``--no-autostart``; off here so that an app built in a test or a script
    #: never brings up the host's default network by surprise)
    autostart: bool = False
    #: largest accepted request body, bytes
    max_body: int = 4 * 1024 * 1024


@dataclass
class Daemon:
    """The running daemon's shared objects."""

    config: DaemonConfig
    conn: pyvirt.api.Connection
    bus: EventBus = field(default_factory=EventBus)
    #: long operations (clones, uploads, wipes): progress, cancel, results
    jobs: JobRegistry = field(init=False)
    #: coroutines run once the server's event loop runs, in order (the supervisor, autostart)
    on_startup: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: coroutines run when the daemon stops, in reverse order
    on_shutdown: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: the heartbeat of this host's cluster membership (routes/cluster.py; issue 16)
    cluster_agent: object | None = None
    #: the last cluster events (``cluster`` kind), for ``GET /api/v1/cluster/events``
    cluster_events: deque[Event] = field(default_factory=lambda: deque(maxlen=CLUSTER_EVENTS))

    def __post_init__(self) -> None:
        self.jobs = JobRegistry(self.bus.publish)

    @property
    def paths(self) -> StatePaths:
        """The state directory this daemon serves."""
        return self.config.paths


def daemon_of(conn: HTTPConnection) -> Daemon:
    """The :class:`Daemon` serving a request or WebSocket."""
    daemon = conn.app.state.daemon
    assert isinstance(daemon, Daemon)
    return daemon
