"""``POST /api/v1/domains/{name}/migrate`` (peer-to-peer, the source daemon drives it) without
QEMU: its answers, and the destination's token kept out of errors, job records and logs;
:func:`pyvirt.api.migrate_p2p.destination_from_settings` reads the client's settings."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import pyvirt.api
import pyvirt.errors
from pyvirt.api.migrate_p2p import Destination, destination_from_settings
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.state.paths import StatePaths
from tests.unit.daemon.test_domains import domain_xml

SECRET = "pyvirt_s3cr3t-token-value"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(domain_xml("web1"))
    daemon = Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)
    with TestClient(create_app(daemon), raise_server_exceptions=False) as client:
        yield client


def test_answers_and_the_token_stays_secret(
    http: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    dest = "pyvirt+tls://192.0.2.7:16514/"
    r = http.post("/api/v1/domains/nosuch/migrate", json={"dest_uri": dest, "token": SECRET})
    assert r.status_code == 404
    # a bad request: refused without echoing the input
    r = http.post("/api/v1/domains/web1/migrate",
                  json={"dest_uri": "http://x/", "token": SECRET, "ca": SECRET})  # fmt: skip
    assert r.status_code == 422 and SECRET not in r.text
    r = http.post("/api/v1/domains/web1/migrate",
                  json={"dest_uri": dest, "token": SECRET, "evil": SECRET})  # fmt: skip
    assert r.status_code == 422 and SECRET not in r.text
    # a shut-off domain: the job fails with migrate's own error and hint
    r = http.post(
        "/api/v1/domains/web1/migrate",
        json={"dest_uri": dest, "token": SECRET, "policy": {"bandwidth": 1 << 20}},
    )
    assert r.status_code == 202
    job = r.json()["job"]
    assert job["kind"] == "domain-migrate" and job["object"] == "domain/web1"
    done = http.get(f"/api/v1/jobs/{job['id']}", params={"wait": 10}).json()
    assert done["state"] == "failed"
    assert done["error"]["error"] == "domain 'web1' is not running"
    assert "--offline" in done["error"]["hint"]
    everything = json.dumps(http.get("/api/v1/jobs").json()) + caplog.text
    assert SECRET not in everything
    assert SECRET not in repr(Destination(dest, token=SECRET, ca_pem=SECRET))


def test_destination_from_the_clients_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n")
    monkeypatch.setenv("PYVIRT_CLIENT_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("PYVIRT_TOKEN", SECRET)
    monkeypatch.delenv("PYVIRT_CA", raising=False)
    d = destination_from_settings(f"pyvirt+tls://h:1/?ca={ca}&insecure=1")
    assert (d.token, d.ca_pem, d.insecure) == (SECRET, ca.read_text(), True)
    d = destination_from_settings("pyvirt+unix:///run/x.sock")
    assert (d.token, d.ca_pem) == (None, None)  # a unix socket needs neither
    with pytest.raises(pyvirt.errors.InvalidConfigError, match="cannot read the CA file"):
        destination_from_settings("pyvirt+tls://h:1/?ca=/nonexistent/ca.pem")


def test_migrate_options_reach_the_source_daemons_migration(
    http: TestClient, tmp_path: Path
) -> None:
    def job_of(body: dict[str, object]) -> dict[str, object]:
        r = http.post("/api/v1/domains/web1/migrate", json=body)
        assert r.status_code == 202, r.text
        done: dict[str, object] = http.get(
            f"/api/v1/jobs/{r.json()['job']['id']}", params={"wait": 10}
        ).json()
        return done

    dest = f"pyvirt:///embed?root={tmp_path / 'b'}"
    # the storage options are migrate's own, with its refusals
    done = job_of({"dest_uri": dest, "copy_storage_all": True, "copy_storage_inc": True})
    assert done["state"] == "failed"
    assert "mutually exclusive" in str(done["error"])
    done = job_of({"dest_uri": dest, "migrate_disks": ["vda"]})
    assert "--migrate-disks needs --copy-storage-all" in str(done["error"])
    # --offline --persistent-xml: the document sent along is what the destination defines
    xml = domain_xml("web1").replace("</name>", "</name><description>sent</description>")
    done = job_of({"dest_uri": dest, "offline": True, "persistent": True, "persistent_xml": xml})
    assert done["state"] == "completed", done
    moved = pyvirt.api.open(dest).domains.get("web1").xml_desc(inactive=True)
    assert "<description>sent</description>" in moved


def test_completed_migration_figures(http: TestClient, tmp_path: Path) -> None:
    from pyvirt.service.domain import migrate as svc
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.service.domain.types import Reason

    r = http.get("/api/v1/domains/web1/migration/completed")
    assert r.status_code == 200 and r.json() is None  # never migrated
    figures = svc.LiveStatus("completed", 812, 9 << 20, 0, 9 << 20, 0, 3, None, 1 << 20, 37)
    mgr = DomainManager(StatePaths.from_root(tmp_path / "s"))
    svc._set_last_reason(mgr, "web1", Reason.MIGRATED, figures.to_json())
    assert http.get("/api/v1/domains/web1/migration/completed").json() == figures.to_json()
    assert http.get("/api/v1/domains/web1").json()["reason"] == "migrated"


def test_the_policy_body_has_every_field_of_the_policy() -> None:
    """A client sends the whole policy (dataclasses.asdict): a field the daemon's body
    lacks would be refused as an extra input, with the defaults the same on both sides."""
    import dataclasses

    from pyvirt.daemon.routes.migrations import PolicyBody

    fields = {f.name: f.default for f in dataclasses.fields(pyvirt.api.MigrationPolicy)}
    assert set(PolicyBody.model_fields) == set(fields)
    assert PolicyBody.model_validate({}).policy() == pyvirt.api.MigrationPolicy()
