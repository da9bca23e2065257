"""The TLS listener's pieces: its address, its certificate and key, its SSL context.

With no ``--tls-cert``/``--tls-key`` (nor ``tls_cert``/``tls_key`` in ``pyvirtd.toml``) the
daemon makes a self-signed pair on first start, ``CONFIG/daemon/server-cert.pem`` and
``server-key.pem`` (0600), and logs the certificate's SHA-256 fingerprint so that a client can
trust it (``?ca=`` with a copy of the certificate, or ``?fingerprint=``). The pair is an EC
P-256 key and a certificate valid ten years for ``localhost``, the host's names, the loopback
addresses, the listen address and the ``tls_names`` of ``pyvirtd.toml``.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import ipaddress
import logging
import os
import socket
import ssl
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, OperationFailedError

if TYPE_CHECKING:
    import uvicorn

    from pyvirt.daemon.context import Daemon

__all__ = [
    "bind_tcp",
    "ensure_server_pair",
    "fingerprint",
    "parse_listen",
    "server_context",
    "tls_listener",
]

log = logging.getLogger("pyvirtd")

_LISTEN_HINT = "give HOST:PORT, e.g. 0.0.0.0:16514, 127.0.0.1:16514 or [::]:16514"


def parse_listen(spec: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[V6]:PORT`` for IPv6) as a host and a port.

    :raises InvalidConfigError: not an address with a port 1-65535
    """
    host, sep, port_s = spec.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not sep or not host or not port_s.isdigit() or not 0 < int(port_s) < 65536:
        raise InvalidConfigError(f"invalid listen address '{spec}'", hint=_LISTEN_HINT)
    return host, int(port_s)


def bind_tcp(spec: str) -> socket.socket:
    """A listening TCP socket for ``HOST:PORT`` (bound now, so a taken port is a clear error
    before the daemon starts serving).

    :raises OperationFailedError: the address cannot be bound
    """
    host, port = parse_listen(spec)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise InvalidConfigError(f"cannot resolve listen host '{host}': {err.strerror}",
                                 hint=_LISTEN_HINT) from None  # fmt: skip
    family, _type, _proto, _canon, addr = infos[0]
    # proto IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted sockets only when the
    # socket says it is TCP, and without it every TLS response waits ~40 ms (Nagle + ACK)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(addr)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise OperationFailedError(
            f"cannot listen on {spec}: {(err.strerror or str(err)).lower()}",
            hint="pick another port with --listen-tcp, or stop what uses this one",
        ) from None
    sock.set_inheritable(False)
    return sock


def fingerprint(cert_pem: Path) -> str:
    """The SHA-256 fingerprint of a PEM certificate, ``SHA256:AB:CD:...`` (the format of
    ``openssl x509 -fingerprint -sha256``, which clients compare with ``?fingerprint=``).

    :raises InvalidConfigError: not a readable PEM certificate
    """
    try:
        der = ssl.PEM_cert_to_DER_cert(cert_pem.read_text())
    except (OSError, ValueError) as err:
        raise InvalidConfigError(f"cannot read the certificate {cert_pem}: {err}") from None
    digest = hashlib.sha256(der).hexdigest().upper()
    return "SHA256:" + ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def _write_private(path: Path, data: bytes, mode: int) -> None:
    """Write ``path`` atomically with exactly ``mode``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _names(listen_host: str, extra: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """DNS names and IP addresses the self-signed certificate is valid for."""
    dns = ["localhost", socket.gethostname(), socket.getfqdn()]
    ips = ["127.0.0.1", "::1"]
    for name in (listen_host, *extra):
        if name in ("", "0.0.0.0", "::"):
            continue
        try:
            ipaddress.ip_address(name)
            ips.append(name)
        except ValueError:
            dns.append(name)
    return list(dict.fromkeys(dns)), list(dict.fromkeys(ips))


def _self_signed(cert_path: Path, key_path: Path, listen_host: str,
                 extra: tuple[str, ...]) -> None:  # fmt: skip
    # local imports: cryptography costs ~50 ms and is needed only on the first start
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    dns, ips = _names(listen_host, extra)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, dns[1] or "localhost"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pyvirtd self-signed"),
    ])  # fmt: skip
    now = datetime.datetime.now(datetime.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(d) for d in dns if d]
    san += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    pub = key.public_key()
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    # its own trust anchor: clients load it as the CA (?ca=FILE), so it is marked a CA that
    # can sign nothing but itself (path length 0)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(pub)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(pub), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(cert_path.parent, 0o700)
    _write_private(key_path, key_pem, 0o600)
    _write_private(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def ensure_server_pair(config_dir: Path, cert: str | None, key: str | None, listen_host: str,
                       extra_names: tuple[str, ...] = ()) -> tuple[Path, Path]:  # fmt: skip
    """The certificate and key to serve: the given pair, else ``config_dir``'s self-signed
    pair (made now if missing).

    :raises InvalidConfigError: only one of ``cert``/``key`` given, or a file is missing
    """
    if cert or key:
        if not (cert and key):
            raise InvalidConfigError(
                "--tls-cert and --tls-key go together",
                hint="give both (or neither, for a self-signed pair made on first start)",
            )
        for f in (cert, key):
            if not Path(f).is_file():
                raise InvalidConfigError(f"TLS file {f} does not exist")
        return Path(cert), Path(key)
    cert_path, key_path = config_dir / "server-cert.pem", config_dir / "server-key.pem"
    if not (cert_path.is_file() and key_path.is_file()):
        _self_signed(cert_path, key_path, listen_host, extra_names)
        log.info("created a self-signed TLS certificate %s (key %s)", cert_path, key_path)
    return cert_path, key_path


def server_context(cert: Path, key: Path, client_ca: str | None) -> ssl.SSLContext:
    """The listener's SSL context: TLS 1.2 or later; with ``client_ca``, clients may present
    a certificate signed by it (one that does not verify fails the handshake).

    :raises InvalidConfigError: the pair or the CA cannot be loaded
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
        if client_ca:
            ctx.load_verify_locations(cafile=client_ca)
            ctx.verify_mode = ssl.CERT_OPTIONAL
    except (OSError, ssl.SSLError) as err:
        raise InvalidConfigError(
            f"cannot load the TLS files ({cert}, {key}{', ' + client_ca if client_ca else ''})"
            f": {err}",
            hint="check that they are PEM files and that the key matches the certificate",
        ) from None
    return ctx


def tls_listener(daemon: Daemon, app: Any) -> tuple[uvicorn.Server, list[socket.socket]]:
    """The TLS listener of ``daemon.config.listen_tcp``: a uvicorn server and its bound
    socket; logs where it listens and the certificate's fingerprint.

    :raises PyvirtError: a bad address or TLS file, or a taken port
    """
    import uvicorn

    from pyvirt.daemon.listeners import listener_config  # local: uvicorn only when serving

    cfg = daemon.config
    assert cfg.listen_tcp
    host, _port = parse_listen(cfg.listen_tcp)
    cert, key = ensure_server_pair(
        daemon.paths.daemon_config_dir, cfg.tls_cert, cfg.tls_key, host, cfg.tls_names
    )
    ctx = server_context(cert, key, cfg.tls_client_ca)
    sock = bind_tcp(cfg.listen_tcp)
    server = uvicorn.Server(listener_config(app, "tls", ssl_context=ctx))
    log.info("pyvirtd listening on %s (TLS%s); certificate %s fingerprint %s",
             cfg.listen_tcp, ", client certificates accepted" if cfg.tls_client_ca else "",
             cert, fingerprint(cert))  # fmt: skip
    return server, [sock]
