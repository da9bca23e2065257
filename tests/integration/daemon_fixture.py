"""A real ``pyvirtd`` for integration tests: started with the test's state root (and
optionally inside a network namespace), ready once ``GET /health`` answers on its unix socket,
stopped with SIGTERM (SIGKILL after 10 s) in ``finally``. Its log is printed at teardown, so
pytest shows it for a failed test."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pyvirt.client.transport import Client, UnixHTTPConnection
from pyvirt.client.uri import resolve


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
    """A started pyvirtd: its process, state root, socket and log."""

    proc: subprocess.Popen[bytes]
    root: Path
    log: Path

    @property
    def sock(self) -> Path:
        return self.root / "run" / "pyvirtd.sock"

    @property
    def uri(self) -> str:
        return f"pyvirt+unix://{self.sock}"

    def client(self) -> Client:
        """The project's own transport (raises the daemon's errors as PyvirtError)."""
        return Client.for_target(resolve(self.uri))

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
    args: tuple[str, ...] = (),
    timeout: float = 30.0,
    env: dict[str, str] | None = None,
) -> Iterator[RunningDaemon]:
    """Run ``python -m pyvirt.daemon`` on ``root`` until the block ends."""
    assert str(root).strip(), "never run pyvirtd on the system state"
    root.mkdir(parents=True, exist_ok=True)
    log = root.parent / f"{root.name}.pyvirtd.out"
    cmd = [sys.executable, "-m", "pyvirt.daemon", "--no-autostart", *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    full_env = {**os.environ, **(env or {}), "PYVIRT_STATE_DIR": str(root)}
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # fmt: skip
    d = RunningDaemon(proc, root, log)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"pyvirtd exited with {proc.returncode}:\n{d.log_text()}")
            if d.sock.exists():
                with contextlib.suppress(OSError, http.client.HTTPException):
                    if d.request("GET", "/health", timeout=2).status == 200:
                        break
            if time.monotonic() > deadline:
                raise AssertionError(f"pyvirtd did not answer /health:\n{d.log_text()}")
            time.sleep(0.05)
        yield d
    finally:
        stop(d)
        print(f"--- pyvirtd log ({root}) ---\n{d.log_text()}")
        log.unlink(missing_ok=True)


def stop(d: RunningDaemon) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGTERM)
        try:
            d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait(timeout=10)


@pytest.fixture
def daemon(state_root: Path) -> Iterator[RunningDaemon]:
    """A pyvirtd on the test's own state root."""
    with pyvirtd(state_root) as d:
        yield d
