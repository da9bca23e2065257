"""The block job routes in-process: a commit of a shut-off domain's chain runs as a daemon
job (``domjobinfo``'s job while it runs), its result is the chain; errors keep their shape."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import pyvirt.api
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.state.paths import StatePaths

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="no qemu-img")


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, Path]:
    base, top = tmp_path / "base.qcow2", tmp_path / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "4M"], check=True)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(top)], check=True)  # fmt: skip
    return base, top


@pytest.fixture
def http(tmp_path: Path, chain: tuple[Path, Path]) -> Iterator[TestClient]:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(
        f"""<domain type='qemu'><name>d</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
<source file='{chain[1]}'/><target dev='vda' bus='virtio'/></disk></devices></domain>"""
    )
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)
    with TestClient(create_app(daemon)) as client:
        yield client


def test_commit_runs_as_a_job(http: TestClient, chain: tuple[Path, Path]) -> None:
    base, top = chain
    r = http.post("/api/v1/domains/d/disks/vda/commit", json={"active": True, "delete": True})
    assert r.status_code == 202
    job = r.json()["job"]
    assert job["kind"] == "block-commit" and job["object"] == "domain/d"
    assert r.headers["location"] == f"/api/v1/jobs/{job['id']}"
    done = http.get(f"/api/v1/jobs/{job['id']}", params={"wait": 20}).json()
    assert done["state"] == "completed", done
    assert done["result"] == {"disk": "vda", "kind": "active-commit", "outcome": "pivoted",
                              "source": str(base), "chain": [str(base)]}  # fmt: skip
    assert not top.exists()
    again = http.post("/api/v1/domains/d/disks/vda/commit", json={"active": True}).json()["job"]
    failed = http.get(f"/api/v1/jobs/{again['id']}", params={"wait": 20}).json()
    assert failed["state"] == "failed" and failed["error"]["code"] == "invalid_state"


def test_bad_bodies_and_shut_off_controls(http: TestClient) -> None:
    r = http.post("/api/v1/domains/d/disks/vda/commit", json={"bandwidth": -1})
    assert r.status_code == 422
    r = http.post("/api/v1/domains/d/disks/vda/copy", json={"dest": "/x", "nope": 1})
    assert r.status_code == 422
    r = http.get("/api/v1/domains/d/disks/vda/blockjob")
    assert r.status_code == 409 and r.json()["code"] == "invalid_state"
    r = http.get("/api/v1/domains/nosuch/disks/vda/blockjob")
    assert r.status_code == 404


def test_the_routes_are_documented(http: TestClient) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    prefix = "/api/v1/domains/{name}/disks/{disk}"
    for verb in ("commit", "pull", "copy", "blockjob/pivot"):
        assert "post" in paths[f"{prefix}/{verb}"]
    assert set(paths[f"{prefix}/blockjob"]) == {"get", "delete"}
    assert "put" in paths[f"{prefix}/blockjob/bandwidth"]
