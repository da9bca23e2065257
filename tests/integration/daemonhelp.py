"""Helpers for tests that run a real pyvirtd: start/stop it, free ports, a throwaway CA."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PYVIRTD = [sys.executable, "-m", "pyvirt.daemon"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"pyvirtd exited {proc.returncode}: {log.read_text()}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"pyvirtd did not listen on {port}: {log.read_text()}")


def _wait_socket(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"pyvirtd exited {proc.returncode}: {log.read_text()}")
        with socket.socket(socket.AF_UNIX) as s:
            if path.exists() and s.connect_ex(str(path)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"pyvirtd did not listen on {path}: {log.read_text()}")


@dataclass
class Daemon:
    """A running pyvirtd: its state root, log file and TLS port (if any)."""

    root: Path
    log: Path
    port: int | None
    proc: subprocess.Popen[bytes]

    @property
    def socket(self) -> Path:
        return self.root / "run" / "pyvirtd.sock"

    @property
    def cert(self) -> Path:
        return self.root / "lib" / "daemon" / "server-cert.pem"

    @property
    def audit(self) -> Path:
        return self.root / "log" / "daemon" / "audit.log"


@contextlib.contextmanager
def running_daemon(root: Path, *args: str, port: int | None = None,
                   timeout: float = 30.0) -> Iterator[Daemon]:  # fmt: skip
    """pyvirtd on ``root`` (with ``--listen-tcp 127.0.0.1:PORT`` when ``port``), stopped
    (SIGTERM, then SIGKILL) when the block ends."""
    log = root / "pyvirtd.stderr"
    argv = [*PYVIRTD, "--no-autostart", *args]
    if port is not None:
        argv += ["--listen-tcp", f"127.0.0.1:{port}"]
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}
    with open(log, "wb") as err:
        proc = subprocess.Popen(argv, env=env, stdout=err, stderr=subprocess.STDOUT)
    try:
        d = Daemon(root, log, port, proc)
        _wait_socket(d.socket, proc, log, timeout)
        if port is not None:
            _wait_port(port, proc, log, timeout)
        yield d
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
