"""The Migrate dialog in a real browser (issues 13 and 15): the web console's daemon (host A,
this machine's network namespace) moves a running guest to another pyvirtd (host B, a network
namespace joined to A by a veth pair) with B's token and CA typed into the dialog. A slow
migration (1 MiB/s) is cancelled from the dialog: the guest runs on at A, nothing is left on
B. Then it moves for good: the dialog shows the job's progress, the VM leaves A's list and
runs on at B with its shell state."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt, kill_leftovers
from tests.daemonhelp import free_port, pyvirtd
from tests.integration.nethelp import netns
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import MARKER, console_log, define, state, wait_marker
from tests.integration.test_migrate_hosts import _token
from tests.webhelp import screens_dir, web_console

pytestmark = pytest.mark.qemu

ADDR_A, ADDR_B = "10.231.9.1", "10.231.9.2"  # A: this machine's own namespace


@pytest.fixture
def host_b() -> Iterator[str]:
    """A namespace joined to this one by a veth pair (here 10.231.9.1, there .2)."""
    with netns() as ns:
        here, there = f"{ns}h", f"{ns}n"
        subprocess.run(["ip", "link", "add", here, "type", "veth", "peer", "name", there],
                       check=True)  # fmt: skip
        try:
            subprocess.run(["ip", "link", "set", there, "netns", ns], check=True)
            subprocess.run(["ip", "addr", "add", f"{ADDR_A}/24", "dev", here], check=True)
            subprocess.run(["ip", "link", "set", here, "up"], check=True)
            ip = ["ip", "netns", "exec", ns, "ip"]
            subprocess.run([*ip, "addr", "add", f"{ADDR_B}/24", "dev", there], check=True)
            subprocess.run([*ip, "link", "set", there, "up"], check=True)
            yield ns
        finally:
            subprocess.run(["ip", "link", "del", here], check=False, capture_output=True)


@pytest.fixture
def roots() -> Iterator[tuple[Path, Path]]:
    made = [Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("pwA", "pwB")]
    yield made[0], made[1]
    for root in made:
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def test_migrate_dialog_cancel_then_move(
    host_b: str, roots: tuple[Path, Path], tiny_image: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:  # fmt: skip
    root_a, root_b = roots
    port = free_port()
    screens = screens_dir(tmp_path_factory, "migrate")
    with (
        pyvirtd(root_b, netns=host_b, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
        web_console(root_a, screens) as web,
    ):
        a, b = Pyvirt(root_a), Pyvirt(root_b)
        define(a, tiny_image)
        a("start", "t1")
        wait_marker(a, "t1")
        guest(a, "t1", "export KEEP=web-$((6*7))")
        token = _token(db)
        page = web.visit("#/vm/t1", "vm-t1", ready="h1")
        page.get_by_role("status", name="State").filter(has_text="running").wait_for()
        page.get_by_role("button", name="Migrate").click()
        dialog = page.get_by_role("dialog", name="Migrate the virtual machine 't1'")
        dialog.get_by_label("Destination URI").fill(f"pyvirt+tls://{ADDR_B}:{port}/")
        dialog.get_by_label("Destination API token").fill(token)
        dialog.get_by_label("Destination CA certificate").fill(db.cert.read_text())
        dialog.get_by_label("Bandwidth (MiB/s)").fill("1")
        web.shot("migrate-dialog")
        # slow: cancelled from the dialog once RAM is moving
        dialog.get_by_role("button", name="Migrate").click()
        bar = dialog.get_by_label("Migration progress")
        end = time.monotonic() + 60
        while bar.evaluate("e => e.value") < 1 and time.monotonic() < end:
            time.sleep(0.2)
        dialog.get_by_role("status").filter(has_text="Migrating: running").wait_for()
        web.shot("migrate-progress")
        assert b("list", "--all", "--name").out.strip() == "t1"  # B's incoming QEMU
        dialog.get_by_role("button", name="Cancel").click()
        dialog.get_by_role("alert").filter(has_text="Migration cancelled").wait_for(timeout=60_000)
        web.shot("migrate-cancelled")
        assert state(a, "t1").startswith("running")
        assert guest(a, "t1", "echo $KEEP").strip() == "web-42"
        assert b("list", "--all", "--name").out.strip() == ""
        assert not (root_b / "run" / "qemu" / "t1").exists()
        # for good (QEMU would keep the cancelled migration's 1 MiB/s without a new limit);
        # the VM leaves this host's list
        dialog.get_by_label("Bandwidth (MiB/s)").fill("4096")
        dialog.get_by_role("button", name="Migrate").click()
        dialog.wait_for(state="detached", timeout=120_000)
        page.wait_for_url(web.base + "/#/")
        web.shot("migrate-done-overview")
        page.locator("table").first.wait_for()
        page.wait_for_timeout(1000)  # the list's first load
        assert page.get_by_role("link", name="t1", exact=True).count() == 0
        assert state(b, "t1") == "running (migrated)"
        assert guest(b, "t1", "echo $KEEP").strip() == "web-42"
        assert MARKER not in console_log(b, "t1").read_text(errors="replace")
        assert a("list", "--all", "--name").out.strip() == ""
        jobs = web.daemon.get("/api/v1/jobs")
        mig = [j["state"] for j in jobs if j["kind"] == "domain-migrate"]
        assert sorted(mig) == ["cancelled", "completed"]
        for text in (json.dumps(jobs), web.daemon.log_text(), web.daemon.audit.read_text()):
            assert token not in text
