"""How the cluster's daemons trust each other over TLS (``pyvirt+tls://`` addresses).

No token is copied between hosts by hand. Each member has a **peer secret**: 32 random bytes
made at ``cluster init``/``join`` and kept in ``CONFIG/daemon/cluster-peer.secret`` (0600,
never sent to etcd, never logged). Its SHA-256 digest goes into the host's registration
(``/pyvirt/hosts/NAME``, field ``peer_sha256``) together with the SHA-256 fingerprint of its
pyvirtd's TLS certificate (``tls_fingerprint``).

- A host calling another one reads the other's registration, pins its certificate to the
  published fingerprint (the TLS server is verified; with no fingerprint published, by the
  system's CAs or client.toml's ``ca`` as for any ``pyvirt+tls`` URI) and sends
  ``Authorization: Bearer pyvirt-peer:HOST:SECRET``.
- The called daemon reads HOST's registration from etcd (cached for :data:`FRESH` seconds)
  and compares the secret's digest with the published one. An unknown host, a host that left
  (its registration is deleted), or a wrong secret is refused with 401; a re-join makes a new
  secret, so an old one stops working within :data:`FRESH` seconds.

Only holders of an etcd client certificate can read or write registrations, so etcd's own
access control is the root of this trust: the digest in etcd cannot be turned back into the
secret, and a secret alone is useless without a registration matching it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pyvirt.drivers.etcd import Etcd, Put, unchanged
from pyvirt.errors import InvalidStateError, PyvirtError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import read_config
from pyvirt.service.cluster.records import HostRecord
from pyvirt.state.atomic import atomic_write
from pyvirt.state.paths import StatePaths

__all__ = [
    "FRESH",
    "PEER_PREFIX",
    "PeerVerifier",
    "cert_fingerprint",
    "credential",
    "digest",
    "local_fingerprint",
    "new_secret",
    "parse_credential",
    "publish_fingerprint",
    "remove_secret",
    "secret_path",
]

#: what a peer credential starts with (``pyvirt-peer:HOST:SECRET``)
PEER_PREFIX = "pyvirt-peer:"
#: seconds a host's published digest is trusted before it is read from etcd again
FRESH = 2.0


def secret_path(paths: StatePaths) -> Path:
    """Where this host keeps its peer secret (beside its membership file)."""
    return paths.cluster_membership.with_name("cluster-peer.secret")


def new_secret(paths: StatePaths) -> str:
    """Make and store (0600) a new peer secret for this host; the secret."""
    secret = secrets.token_urlsafe(32)
    path = secret_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, secret.encode() + b"\n", 0o600)
    return secret


def remove_secret(paths: StatePaths) -> None:
    """Forget this host's peer secret (leaving the cluster)."""
    secret_path(paths).unlink(missing_ok=True)


def digest(secret: str) -> str:
    """The hex SHA-256 of *secret*, as published in the host's registration."""
    return hashlib.sha256(secret.encode()).hexdigest()


def credential(paths: StatePaths, host: str) -> str:
    """``pyvirt-peer:HOST:SECRET``: what this host (*host*) presents to the others.

    :raises InvalidStateError: this host has no peer secret (it joined with an older pyvirt)
    """
    try:
        secret = secret_path(paths).read_text().strip()
    except FileNotFoundError:
        secret = ""
    if not secret:
        raise InvalidStateError(
            "this host has no cluster peer secret",
            hint="leave the cluster and join it again ('pyvirt cluster leave', then 'join')",
        )
    return f"{PEER_PREFIX}{host}:{secret}"


def parse_credential(token: str) -> tuple[str, str] | None:
    """(host, secret) of a peer credential, or ``None`` when *token* is not one."""
    if not token.startswith(PEER_PREFIX):
        return None
    host, sep, secret = token[len(PEER_PREFIX) :].partition(":")
    if not sep or not host or not secret:
        return None
    return host, secret


