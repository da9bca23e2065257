"""QEMU's TLS channel for a migration (``--tls``): the RAM stream and the disks' NBD stream.

Both QEMUs get a ``tls-creds-x509`` object ``migrate-tls`` and the migration parameter
``tls-creds``:

- the destination is the TLS server with its pyvirtd's certificate and key (the daemon's
  ``--tls-cert``/``--tls-key``, else its self-signed ``CONFIG/daemon/server-cert.pem``);
- the source is the client: it trusts the CA the client trusts for the destination's daemon
  (``?ca=FILE``, ``PYVIRT_CA``, client.toml, or the system's store) and checks that the
  destination's certificate names the host the client reached (``tls-hostname``).

QEMU reads the files when the object is created; pyvirt writes them into the QEMU's scratch
directory (owned by the QEMU user when it runs as another), creates the object and removes
them at once: no copy of the private key stays behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy``: cryptography (~50 ms) and QMP load only
# for ``--tls``.

__all__ = ["CREDS", "TlsClient", "TlsServer", "client_creds", "drop_creds", "server_creds"]

#: the id of the credentials object in both QEMUs
CREDS = "migrate-tls"


@dataclass(frozen=True)
class TlsServer:
    """The destination's identity: its daemon's certificate, key and (optional) CA file."""

    cert: str
    key: str
    ca: str | None = None


@dataclass(frozen=True)
class TlsClient:
    """What the source trusts: the destination's CA (PEM text) and the name to check."""

    ca_pem: str
    hostname: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"ca_pem": self.ca_pem, "hostname": self.hostname}


def default_server(mgr: DomainManager) -> TlsServer:
    """The daemon's self-signed pair of this state directory.

    :raises UnsupportedError: there is none (no pyvirtd with a TLS listener ran here)
    """
    base = mgr.paths.daemon_config_dir
    cert, key = base / "server-cert.pem", base / "server-key.pem"
    if not (cert.is_file() and key.is_file()):
        raise UnsupportedError(
            "--tls: the destination has no TLS certificate for the migration channel",
            hint="run its pyvirtd with a TLS listener (--listen-tcp; --tls-cert/--tls-key or "
            "its self-signed pair) and migrate to its pyvirt+tls:// URI",
        )
    return TlsServer(str(cert), str(key))


def _write_dir(mgr: DomainManager, name: str, files: dict[str, bytes]) -> Path:
    from pyvirt.service.domain import dac  # lazy

    where = dac.scratch_dir(mgr, name) / "migrate-tls"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(mode=0o700)
    ident = dac.identity(mgr)
    for fname, data in files.items():
        path = where / fname
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        if ident.separate:
            os.chown(path, ident.uid, ident.gid)
    if ident.separate:
        os.chown(where, ident.uid, ident.gid)
    return where


def _add(mon: Monitor, where: Path, endpoint: str) -> None:
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    with contextlib.suppress(QmpCommandError):
        mon.object_del(CREDS)  # a failed earlier attempt's
    try:
        mon.object_add({"qom-type": "tls-creds-x509", "id": CREDS, "dir": str(where),
                        "endpoint": endpoint,
                        "verify-peer": endpoint == "client"})  # fmt: skip
    finally:
        shutil.rmtree(where, ignore_errors=True)


def server_creds(mgr: DomainManager, name: str, mon: Monitor, server: TlsServer) -> None:
    """Give the destination QEMU of *name* the daemon's identity as ``migrate-tls``.

    QEMU refuses a CA certificate as a server's: for the daemon's self-signed certificate
    (its own CA) pyvirt issues QEMU a short-lived leaf certificate for the same names,
    signed by the daemon's key, which the source verifies against the same CA file.
    """
    cert = Path(server.cert).read_bytes()
    key = Path(server.key).read_bytes()
    if server.ca is None and _is_ca(cert):
        files = {"ca-cert.pem": cert, **_leaf(cert, key)}
    else:
        files = {
            "server-cert.pem": cert,
            "server-key.pem": key,
            "ca-cert.pem": Path(server.ca).read_bytes() if server.ca else cert,
        }
    _add(mon, _write_dir(mgr, name, files), "server")


def _is_ca(pem: bytes) -> bool:
    from cryptography import x509  # lazy: only for --tls

    try:
        ext = x509.load_pem_x509_certificate(pem).extensions
        return bool(ext.get_extension_for_class(x509.BasicConstraints).value.ca)
    except (ValueError, x509.ExtensionNotFound):
        return False


def _leaf(ca_pem: bytes, ca_key_pem: bytes) -> dict[str, bytes]:
    """A server certificate for the CA's names, valid a day, signed by the CA's key."""
    import datetime  # lazy

    from cryptography import x509  # lazy: only for --tls
    from cryptography.hazmat.primitives import hashes, serialization  # lazy
    from cryptography.hazmat.primitives.asymmetric import ec, rsa  # lazy
    from cryptography.x509.oid import ExtendedKeyUsageOID  # lazy

    ca = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise UnsupportedError(
            "--tls: the daemon's TLS key is neither EC nor RSA",
            hint="give pyvirtd an EC or RSA certificate (--tls-cert/--tls-key)",
        )
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    san = ca.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    cert = (
        x509.CertificateBuilder()
        .subject_name(ca.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(san, critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage, critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return {
        "server-cert.pem": cert.public_bytes(serialization.Encoding.PEM),
        "server-key.pem": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    }


def client_creds(mgr: DomainManager, name: str, mon: Monitor, client: TlsClient) -> None:
    """Give the source QEMU of *name* the destination's CA as ``migrate-tls``."""
    _add(mon, _write_dir(mgr, name, {"ca-cert.pem": client.ca_pem.encode()}), "client")


def drop_creds(mon: Monitor) -> None:
    """Take TLS off a QEMU whose migration failed (a later save must not use it)."""
    from pyvirt.errors import MonitorError  # lazy

    with contextlib.suppress(MonitorError):
        mon.set_migration_parameters(tls_creds="", tls_hostname="")
    with contextlib.suppress(MonitorError):
        mon.object_del(CREDS)
