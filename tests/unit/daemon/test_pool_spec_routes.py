"""``POST /api/v1/pools/preview`` and ``/define-as``: the add-pool wizard's fields made into
pool XML by ``pool-define-as``'s code, with its validation (FastAPI's test client, an
embedded connection on a temporary state dir)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import pyvirt.api
from pyvirt.api.pool_spec import PoolSpec
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.state.paths import StatePaths


def _no_uuid(xml: str) -> str:
    return re.sub(r"<uuid>[^<]*</uuid>", "", xml)


IQN = "iqn.2017-10.com.cloud.www:storage001"


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path / "s"))
    conn = pyvirt.api.open("pyvirt:///embed")
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)
    monkeypatch.setattr(daemon.bus, "publish", lambda *a, **_kw: None)
    with TestClient(create_app(daemon), raise_server_exceptions=False) as tc:
        yield tc


@pytest.mark.parametrize(
    ("body", "args"),
    [
        ({"type": "dir", "target": "/srv/p"}, {"target": "/srv/p"}),
        ({"type": "fs", "source_dev": "/dev/vdb1", "source_format": "ext4", "target": "/mnt/p"},
         {"source_dev": "/dev/vdb1", "source_format": "ext4", "target": "/mnt/p"}),
        ({"type": "netfs", "source_host": "nfs1", "source_path": "/export", "target": "/mnt/n",
          "source_dev": ""}, {"source_host": "nfs1", "source_path": "/export", "target": "/mnt/n"}),
        ({"type": "logical", "source_name": "vg0", "source_dev": "/dev/vdc"},
         {"source_name": "vg0", "source_dev": "/dev/vdc"}),
        ({"type": "disk", "source_dev": "/dev/vdd", "source_format": "gpt", "target": "/dev"},
         {"source_dev": "/dev/vdd", "source_format": "gpt", "target": "/dev"}),
        ({"type": "iscsi", "source_host": "127.0.0.1:3261", "source_dev": IQN,
          "target": "/dev/disk/by-path"},
         {"source_host": "127.0.0.1:3261", "source_dev": IQN, "target": "/dev/disk/by-path"}),
    ],
)  # fmt: skip
def test_preview_is_pool_define_as_print_xml(
    client: TestClient, body: dict[str, str], args: dict[str, str]
) -> None:
    r = client.post("/api/v1/pools/preview", json={"name": "p1", **body})
    assert r.status_code == 200, r.text
    conn = pyvirt.api.open("pyvirt:///embed")
    got = _no_uuid(r.json()["xml"])
    assert got == _no_uuid(conn.pools.definition_xml("p1", body["type"], **args))
    assert _no_uuid(PoolSpec("p1", body["type"], **args).xml(conn.pools)) == got
    assert "p1" not in [p["name"] for p in client.get("/api/v1/pools?all=true").json()]


def test_define_as_defines_and_validates(client: TestClient, tmp_path: Path) -> None:
    r = client.post("/api/v1/pools/define-as",
                    json={"name": "p2", "type": "dir", "target": str(tmp_path / "p2")})  # fmt: skip
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "p2"
    assert client.get("/api/v1/pools/p2").json()["state"] == "inactive"
    again = client.post("/api/v1/pools/define-as", json={"name": "p2", "type": "dir",
                                                          "target": "/x"})  # fmt: skip
    assert again.status_code == 409
    # pool-define-as's own validation
    bad = client.post("/api/v1/pools/preview",
                      json={"name": "p3", "type": "fs", "target": "rel"})  # fmt: skip
    assert bad.status_code == 400 and "absolute path" in bad.json()["error"]
    bad = client.post("/api/v1/pools/preview", json={"name": "p3", "type": "iscsi",
                                                      "source_host": "h:xx"})  # fmt: skip
    assert bad.status_code == 400 and "port" in bad.json()["error"]
    zfs = client.post("/api/v1/pools/preview", json={"name": "p3", "type": "zfs"})
    assert zfs.status_code == 422
    assert (
        client.post(
            "/api/v1/pools/preview", json={"name": "../x", "type": "dir", "target": "/x"}
        ).status_code
        == 400
    )
    for nasty in ({"target": "/a\x00b"}, {"source_dev": "\x01"}, {"auth_username": "\x7f"}):
        r = client.post("/api/v1/pools/preview", json={"name": "p4", "type": "dir", **nasty})
        assert r.status_code == 422, r.text  # not lxml's ValueError as a 500
