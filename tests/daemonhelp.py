"""Starting pyvirtd in tests, the one way: :func:`pyvirtd` (a real ``python -m pyvirt.daemon``
process; also the ``daemon`` fixture), plus :class:`InProcessDaemon` for the tests that need
to reach inside a running daemon (publish on its bus, count its listeners).

:func:`pyvirtd` runs the daemon on a test's state root with ``--no-autostart`` (unless asked),
optionally inside a network namespace and with a TLS listener on a free loopback port, waits
until ``GET /health`` answers on its unix socket (and the TLS port listens), and in ``finally``
stops it with SIGTERM, then SIGKILL after 10 s. Its output goes to a file next to the state
root (not in it: some tests compare the state root before and after); it is printed when the
block ends, so pytest shows it for a failed test.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import uvicorn

import pyvirt.api
from pyvirt.client.transport import Client, UnixHTTPConnection
from pyvirt.client.uri import Target, resolve
from pyvirt.daemon.app import create_app
from pyvirt.daemon.bus import EventBus
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.server import DaemonServer, bind_unix
from pyvirt.errors import PyvirtError
from pyvirt.state.paths import StatePaths

PYVIRTD = [sys.executable, "-m", "pyvirt.daemon"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Raw:
    """One HTTP answer, errors included (the tests look at 4xx/5xx themselves)."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RunningDaemon:
    """A pyvirtd process on ``root``: started by :func:`pyvirtd`, and again by :meth:`start`
    after :meth:`kill` or :meth:`stop` (same command, same log)."""

    root: Path
    log: Path
    argv: list[str]
    env: dict[str, str]
    #: the TLS listener's port (``--listen-tcp 127.0.0.1:PORT``), or None
    port: int | None = None
    timeout: float = 30.0
    proc: subprocess.Popen[bytes] = field(init=False)

    @property
    def sock(self) -> Path:
        return self.root / "run" / "pyvirtd.sock"

    socket = sock

    @property
    def uri(self) -> str:
        return f"pyvirt+unix://{self.sock}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def cert(self) -> Path:
        """The self-signed TLS certificate the daemon made on its first start."""
        return self.root / "lib" / "daemon" / "server-cert.pem"

    @property
    def audit(self) -> Path:
        return self.root / "log" / "daemon" / "audit.log"

    def start(self) -> None:
        """Run the daemon; return once it answers ``/health`` (and its TLS port listens)."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Run the daemon without waiting for it (then :meth:`wait_ready`)."""
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)  # fmt: skip

    def wait_ready(self) -> None:
        """Wait until the launched daemon answers ``/health`` (and its TLS port listens)."""
        deadline = time.monotonic() + self.timeout
        while not self._ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"pyvirtd exited with {self.proc.returncode}:\n"
                                     f"{self.log_text()}")  # fmt: skip
            if time.monotonic() > deadline:
                raise AssertionError(f"pyvirtd did not answer /health:\n{self.log_text()}")
            time.sleep(0.05)

    def _ready(self) -> bool:
        if not self.sock.exists():
            return False
        # not listening yet (or a stale socket of a killed daemon): the transport's error
        with contextlib.suppress(OSError, http.client.HTTPException, PyvirtError):
            if self.request("GET", "/health", timeout=2).status == 200:
                if self.port is None:
                    return True
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", self.port)) == 0
        return False

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` s; False when SIGKILL was needed."""
        if self.proc.poll() is not None:
            return True
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            return False

    def kill(self) -> None:
        """SIGKILL (``kill -9``): the daemon gets no chance to clean up."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def client(self) -> Client:
        """The project's own transport (raises the daemon's errors as PyvirtError)."""
        return Client.for_target(resolve(self.uri))

    def get(self, path: str) -> Any:
        """``GET path`` decoded from JSON (an error status raises its PyvirtError)."""
        return json.loads(self.client().request("GET", path).body)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | str | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 120.0,
    ) -> Raw:
        """One request on a fresh connection; never raises for an HTTP error status."""
        hdrs = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
            hdrs.setdefault("Content-Type", "application/xml")
        conn = UnixHTTPConnection(self.sock, timeout=timeout)
        try:
            # refused before the whole body was sent (413): the answer is waiting anyway
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            return Raw(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        finally:
            conn.close()

    def log_text(self) -> str:
        """The daemon's output, then its own log file."""
        parts = [self.log.read_text(errors="replace") if self.log.exists() else ""]
        own = self.root / "log" / "daemon" / "pyvirtd.log"
        if own.exists():
            parts.append(own.read_text(errors="replace"))
        return "\n".join(parts)


@contextmanager
def pyvirtd(
    root: Path,
    *,
    netns: str | None = None,
    net_only: bool = False,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    autostart: bool = False,
    tls_port: int | None = None,
    timeout: float = 30.0,
    started: bool = True,
    clean_stop: bool = False,
) -> Iterator[RunningDaemon]:
    """A pyvirtd on the state root ``root`` until the block ends.

    :param netns: run it in this network namespace (``ip netns exec``: its own ``/sys`` too)
    :param net_only: with ``netns``: enter the network namespace only (``nsenter --net``)
    :param args: more command-line arguments
    :param env: more environment (``PYVIRT_STATE_DIR`` is always ``root``)
    :param autostart: no ``--no-autostart``
    :param tls_port: also listen with TLS on ``127.0.0.1:PORT`` (wait for it too)
    :param started: False: the caller calls ``start()`` itself (it is stopped all the same)
    :param clean_stop: fail the test when SIGTERM did not stop it within 10 s
    """
    assert str(root).strip(), "never run pyvirtd on the system state"
    root.mkdir(parents=True, exist_ok=True)
    argv = [*PYVIRTD, *(() if autostart else ("--no-autostart",)), *args]
    if tls_port is not None:
        argv += ["--listen-tcp", f"127.0.0.1:{tls_port}"]
    if netns and net_only:
        argv = ["nsenter", f"--net=/run/netns/{netns}", *argv]
    elif netns:
        argv = ["ip", "netns", "exec", netns, *argv]
    log = root.parent / f"{root.name}.pyvirtd.out"
    log.unlink(missing_ok=True)
    full_env = {**os.environ, **(env or {}), "PYVIRT_STATE_DIR": str(root)}
    d = RunningDaemon(root, log, argv, full_env, tls_port, timeout)
    clean = True
    try:
        if started:
            d.start()
        yield d
    finally:
        if hasattr(d, "proc"):
            clean = d.stop()
        print(f"--- pyvirtd log ({root}) ---\n{d.log_text()}")
        log.unlink(missing_ok=True)
    assert clean or not clean_stop, "pyvirtd did not stop on SIGTERM"


@contextmanager
def pyvirtds(roots: dict[str, Path], **kw: Any) -> Iterator[dict[str, RunningDaemon]]:
    """One :func:`pyvirtd` per state root in *roots* (by the same keys), started side by side
    (all launched, then each waited for); *kw* as for :func:`pyvirtd`, with ``tls_port`` and
    ``netns`` also taken as a dict by key."""
    with contextlib.ExitStack() as stack:
        daemons = {}
        for key, root in roots.items():
            args = {k: (v[key] if isinstance(v, dict) else v) for k, v in kw.items()}
            daemons[key] = stack.enter_context(pyvirtd(root, **args, started=False))
        for d in daemons.values():
            d.launch()
        for d in daemons.values():
            d.wait_ready()
        yield daemons


@pytest.fixture
def daemon(state_root: Path) -> Iterator[RunningDaemon]:
    """A pyvirtd on the test's own state root."""
    with pyvirtd(state_root) as d:
        yield d


@dataclass
class CA:
    """A throwaway certificate authority that signs client certificates."""

    cert: Path
    key: object

    @classmethod
    def create(cls, directory: Path, name: str = "test CA") -> CA:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        path = directory / f"{name.replace(' ', '-')}.pem"
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(path, key)

    def issue(self, directory: Path, cn: str) -> tuple[Path, Path]:
        """A client certificate for ``cn`` and its key (PEM files)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(self.key, hashes.SHA256())  # type: ignore[arg-type]
        )
        cert_path, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))  # fmt: skip
        key_path.chmod(0o600)
        return cert_path, key_path


class InProcessDaemon:
    """``with InProcessDaemon(root) as d:`` serves ``d.socket`` until the block ends."""

    def __init__(self, root: Path, queue_size: int = 1000) -> None:
        paths = StatePaths.from_root(root)
        conn = pyvirt.api.open(f"pyvirt:///embed?root={root}")
        self.daemon = Daemon(DaemonConfig(paths, autostart=False), conn, bus=EventBus(queue_size))
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
