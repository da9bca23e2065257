"""A real etcd cluster for tests: Debian's ``etcd`` members on loopback, or one member per
network namespace on that namespace's address (``netns=``), started and stopped by the test
(issue 16)."""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import shutil
import signal
import ssl
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.daemonhelp import free_port


@dataclass
class EtcdMember:
    """One member: its name, ports, data directory and process."""

    name: str
    client_port: int
    peer_port: int
    data: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: the address it listens on (its namespace's, when it runs in one)
    address: str = "127.0.0.1"
    #: the network namespace it runs in (None: this one)
    netns: str | None = None
    #: TLS on its client and peer URLs, with client-certificate auth (None: plain HTTP)
    tls: EtcdTLS | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls is not None else "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://{self.address}:{self.peer_port}"

    def healthy(self) -> bool:
        url = self.client_url + "/health"
        if self.netns is not None:  # not reachable from here: ask from inside
            out = subprocess.run(["ip", "netns", "exec", self.netns, "curl", "-sm1", url],
                                 capture_output=True, timeout=10).stdout  # fmt: skip
            return b'"health":"true"' in out
        ctx = self.tls.client_context() if self.tls is not None else None
        with (contextlib.suppress(OSError, ValueError),
              urllib.request.urlopen(url, timeout=1, context=ctx) as r):  # fmt: skip
            return b'"health":"true"' in r.read()
        return False

    def stop(self) -> None:
        """Stop the member (SIGKILL: a crashed member)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class EtcdCluster:
    """Members sharing one ``--initial-cluster``."""

    members: list[EtcdMember]

    @property
    def endpoints(self) -> str:
        """The members' client URLs, comma-separated (``--etcd``)."""
        return ",".join(m.client_url for m in self.members)

    def start(self, member: EtcdMember, *, state: str = "new") -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        argv = [
            "etcd", "--name", member.name, "--data-dir", str(member.data),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-state", state,
            "--initial-cluster-token", "pyvirt-test",
            # a loaded 2-core test machine: slower heartbeats than etcd's 100 ms default
            "--heartbeat-interval", "250", "--election-timeout", "2500",
            # a member cut off and back must not depose the leader (etcd 3.5's default)
            "--pre-vote",
        ]  # fmt: skip
        if member.tls is not None:
            argv += member.tls.etcd_args()
        if member.netns is not None:
            argv = ["ip", "netns", "exec", member.netns, *argv]
        with member.log.open("ab") as out:
            member.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def wait_healthy(self, members: list[EtcdMember] | None = None, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for m in members or self.members:
            while not m.healthy():
                if m.proc is not None and m.proc.poll() is not None:
                    raise AssertionError(f"etcd {m.name} exited:\n{m.log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"etcd {m.name} not healthy:\n{m.log.read_text()[-3000:]}")
                time.sleep(0.1)

    def stop_all(self) -> None:
        for m in self.members:
            m.stop()


@contextlib.contextmanager
def etcd_cluster(
    tmp: Path,
    size: int = 3,
    *,
    netns: list[tuple[str, str]] | None = None,
    tls: EtcdTLS | None = None,
) -> Iterator[EtcdCluster]:
    """*size* etcd members on loopback until the block ends; with *netns* (namespace,
    address) pairs, one member in each namespace on its address (ports 2379 and 2380); with
    *tls*, https client and peer URLs and client-certificate auth (:func:`make_etcd_tls`)."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (Debian's etcd-server; scripts/setup.sh installs it)")
    if netns is not None:
        members = [
            EtcdMember(f"e{i}", 2379, 2380, tmp / f"e{i}", tmp / f"e{i}.log", address=ip, netns=ns)
            for i, (ns, ip) in enumerate(netns)
        ]
    else:
        members = [
            EtcdMember(
                f"e{i}", free_port(), free_port(), tmp / f"etcd{i}", tmp / f"etcd{i}.log", tls=tls
            )
            for i in range(size)
        ]
    tmp.mkdir(parents=True, exist_ok=True)
    cluster = EtcdCluster(members)
    try:
        for m in members:
            cluster.start(m)
        cluster.wait_healthy()
        yield cluster
    finally:
        cluster.stop_all()
        for m in members:
            if m.log.exists():
                print(f"--- etcd {m.name} (last lines) ---\n{m.log.read_text()[-1500:]}")


@dataclass
class EtcdTLS:
    """The certificates of a TLS etcd cluster: one CA, the members' certificate (server and
    client use, for 127.0.0.1/localhost: client and peer URLs) and a client certificate."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path

    def etcd_args(self) -> list[str]:
        """etcd's flags: https on both sides, clients and peers must present a certificate."""
        return [
            "--trusted-ca-file", str(self.ca), "--cert-file", str(self.server_cert),
            "--key-file", str(self.server_key), "--client-cert-auth",
            "--peer-trusted-ca-file", str(self.ca), "--peer-cert-file", str(self.server_cert),
            "--peer-key-file", str(self.server_key), "--peer-client-cert-auth",
        ]  # fmt: skip

    def client_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        ctx.load_cert_chain(str(self.client_cert), str(self.client_key))
        return ctx

    def cli_args(self) -> list[str]:
        """``cluster init|join``'s flags for this CA and client certificate."""
        return ["--etcd-ca", str(self.ca), "--etcd-cert", str(self.client_cert),
                "--etcd-key", str(self.client_key)]  # fmt: skip


def make_etcd_tls(directory: Path) -> EtcdTLS:
    """A throwaway CA (made with ``cryptography``) and the certificates :class:`EtcdTLS`
    holds, written as PEM files (keys 0600) under *directory*."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
        path.chmod(0o600)
        return path

    def build(cn: str, issuer: x509.Name | None) -> x509.CertificateBuilder:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer or subject)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        build("pyvirt test etcd CA", None)
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    out: dict[str, tuple[Path, Path]] = {}
    for cn, usage in (
        ("etcd", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("client", [ExtendedKeyUsageOID.CLIENT_AUTH]),
    ):
        key = ec.generate_private_key(ec.SECP256R1())
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            build(cn, ca.subject)
            .public_key(key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        (directory / f"{cn}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[cn] = (directory / f"{cn}.pem", write_key(key, directory / f"{cn}.key"))
    return EtcdTLS(directory / "ca.pem", *out["etcd"], *out["client"])
