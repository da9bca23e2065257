"""The resource routes in-process (FastAPI's test client, an embedded connection on a temporary
state dir): body cap, ETags, name checks, lifecycle events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import pyvirt.api
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.state.paths import StatePaths

EVENTS: list[tuple[Any, ...]] = []


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(tmp_path / "s"))
    conn = pyvirt.api.open("pyvirt:///embed")
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s"), max_body=4096), conn)
    EVENTS.clear()
    monkeypatch.setattr(daemon.bus, "publish", lambda *a, **_kw: EVENTS.append(a))
    with TestClient(create_app(daemon), raise_server_exceptions=False) as tc:
        yield tc


def test_oversized_bodies_are_413(client: TestClient) -> None:
    r = client.post(
        "/api/v1/pools", content=b"<" * 5000, headers={"content-type": "application/xml"}
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    r = client.post("/api/v1/pools", content=chunks(), headers={"content-type": "application/xml"})
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    r = client.post("/api/v1/pools/p/volumes", content=chunks(),
                    headers={"content-type": "application/json"})  # fmt: skip
    assert r.status_code == 413
    # data streams are the upload job's to bound: not refused for their size here (404: the
    # route is not in this app)
    r = client.put("/api/v1/pools/p/volumes/v/content", content=b"x" * 10000)
    assert r.status_code == 404


def test_pool_etag_and_names(client: TestClient, tmp_path: Path) -> None:
    xml = f"<pool type='dir'><name>p</name><target><path>{tmp_path / 'p'}</path></target></pool>"
    r = client.post("/api/v1/pools", content=xml, headers={"content-type": "application/xml"})
    assert r.status_code == 201, r.text
    assert r.json()["name"] == "p"
    tag = client.get("/api/v1/pools/p/xml").headers["etag"]
    assert client.get("/api/v1/pools/p").headers["etag"] == tag
    r = client.put("/api/v1/pools/p/xml", content=xml, headers={"If-Match": '"0000"'})
    assert r.status_code == 412 and r.json()["code"] == "precondition_failed"
    r = client.put("/api/v1/pools/p/xml", content=xml, headers={"If-Match": tag})
    assert r.status_code == 200
    other = xml.replace("<name>p</name>", "<name>q</name>")
    r = client.put("/api/v1/pools/p/xml", content=other)
    assert r.status_code == 400 and "not 'p'" in r.json()["error"]
    for bad in ("a%5Cb", "a%01", "%2E%2E", "..%2Fp"):
        r = client.get(f"/api/v1/pools/{bad}/volumes")
        assert r.status_code in (400, 404), (bad, r.text)
    assert client.get("/api/v1/pools/a%5Cb").json()["error"] == "invalid pool name 'a\\\\b'"
    r = client.post("/api/v1/pools", content=b"   ")
    assert r.status_code == 400 and r.json()["error"] == "empty request body"


def test_lifecycle_events(client: TestClient, tmp_path: Path) -> None:
    xml = f"<pool type='dir'><name>e</name><target><path>{tmp_path / 'e'}</path></target></pool>"
    assert client.post("/api/v1/pools", content=xml).status_code == 201
    assert client.put("/api/v1/pools/e/xml", content=xml).status_code == 200
    assert client.post("/api/v1/pools/e/start", json={"build": True}).status_code == 200
    assert client.post("/api/v1/pools/e/destroy").status_code == 204
    assert client.delete("/api/v1/pools/e").status_code == 204
    net = "<network><name>n</name><bridge name='pvu0'/></network>"
    assert client.post("/api/v1/networks", content=net).status_code == 201
    assert client.delete("/api/v1/networks/n").status_code == 204
    assert client.post("/api/v1/pools/e/start").status_code == 404  # no event for a failure
    assert EVENTS == [
        ("pool-lifecycle", "pool", "e", "Defined", "Added"),
        ("pool-lifecycle", "pool", "e", "Defined", "Updated"),
        ("pool-lifecycle", "pool", "e", "Started", ""),
        ("pool-lifecycle", "pool", "e", "Stopped", ""),
        ("pool-lifecycle", "pool", "e", "Undefined", "Removed"),
        ("network-lifecycle", "network", "n", "Defined", "Added"),
        ("network-lifecycle", "network", "n", "Undefined", "Removed"),
    ]
