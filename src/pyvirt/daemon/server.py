"""Running the application: the unix socket (0660, root's group), one daemon per state
directory (an exclusive lock), uvicorn as the HTTP server."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import socket
from pathlib import Path

import uvicorn

from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon
from pyvirt.daemon.listeners import listener_config, serve_all
from pyvirt.errors import OperationFailedError

__all__ = ["DaemonServer", "bind_unix", "serve", "single_instance"]

log = logging.getLogger("pyvirtd")


def single_instance(run_dir: Path) -> int:
    """Hold ``RUN/pyvirtd.lock`` for the daemon's life (the fd stays open).

    :raises OperationFailedError: another pyvirtd serves this state directory
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / "pyvirtd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OperationFailedError(
            f"another pyvirtd already serves {run_dir.parent}",
            hint="stop it first, or give this one its own PYVIRT_STATE_DIR",
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def bind_unix(path: Path) -> socket.socket:
    """A listening unix socket at ``path``, mode 0660, group root (a stale one is replaced:
    the caller holds the single-instance lock)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old = os.umask(0o117)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    if os.geteuid() == 0:
        os.chown(path, 0, 0)
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


class DaemonServer(uvicorn.Server):
    """uvicorn's server; when stopping, the event streams are ended first (they never end by
    themselves, and uvicorn waits for every open response before it stops)."""

    def __init__(self, config: uvicorn.Config, daemon: Daemon) -> None:
        super().__init__(config)
        self.daemon = daemon

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.daemon.bus.close()
        await super().shutdown(sockets)


def serve(daemon: Daemon) -> None:
    """Serve until SIGTERM/SIGINT."""
    lock = single_instance(daemon.paths.run)
    sock_path = daemon.paths.daemon_socket
    servers: list[tuple[uvicorn.Server, list[socket.socket]]] = []
    try:
        app = create_app(daemon)
        # the TLS pair and port first: a bad one fails before the unix socket exists
        tls = None
        if daemon.config.listen_tcp:
            from pyvirt.daemon.tls import tls_listener  # lazy: only with a TLS listener

            tls = tls_listener(daemon, app)
        sock = bind_unix(sock_path)
        servers = [(DaemonServer(listener_config(app, "unix", lifespan=True), daemon), [sock])]
        servers += [tls] if tls else []
        log.info("pyvirtd listening on %s", sock_path)
        asyncio.run(serve_all(servers))
    finally:
        for _server, socks in servers[1:]:
            for s in socks:
                s.close()
        with contextlib.suppress(FileNotFoundError):
            sock_path.unlink()
        os.close(lock)