def cert_fingerprint(pem: bytes) -> str:
    """The hex SHA-256 of a PEM certificate's DER form (what ``?fingerprint=`` pins).

    :raises ValueError: *pem* holds no certificate
    """
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem.decode())).hexdigest()


def local_fingerprint(paths: StatePaths, address: str, cert: str | None = None) -> str:
    """The fingerprint this host publishes for its ``pyvirt+tls`` *address*: of *cert*, else
    of pyvirtd's self-signed ``CONFIG/daemon/server-cert.pem``; '' for another kind of
    address or when there is no certificate to read."""
    if not address.startswith("pyvirt+tls://"):
        return ""
    path = Path(cert) if cert else paths.daemon_config_dir / "server-cert.pem"
    try:
        return cert_fingerprint(path.read_bytes())
    except (OSError, ValueError):
        return ""


def publish_fingerprint(etcd: Etcd, host: str, machine: str, fingerprint: str) -> bool:
    """Set *fingerprint* in host *host*'s registration when it differs (pyvirtd started with
    another certificate than the one seen at join); whether it changed. Only a registration
    of this machine (*machine*: its ``host_id``) is touched."""
    entry = etcd.get(keys.host(host))
    if entry is None:
        return False
    record = HostRecord.decode(entry.value)
    if record.host_id != machine or record.tls_fingerprint == fingerprint:
        return False
    new = replace(record, tls_fingerprint=fingerprint)
    return etcd.transaction([unchanged(entry)], [Put(entry.key, new.encode())])


class PeerVerifier:
    """A daemon's check of the peer credentials other hosts present (thread-safe).

    :param paths: the daemon's state paths (its membership file names the etcd to ask)
    :param clock: monotonic seconds (tests)
    """

    def __init__(self, paths: StatePaths, clock: Callable[[], float] = time.monotonic) -> None:
        self._paths = paths
        self._clock = clock
        self._lock = threading.Lock()
        self._etcd: Etcd | None = None
        self._endpoints: object = None
        #: host -> (when read, published digest or '')
        self._cache: dict[str, tuple[float, str]] = {}

    def verify(self, token: str) -> tuple[str | None, str]:
        """(the calling host's name, '') for a valid credential of a registered host, else
        (``None``, why it was refused; never the secret)."""
        parsed = parse_credential(token)
        if parsed is None:
            return None, "malformed cluster peer credential"
        host, secret = parsed
        want = digest(secret)
        try:
            published = self._published(host, FRESH)
            if not hmac.compare_digest(published, want):  # re-joined meanwhile? look again
                published = self._published(host, FRESH / 4)
        except PyvirtError as err:
            return None, f"cannot check cluster host {host!r}: {err.message}"
        if published and hmac.compare_digest(published, want):
            return host, ""
        if not published:
            return None, f"unknown cluster host {host!r} (not registered, or it left)"
        return None, f"revoked or wrong peer credential of cluster host {host!r}"

    def _published(self, host: str, max_age: float) -> str:
        """HOST's published digest ('' when it is not registered), read from etcd unless the
        cached one is younger than *max_age* seconds."""
        with self._lock:
            config = read_config(self._paths)
            if config is None:
                return ""
            now = self._clock()
            if config.endpoints != self._endpoints or self._etcd is None:
                if self._etcd is not None:
                    self._etcd.close()
                self._etcd = Etcd(config.endpoints, ca=config.etcd_ca, cert=config.etcd_cert,
                                  key=config.etcd_key, timeout=1.0, retry_for=0)  # fmt: skip
                self._endpoints = config.endpoints
                self._cache.clear()
            hit = self._cache.get(host)
            if hit is not None and now - hit[0] < max_age:
                return hit[1]
            entry = self._etcd.get(keys.host(host))
            value = HostRecord.decode(entry.value).peer_sha256 if entry is not None else ""
            self._cache[host] = (now, value)
            return value
