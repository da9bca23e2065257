"""An in-process pyvirtd for tests: the real application and uvicorn server on a real unix
socket, in a thread, so a test can publish on its bus directly (as the REST handlers do from
their thread pool) and look at its listeners."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

import pyvirt.api
from pyvirt.client.transport import Client
from pyvirt.client.uri import Target
from pyvirt.daemon.app import create_app
from pyvirt.daemon.bus import EventBus
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.server import DaemonServer, bind_unix
from pyvirt.state.paths import StatePaths


class InProcessDaemon:
    """``with InProcessDaemon(root) as d:`` serves ``d.socket`` until the block ends."""

    def __init__(self, root: Path, queue_size: int = 1000) -> None:
        paths = StatePaths.from_root(root)
        conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
        self.daemon = Daemon(DaemonConfig(paths), conn, bus=EventBus(queue_size))
        self.socket = paths.daemon_socket
        self.target = Target("unix", f"pyvirt+unix://{self.socket}", self.socket)
        config = uvicorn.Config(create_app(self.daemon), log_level="warning", lifespan="on")
        self.server = DaemonServer(config, self.daemon)
        self._thread: threading.Thread | None = None
        self._own = 0

    @property
    def bus(self) -> EventBus:
        return self.daemon.bus

    def client(self) -> Client:
        return Client.for_target(self.target)

    def wait_listeners(self, count: int, timeout: float = 5.0) -> None:
        """Wait for ``count`` stream listeners (the daemon's own, e.g. the supervisor's, not
        counted)."""
        deadline = time.monotonic() + timeout
        while (seen := self.bus.listeners - self._own) != count:
            assert time.monotonic() < deadline, f"{seen} listeners, not {count}"
            time.sleep(0.01)

    def __enter__(self) -> InProcessDaemon:
        sock = bind_unix(self.socket)
        self._thread = threading.Thread(
            target=asyncio.run, args=(self.server.serve(sockets=[sock]),), daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the in-process pyvirtd did not start"
            time.sleep(0.01)
        self._own = self.bus.listeners
        return self

    def stop(self, timeout: float = 10.0) -> float:
        """Stop the server; the seconds it took."""
        t0 = time.monotonic()
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            assert not self._thread.is_alive(), "the in-process pyvirtd did not stop"
        return time.monotonic() - t0

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
