"""``--tunnelled`` without QEMU: the destination daemon's tunnel route writes a chunked body
of any size into the incoming QEMU's unix socket (here a plain listener) and answers how much
it wrote; the options ``--tunnelled`` cannot go with are refused before anything moves."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import pyvirt.api as pyvirt_api
from pyvirt.api.domain_migrate import migrate
from pyvirt.api.domains import DomainCollection
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.state.paths import StatePaths
from tests.conftest import Pyvirt
from tests.unit.daemon.test_domains import domain_xml

TUNNEL = "/api/v1/migrations/incoming/web1/tunnel"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    conn = pyvirt_api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(domain_xml("web1"))
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s"), max_body=1 << 20), conn)
    with TestClient(create_app(daemon), raise_server_exceptions=False) as client:
        yield client


def test_no_incoming_migration_is_404(http: TestClient) -> None:
    r = http.post(TUNNEL, content=b"x" * 10, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 404
    assert r.json()["error"] == "no incoming tunnelled migration of domain 'web1' waits here"


def test_the_stream_goes_into_the_socket(
    http: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "in.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    got = bytearray()

    def qemu() -> None:
        conn, _ = listener.accept()
        with conn:
            while data := conn.recv(1 << 16):
                got.extend(data)

    reader = threading.Thread(target=qemu)
    reader.start()
    monkeypatch.setattr(DomainCollection, "migration_tunnel_socket", lambda _self, _n: str(path))
    chunks = [bytes([i]) * (256 << 10) for i in range(12)]  # 3 MiB: over the body cap
    r = http.post(TUNNEL, content=iter(chunks),
                  headers={"content-type": "application/octet-stream"})  # fmt: skip
    reader.join(10)
    listener.close()
    assert r.status_code == 200, r.text
    assert r.json() == {"received": 3 << 20}
    assert bytes(got) == b"".join(chunks)


def test_what_tunnelled_refuses(pyvirt: Pyvirt) -> None:
    conn = pyvirt_api.open(f"pyvirt:///embed?root={pyvirt.root}")
    conn.domains.define(domain_xml("web1"))
    src = conn.domains.get("web1")
    dest = "pyvirt+tls://192.0.2.7:16514/"
    with pytest.raises(InvalidConfigError, match="--tls and --tunnelled"):
        migrate(src, dest, tunnelled=True, tls=True)
    with pytest.raises(InvalidConfigError, match="--migrateuri"):
        migrate(src, dest, tunnelled=True, migrate_uri="tcp:10.0.0.1:0")
    with pytest.raises(UnsupportedError, match=r"^--copy-storage-all/-inc is not supported"):
        migrate(src, dest, tunnelled=True, copy_storage_all=True)
    policy = pyvirt_api.MigrationPolicy(parallel=2)
    with pytest.raises(UnsupportedError, match=r"^--parallel is not supported with --tunnelled"):
        migrate(src, dest, tunnelled=True, policy=policy)
    res = pyvirt("migrate", "--tunnelled", "web1", dest, check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == "error: --tunnelled requires --p2p"
