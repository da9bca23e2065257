"""``pyvirt+tls://host[:port]/``: HTTPS to a pyvirtd's TLS listener.

The daemon's certificate is verified, always, unless the user says otherwise:

- by default against the system's CA store, with the host name checked;
- ``?ca=FILE`` (or ``PYVIRT_CA``, or ``ca`` in client.toml): against that CA only (for a
  self-signed daemon: a copy of its ``server-cert.pem``);
- ``?fingerprint=SHA256:...``: the certificate must be exactly this one (pinning; no CA and
  no host name needed, like ssh's known hosts);
- ``?insecure=1``: not at all (a warning says so; for first contact on a trusted network).

``?cert=FILE&key=FILE`` present a client certificate; the API token goes in
``Authorization: Bearer``.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import ssl

from pyvirt.client.settings import Settings
from pyvirt.client.uri import Target
from pyvirt.errors import InvalidConfigError, OperationFailedError

__all__ = ["TLSConnection", "client_context", "normalize_fingerprint"]

log = logging.getLogger("pyvirt.client")

_TRUST_HINT = (
    "trust the daemon's certificate with ?ca=FILE (or PYVIRT_CA; pyvirtd logs where it is), "
    "pin it with ?fingerprint=SHA256:..., or, on a network you trust, ?insecure=1"
)


def normalize_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as 64 lower-case hex digits (``SHA256:``, colons and case are
    ignored).

    :raises InvalidConfigError: not a SHA-256 fingerprint
    """
    raw = text.strip()
    if raw.lower().startswith("sha256:"):
        raw = raw[7:]
    digits = raw.replace(":", "").lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise InvalidConfigError(
            f"invalid certificate fingerprint '{text}'",
            hint="give the SHA-256 fingerprint pyvirtd logs, e.g. SHA256:AB:CD:...",
        )
    return digits


def client_context(settings: Settings) -> ssl.SSLContext:
    """The SSL context for ``settings`` (see the module's documentation).

    :raises InvalidConfigError: a CA or client certificate file that cannot be loaded
    """
    try:
        if settings.insecure or settings.fingerprint:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            ctx = ssl.create_default_context(cafile=settings.ca)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if settings.cert:
            ctx.load_cert_chain(settings.cert, settings.key)
    except (OSError, ssl.SSLError) as err:
        files = ", ".join(f for f in (settings.ca, settings.cert, settings.key) if f)
        raise InvalidConfigError(
            f"cannot load the TLS files ({files}): {getattr(err, 'strerror', None) or err}",
            hint="check ?ca=, ?cert=, ?key= (or PYVIRT_CA and client.toml)",
        ) from None
    return ctx


class TLSConnection(http.client.HTTPSConnection):
    """``http.client`` over TLS with pyvirt's errors and optional certificate pinning."""

    def __init__(self, target: Target, settings: Settings, timeout: float = 300.0) -> None:
        super().__init__(target.host, target.port, timeout=timeout,
                         context=client_context(settings))  # fmt: skip
        self.pin = normalize_fingerprint(settings.fingerprint) if settings.fingerprint else None
        if settings.insecure and not self.pin:
            log.warning("warning: not verifying the TLS certificate of %s (insecure=1)",
                        target.host)  # fmt: skip
        self.where = f"{target.host}:{target.port}"

    def connect(self) -> None:
        try:
            super().connect()
        except ssl.SSLCertVerificationError as err:
            raise OperationFailedError(
                f"cannot verify the TLS certificate of pyvirtd at {self.where}: "
                f"{err.verify_message or err.reason}",
                hint=_TRUST_HINT,
            ) from None
        except ssl.SSLError as err:
            raise OperationFailedError(
                f"TLS handshake with pyvirtd at {self.where} failed: {err.reason or err}",
                hint="check the daemon's --tls-client-ca and this client's ?cert=/?key=",
            ) from None
        except OSError as err:
            raise OperationFailedError(
                f"cannot reach pyvirtd at {self.where}: {err.strerror or err}",
                hint="check that it runs with --listen-tcp and that the port is open",
            ) from None
        if self.pin is not None:
            der = self.sock.getpeercert(binary_form=True) or b""
            got = hashlib.sha256(der).hexdigest()
            if got != self.pin:
                self.close()
                pretty = ":".join(got[i : i + 2] for i in range(0, 64, 2)).upper()
                raise OperationFailedError(
                    f"pyvirtd at {self.where} presented certificate SHA256:{pretty}, "
                    "not the pinned one",
                    hint="the daemon's certificate changed, or this is not that daemon; "
                    "check its log before updating ?fingerprint=",
                )
