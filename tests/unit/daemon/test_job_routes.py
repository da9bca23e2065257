"""The job routes in-process (FastAPI's test client): status codes, bodies, Location."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import pyvirt.api
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.state.paths import StatePaths

MIB = 1 << 20


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    uri = f"pyvirt:///embed?root={tmp_path / 's'}"
    conn = pyvirt.api.open(uri)
    pool, _ = conn.pools.define_as("p1", "dir", target=str(tmp_path / "p1"))
    pool.start(build=True)
    vol = pool.create_volume("v", 4 * MIB, format="raw")
    Path(vol.path).write_bytes(b"\x01" * 4 * MIB)
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)
    with TestClient(create_app(daemon)) as client:
        yield client


def test_clone_job_and_its_answers(http: TestClient) -> None:
    r = http.post("/api/v1/pools/p1/volumes/v/clone", json={"name": "w"})
    assert r.status_code == 202
    job = r.json()["job"]
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}"
    done = http.get(f"/api/v1/jobs/{job['id']}", params={"wait": 10}).json()
    assert done["state"] == "completed" and done["result"]["name"] == "w"
    assert [j["id"] for j in http.get("/api/v1/jobs").json()] == [job["id"]]
    assert http.get("/api/v1/jobs", params={"all": False}).json() == []
    r = http.delete(f"/api/v1/jobs/{job['id']}")
    assert r.status_code == 409 and r.json()["code"] == "invalid_state"
    r = http.post("/api/v1/pools/p1/volumes/v/clone", json={"name": "w"})
    assert r.status_code == 409 and r.json()["code"] == "already_exists"


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("GET", "/api/v1/jobs/nosuch", None, 404, "not_found"),
        ("DELETE", "/api/v1/jobs/nosuch", None, 404, "not_found"),
        ("POST", "/api/v1/pools/p1/volumes/nosuch/clone", {"name": "x"}, 404, "not_found"),
        ("POST", "/api/v1/pools/p1/volumes/v/clone", {"name": "x", "evil": 1}, 422,
         "invalid_request"),
        ("POST", "/api/v1/pools/p1/volumes/v/wipe", {"bandwidth": 0}, 422, "invalid_request"),
        ("POST", "/api/v1/domains/nosuch/clone", {"name": "x"}, 404, "not_found"),
        ("DELETE", "/api/v1/domains/nosuch/job", None, 404, "not_found"),
    ],
)  # fmt: skip
def test_bad_requests(
    http: TestClient, method: str, path: str, body: object, status: int, code: str
) -> None:
    r = http.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code and r.json()["error"]


def test_upload_then_download(http: TestClient) -> None:
    data = bytes(range(256)) * 4096
    r = http.put("/api/v1/pools/p1/volumes/v/content", params={"offset": MIB}, content=data)
    assert r.status_code == 200, r.text
    assert r.json()["job"]["result"] == {"transferred": len(data)}
    r = http.get("/api/v1/pools/p1/volumes/v/content", params={"offset": MIB, "length": len(data)})
    assert r.status_code == 200 and r.content == data
    assert r.headers["x-pyvirt-job"]
    r = http.get("/api/v1/pools/p1/volumes/v/content", params={"offset": 5 * MIB})
    assert r.status_code == 400 and "beyond the end" in r.json()["error"]


def test_the_job_routes_are_in_the_openapi_document(http: TestClient) -> None:
    doc = http.get("/openapi.json").json()
    paths = doc["paths"]
    assert set(paths["/api/v1/jobs/{job_id}"]) == {"get", "delete"}
    assert "post" in paths["/api/v1/pools/{pool}/volumes/{vol}/clone"]
    assert set(paths["/api/v1/pools/{pool}/volumes/{vol}/content"]) == {"get", "put"}
    assert "post" in paths["/api/v1/domains/{name}/clone"]
    assert set(paths["/api/v1/domains/{name}/job"]) == {"get", "delete"}
