"""Peer-to-peer live migration (``migrate --p2p``): the *source* host's pyvirtd drives both
halves, connecting to the destination's daemon itself with the token and CA the client sent
along. Two "hosts" are network namespaces joined by a veth pair (the fixtures of
test_migrate_hosts.py), each with its own pyvirtd. A cancelled migration (a job of A's daemon,
``DELETE /jobs/ID``) leaves the guest running on A and nothing on B; then the CLI moves it
for good; B's daemon moves it back copying its disk (``--copy-storage-all --migrate-disks
--xml --persistent-xml`` through the daemon). The destination's token is never in A's job
records, log or audit log."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.daemonhelp import RunningDaemon, free_port, pyvirtd
from tests.integration.nethelp import NsPyvirt
from tests.integration.test_disks import guest, write_pattern
from tests.integration.test_lifecycle import MARKER, console_log, define, state, wait_marker
from tests.integration.test_migrate_hosts import ADDR_B, _token, hosts, roots  # noqa: F401
from tests.integration.test_save_restore import _disk

pytestmark = pytest.mark.qemu


def _job(d: RunningDaemon, job_id: str, until: Any, timeout: float = 60) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = d.get(f"/api/v1/jobs/{job_id}")
        if until(job) or time.monotonic() > end:
            return job
        time.sleep(0.2)


def test_p2p_migration_driven_by_the_source_daemon(
    hosts: tuple[str, str],  # noqa: F811  (test_migrate_hosts' fixture)
    roots: tuple[Path, Path],  # noqa: F811
    tiny_image: Any,
) -> None:
    ns_a, ns_b = hosts
    root_a, root_b = roots
    port = free_port()
    with (
        pyvirtd(root_a, netns=ns_a) as da,
        pyvirtd(root_b, netns=ns_b, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
    ):
        a = NsPyvirt(root_a, ns_a)
        b = Pyvirt(root_b)
        disk = root_a / "d.img"
        disk.write_bytes(b"\0" * (1 << 20))
        define(a, tiny_image, extra_devices=_disk(disk))
        a("start", "t1")
        wait_marker(a, "t1")
        guest(a, "t1", "export KEEP=p2p-$((6*7))")
        running_owner = disk.stat().st_uid  # the QEMU user's while a QEMU runs on it
        token = _token(db)
        dest = f"pyvirt+tls://{ADDR_B}:{port}/"
        # cancelled halfway (1 MiB/s): the guest runs on at A, B is clean
        r = da.request("POST", "/api/v1/domains/t1/migrate", {
            "dest_uri": dest, "token": token, "ca": db.cert.read_text(),
            "policy": {"bandwidth": 1 << 20},
        })  # fmt: skip
        assert r.status == 202, r.body
        job_id = r.json()["job"]["id"]
        job = _job(da, job_id, lambda j: j["progress"]["done"] > 0 or j["state"] != "running")
        assert job["state"] == "running", job
        assert b("list", "--all", "--name").out.strip() == "t1"  # the incoming QEMU
        assert da.request("DELETE", f"/api/v1/jobs/{job_id}").status in (200, 202, 204)
        job = _job(da, job_id, lambda j: j["state"] != "running")
        assert job["state"] == "cancelled", job
        assert state(a, "t1").startswith("running")
        assert guest(a, "t1", "echo $KEEP").strip() == "p2p-42"
        assert b("list", "--all", "--name").out.strip() == ""
        assert not (root_b / "run" / "qemu" / "t1").exists()
        # the CLI: --p2p through A's daemon, B's token and CA from the client's settings
        a.env["PYVIRT_TOKEN"] = token
        a.env["PYVIRT_CA"] = str(db.cert)
        # (--bandwidth: QEMU keeps the cancelled migration's 1 MiB/s otherwise)
        out = a("migrate", "--p2p", "--live", "--persistent", "--undefinesource", "--verbose",
                "--bandwidth", "4096", "t1", dest)  # fmt: skip
        assert out.err.endswith("Migration: [100 %]\n")
        assert state(b, "t1") == "running (migrated)"
        assert guest(b, "t1", "echo $KEEP").strip() == "p2p-42"
        assert MARKER not in console_log(b, "t1").read_text(errors="replace")
        assert a("list", "--all", "--name").out.strip() == ""
        assert not (root_a / "run" / "qemu" / "t1").exists()
        # A's QEMU stopped, B's runs on the shared image: it stays the QEMU user's (B's QEMU
        # reopens it for the disk mirror below; given back to root it crashed there)
        assert disk.stat().st_uid == running_owner
        jobs = da.get("/api/v1/jobs")
        done = [j for j in jobs if j["kind"] == "domain-migrate" and j["state"] == "completed"]
        assert len(done) == 1 and done[0]["result"]["destination"] == dest
        assert done[0]["result"]["total_time_ms"] > 0
        # the secret stayed out of A's records
        for text in (json.dumps(jobs), da.log_text(), da.audit.read_text()):
            assert token not in text
        # back to A, driven by B's daemon (A's by its socket path: no token needed), the disk
        # copied to another image (--xml names it) and defined from --persistent-xml: the
        # documents travel as text to B's daemon
        write_pattern(b, "t1", "vda", "p2p-disk-copy!")
        copy = root_a / "d2.img"
        live_xml, pers_xml = root_b / "back.xml", root_b / "back-persistent.xml"
        live_xml.write_text(b("dumpxml", "t1").out.replace(str(disk), str(copy)))
        inactive = b("dumpxml", "--inactive", "t1").out.replace(str(disk), str(copy))
        pers_xml.write_text(inactive.replace("</name>", "</name><description>p2p</description>"))
        NsPyvirt(root_b, ns_b)("migrate", "--p2p", "--live", "--copy-storage-all",
                               "--migrate-disks", "vda", "--xml", str(live_xml), "--persistent",
                               "--persistent-xml", str(pers_xml), "t1",
                               f"pyvirt+unix://{da.sock}")  # fmt: skip
        assert state(a, "t1") == "running (migrated)"
        assert guest(a, "t1", "echo $KEEP").strip() == "p2p-42"
        with copy.open("rb") as f:
            f.seek(4096)
            assert f.read(14) == b"p2p-disk-copy!"
        assert str(copy) in a("domblklist", "t1").out
        assert "<description>p2p</description>" in a("dumpxml", "--inactive", "t1").out
        # a wrong token for B: A's job fails with B's refusal, returned to the client
        a.env["PYVIRT_TOKEN"] = "pyvirt_wrong"
        res = a("migrate", "--p2p", "--live", "t1", dest, check=False)
        assert res.rc == 1
        assert res.err.splitlines()[0] == "error: invalid or revoked API token"
        assert state(a, "t1") == "running (migrated)"
        assert not (root_b / "run" / "qemu" / "t1").exists()
