"""Tunnelled migration (``migrate --p2p --tunnelled``) between two "hosts" (network namespaces
joined by veth, a pyvirtd in each; B's on TLS with a token): the stream goes from A's QEMU
into a socket A's daemon holds, over B's TLS listener to B's daemon and into a unix socket
of B's incoming QEMU. While it runs nothing but pyvirtd listens on TCP in either namespace;
``domjobabort`` halfway leaves the guest on A and nothing on B; then the ticker guest moves
for good and counts on at B."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.daemonhelp import RunningDaemon, free_port, pyvirtd
from tests.integration.nethelp import NsPyvirt
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import (
    MARKER,
    console_log,
    define,
    state,
    wait_for,
    wait_marker,
)
from tests.integration.test_migrate_hosts import ADDR_B, _token, hosts, roots  # noqa: F401
from tests.integration.test_migrate_live import GAP_BOUND, TICKER, Ticks
from tests.integration.test_save_restore import _disk

pytestmark = pytest.mark.qemu


def _listening(ns: str) -> list[str]:
    """The TCP listeners in namespace *ns*: ``ADDRESS:PORT users:(("name",pid=..))``."""
    out = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltnp"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    return [" ".join(line.split()[3:]) for line in out.splitlines() if line.strip()]


def _job(d: RunningDaemon, job_id: str, until: Any, timeout: float = 60) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = d.get(f"/api/v1/jobs/{job_id}")
        if until(job) or time.monotonic() > end:
            return job
        time.sleep(0.1)


def test_tunnelled_migration_through_the_daemons(
    hosts: tuple[str, str],  # noqa: F811  (test_migrate_hosts' fixtures)
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
        guest(a, "t1", TICKER)
        token = _token(db)
        dest = f"pyvirt+tls://{ADDR_B}:{port}/"
        a.env["PYVIRT_TOKEN"] = token
        a.env["PYVIRT_CA"] = str(db.cert)
        # virsh's rule: the source host's daemon carries the stream
        res = a("migrate", "--live", "--tunnelled", "t1", dest, check=False)
        assert (res.rc, res.err.splitlines()[0]) == (1, "error: --tunnelled requires --p2p")
        res = a("migrate", "--p2p", "--tunnelled", "--postcopy", "t1", dest, check=False)
        assert res.err.splitlines()[0] == "error: --postcopy is not supported with --tunnelled"
        assert b("list", "--all", "--name").out.strip() == ""

        # 1 MiB/s: while it runs, only the daemons listen on TCP; domjobabort halfway
        r = da.request("POST", "/api/v1/domains/t1/migrate", {
            "dest_uri": dest, "token": token, "ca": db.cert.read_text(), "tunnelled": True,
            "policy": {"bandwidth": 1 << 20},
        })  # fmt: skip
        assert r.status == 202, r.body
        job_id = r.json()["job"]["id"]
        job = _job(da, job_id, lambda j: j["progress"]["done"] > 0 or j["state"] != "running")
        assert job["state"] == "running", job
        incoming = root_b / "run" / "qemu" / "t1"
        assert list(incoming.rglob("migrate-in.sock")), "B's QEMU listens on a unix socket"
        assert _listening(ns_a) == []
        (only,) = _listening(ns_b)
        assert only.startswith(f"{ADDR_B}:{port} ") and f"pid={db.pid}," in only, only
        a("domjobabort", "t1")
        job = _job(da, job_id, lambda j: j["state"] != "running")
        assert job["state"] in ("cancelled", "failed"), job
        assert "cancelled" in str(job.get("error")) or job["state"] == "cancelled", job
        assert state(a, "t1").startswith("running")
        wait_for(lambda: b("list", "--all", "--name").out.strip() == "", 10, "B clean")
        assert not incoming.exists()

        # for good, the ticker counting on at B
        ticks = Ticks()
        ticks.follow(root_a, "t1")
        ticks.follow(root_b, "t1")
        wait_for(lambda: len(ticks.seen) > 20, 20, "the ticker")
        out = a("migrate", "--p2p", "--tunnelled", "--live", "--persistent", "--undefinesource",
                "--verbose", "--bandwidth", "4096", "t1", dest)  # fmt: skip
        assert out.err.endswith("Migration: [100 %]\n")
        last_src = max(t[1] for t in ticks.seen)
        wait_for(lambda: max(t[1] for t in ticks.seen) > last_src + 20, 20, "ticks on B")
        ticks.stop()
        assert state(b, "t1") == "running (migrated)"
        assert MARKER not in console_log(b, "t1").read_text(errors="replace")
        assert ticks.largest_gap() <= GAP_BOUND, f"stood still {ticks.largest_gap():.3f} s"
        assert a("list", "--all", "--name").out.strip() == ""
        # B's daemon received the stream on its TLS listener, as the token's identity
        audit = db.audit.read_text()
        assert "/api/v1/migrations/incoming/t1/tunnel" in audit
        assert token not in da.log_text() + da.audit.read_text()
