"""The TLS listener's pieces: listen addresses, the self-signed pair, the settings file."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from pyvirt.client.settings import Settings
from pyvirt.client.tls import client_context, normalize_fingerprint
from pyvirt.daemon.conffile import read_config_file
from pyvirt.daemon.tls import (
    bind_tcp,
    ensure_server_pair,
    fingerprint,
    parse_listen,
    server_context,
)
from pyvirt.errors import InvalidConfigError, OperationFailedError


@pytest.mark.parametrize(
    ("spec", "want"),
    [("127.0.0.1:16514", ("127.0.0.1", 16514)), ("[::1]:1", ("::1", 1)),
     ("host.example:65535", ("host.example", 65535))],
)  # fmt: skip
def test_parse_listen(spec: str, want: tuple[str, int]) -> None:
    assert parse_listen(spec) == want


@pytest.mark.parametrize("spec", ["16514", "host:", ":16514", "h:0", "h:70000", "h:x"])
def test_parse_listen_refuses(spec: str) -> None:
    with pytest.raises(InvalidConfigError, match="invalid listen address"):
        parse_listen(spec)


def test_bind_tcp_names_a_taken_port() -> None:
    first = socket.socket()
    first.bind(("127.0.0.1", 0))
    first.listen()
    try:
        port = first.getsockname()[1]
        with pytest.raises(OperationFailedError, match=f"cannot listen on 127.0.0.1:{port}"):
            bind_tcp(f"127.0.0.1:{port}")
    finally:
        first.close()


def _handshake(server: ssl.SSLContext, client: ssl.SSLContext, name: str) -> bytes:
    a, b = socket.socketpair()
    result: list[bytes] = []

    def serve() -> None:
        try:
            with server.wrap_socket(a, server_side=True) as s:
                s.sendall(b"ok")
        except ssl.SSLError:
            a.close()  # the client refused us: what some tests want

    t = threading.Thread(target=serve)
    t.start()
    try:
        with client.wrap_socket(b, server_hostname=name) as c:
            result.append(c.recv(2))
    finally:
        t.join(5)
    return result[0]


def test_self_signed_pair_is_private_stable_and_verifies_strictly(tmp_path: Path) -> None:
    cert, key = ensure_server_pair(tmp_path / "daemon", None, None, "192.0.2.9", ("kvm1.test",))
    assert key.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "daemon").stat().st_mode & 0o777 == 0o700
    fp = fingerprint(cert)
    assert fp.startswith("SHA256:") and len(fp) == 7 + 64 + 31
    # a second start reuses the pair
    assert ensure_server_pair(tmp_path / "daemon", None, None, "192.0.2.9") == (cert, key)
    assert fingerprint(cert) == fp
    server = server_context(cert, key, None)
    for name in ("localhost", "127.0.0.1", "192.0.2.9", "kvm1.test"):
        client = client_context(Settings(ca=str(cert)))
        client.verify_flags |= ssl.VERIFY_X509_STRICT  # Python 3.13's default
        assert _handshake(server, client, name) == b"ok"
    # pinned: the fingerprint, however it is written
    assert normalize_fingerprint(fp) == normalize_fingerprint(fp[7:].lower().replace(":", ""))
    with pytest.raises(InvalidConfigError, match="invalid certificate fingerprint"):
        normalize_fingerprint("SHA256:AB")


def test_self_signed_is_refused_without_trust(tmp_path: Path) -> None:
    cert, key = ensure_server_pair(tmp_path, None, None, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_context(cert, key, None), client_context(Settings()), "localhost")
    other, _ = ensure_server_pair(tmp_path / "other", None, None, "127.0.0.1")
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(server_context(cert, key, None), client_context(Settings(ca=str(other))),
                   "localhost")  # fmt: skip


def test_given_pair_must_be_whole(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match="go together"):
        ensure_server_pair(tmp_path, str(tmp_path / "c.pem"), None, "")
    with pytest.raises(InvalidConfigError, match="does not exist"):
        ensure_server_pair(tmp_path, str(tmp_path / "c.pem"), str(tmp_path / "k.pem"), "")


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "pyvirtd.toml"
    assert read_config_file(path) == {}
    path.write_text('listen_tcp = "0.0.0.0:16514"\ntls_cert = "c.pem"\ntls_key = "/k.pem"\n'
                    'tls_names = ["a.example"]\nautostart = false\n')  # fmt: skip
    assert read_config_file(path) == {
        "listen_tcp": "0.0.0.0:16514", "tls_cert": str(tmp_path / "c.pem"),
        "tls_key": "/k.pem", "tls_names": ["a.example"], "autostart": False,
    }  # fmt: skip
    for text, match in [("listen = 1", "unknown setting 'listen'"),
                        ("autostart = 'yes'", "must be bool"),
                        ("tls_names = [1]", "must be a list of strings"),
                        ("x =", "cannot read")]:  # fmt: skip
        path.write_text(text)
        with pytest.raises(InvalidConfigError, match=match):
            read_config_file(path)
