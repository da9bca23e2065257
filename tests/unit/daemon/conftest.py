"""A real pyvirtd application on a temporary state root, in this process (no QEMU)."""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import pyvirt.api
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.server import bind_unix
from pyvirt.state.paths import StatePaths


@dataclass
class Served:
    """A daemon serving ``root``'s state on ``sock``; ``events`` records what it published."""

    root: Path
    sock: Path
    daemon: Daemon
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def uri(self) -> str:
        return f"pyvirt+unix://{self.sock}"


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """pyvirtd's app on a unix socket under a fresh state root, in a thread."""
    root = Path(tempfile.mkdtemp(prefix="pvd", dir="/tmp"))
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(root))
    paths = StatePaths.from_root(root)
    daemon = Daemon(DaemonConfig(paths), pyvirt.api.open(f"pyvirt:///embed?root={root}"))
    out = Served(root, paths.daemon_socket, daemon)
    real_publish = daemon.bus.publish

    def publish(kind: str, obj: str, name: str, event: str, detail: str = "", **d: Any) -> Any:
        out.events.append((name, event, detail))
        return real_publish(kind, obj, name, event, detail, **d)

    monkeypatch.setattr(daemon.bus, "publish", publish)
    sock = bind_unix(paths.daemon_socket)
    server = uvicorn.Server(uvicorn.Config(create_app(daemon), log_level="warning",
                                           lifespan="on"))  # fmt: skip
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield out
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        if os.path.exists(out.sock):
            os.unlink(out.sock)
        shutil.rmtree(root, ignore_errors=True)
