"""The web console's Cluster page (issue 16 item 6), with a real two-member etcd and two
pyvirtd: the page lists both hosts and an HA domain's owner; hb crashes (its daemon, watchdog
and QEMU killed) and the page shows hb down, then the guest recovered on ha, live from the
event stream; the recovery is a daemon job; hb back, it shows up again and does not run the
guest. The Cluster entry of the navigation shows only on a member."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kill_leftovers
from tests.daemonhelp import RunningDaemon, pyvirtd
from tests.integration.clusterhelp import (
    cli,
    crash,
    destroy_everywhere,
    hosts_running,
    stop_watchdogs,
)
from tests.integration.etcdhelp import etcd_cluster
from tests.integration.nethelp import guest_xml
from tests.webhelp import screens_dir, web_console

pytestmark = pytest.mark.qemu

UUID = "<uuid>6f1b7c1e-3a1d-4c55-9d2e-0c1c0c1c0c77</uuid>"


def post(daemon: RunningDaemon, path: str, body: dict[str, Any]) -> Any:
    res = daemon.request("POST", path, body)
    assert res.status < 300, (path, res.status, res.body)
    return res.json()


@pytest.fixture
def roots() -> Iterator[tuple[Path, Path, Path]]:
    """Short state directories (unix socket paths) and etcd's directory."""
    made = [Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("pcA", "pcB", "pcE")]
    yield made[0], made[1], made[2]
    stop_watchdogs(made[:2])
    for root in made[:2]:
        kill_leftovers(root)
    for root in made:
        shutil.rmtree(root, ignore_errors=True)


def test_cluster_page_live(
    roots: tuple[Path, Path, Path], tiny_image: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect

    ra, rb, re_ = roots
    screens = screens_dir(tmp_path_factory, "web_cluster")
    with contextlib.ExitStack() as stack:
        web = stack.enter_context(web_console(ra, screens))
        page = web.page
        # not a member yet: no Cluster entry
        expect(page.locator("#whoami")).not_to_be_empty()
        expect(page.get_by_role("link", name="Cluster")).to_be_hidden()

        began = time.monotonic()
        etcd = stack.enter_context(etcd_cluster(re_, size=2))
        b = stack.enter_context(pyvirtd(rb))
        stack.callback(destroy_everywhere, {"ha": ra, "hb": rb}, "cw1")
        # through the daemons' REST API (the CLI's own tests are in test_cluster.py)
        a = web.daemon
        post(a, "/api/v1/cluster/init", {"etcd": etcd.endpoints, "host": "ha", "name": "lab",
                                         "address": a.uri})  # fmt: skip
        post(b, "/api/v1/cluster/join", {"etcd": etcd.endpoints, "host": "hb", "address": b.uri})
        xml = guest_xml(tiny_image, "cw1", "", dhcp=False).replace("<memory", UUID + "<memory")
        post(a, "/api/v1/cluster/domains", {"xml": xml, "ha": True})
        post(a, "/api/v1/cluster/domains/cw1/start", {"host": "hb"})

        # a member now: the entry shows; the page lists both hosts and cw1's owner
        page.reload()
        page.get_by_role("link", name="Cluster").click()
        hosts = page.get_by_role("table", name="Hosts")
        domains = page.get_by_role("table", name="Domains")
        events = page.get_by_role("table", name="Recent events")
        expect(hosts.locator('tr[data-host="ha"]')).to_have_attribute("data-state", "up")
        expect(hosts.locator('tr[data-host="hb"]')).to_have_attribute("data-state", "up")
        expect(hosts.get_by_role("rowheader", name="ha (this host)")).to_be_visible()
        expect(hosts.locator('tr[data-host="hb"]')).to_contain_text(b.uri)
        cw1 = domains.locator('tr[data-domain="cw1"]')
        expect(cw1.get_by_role("cell").nth(0)).to_have_text("hb")  # owner
        expect(cw1.get_by_role("cell").nth(1)).to_have_text("yes")  # HA
        expect(cw1.get_by_role("cell").nth(2)).to_have_text("running", timeout=10_000)
        expect(page.get_by_role("status").filter(has_text="Cluster lab")).to_contain_text(
            "2 hosts (2 up)"
        )
        web.shot("cluster")

        # hb crashes (its daemon, its watchdog and cw1's QEMU die at once; a kill -9 of the
        # daemon alone fences nothing: the watchdog holds the lease): its lease expires, ha
        # (now the only host) recovers cw1 — all shown live
        print(f"set up and shown in {time.monotonic() - began:.1f} s")
        crash(b, rb, "cw1")
        began = time.monotonic()
        expect(hosts.locator('tr[data-host="hb"]')).to_have_attribute(
            "data-state", "down", timeout=20_000
        )
        expect(
            events.get_by_role("row", name=re.compile(r"host hb Down lease expired$"))
        ).to_be_visible()
        expect(cw1.get_by_role("cell").nth(0)).to_have_text("ha", timeout=40_000)
        expect(cw1.get_by_role("cell").nth(2)).to_have_text("running", timeout=20_000)
        expect(
            events.get_by_role("row", name=re.compile(r"domain cw1 Recovering hb -> ha$"))
        ).to_be_visible()
        expect(
            events.get_by_role("row", name=re.compile(r"domain cw1 Recovered ha$"))
        ).to_be_visible()
        expect(events.get_by_role("row", name=re.compile(r"domain cw1 Claimed ha"))).to_be_visible()
        print(f"hb down, cw1 recovered on ha and shown {time.monotonic() - began:.1f} s after")
        web.shot("cluster-hb-down")
        assert hosts_running("cw1", ra) == 1 and hosts_running("cw1", rb) == 0

        # cluster status: hosts, owners and HA state
        out = cli(ra, "cluster", "status").stdout
        print(out)
        assert "HA leader:    ha" in out and "Domains:      1 (1 HA, 1 running)" in out
        lines = [line.split() for line in out.splitlines()]
        first = lines.index(["Host", "State", "Free", "Load", "Owns"]) + 2  # after the rule
        assert lines[first][:3] == ["ha", "*", "up"]
        assert ["hb", "down", "-", "-", "-"] in lines
        assert ["cw1", "ha", "yes", "running"] in lines
        status = json.loads(cli(ra, "cluster", "status", "--json").stdout)
        assert status["leader"] == "ha"
        assert [(d["name"], d["owner"], d["ha"], d["state"]) for d in status["domains"]] == [
            ("cw1", "ha", True, "running")
        ]

        # the recovery was a job of ha's daemon
        jobs = web.daemon.get("/api/v1/jobs?all=true")
        recovered = [j for j in jobs if j["kind"] == "cluster-recover"]
        assert [(j["object"], j["state"]) for j in recovered] == [("domain/cw1", "completed")]

        # hb's daemon runs again: hb is up, cw1 stays on ha (nothing was fenced: it crashed)
        began = time.monotonic()
        b.start()
        expect(hosts.locator('tr[data-host="hb"]')).to_have_attribute(
            "data-state", "up", timeout=20_000
        )
        page.wait_for_timeout(2000)  # a recovery round of hb's daemon
        assert hosts_running("cw1", ra) == 1 and hosts_running("cw1", rb) == 0
        assert not [e for e in b.get("/api/v1/cluster/events") if e["event"] == "Fenced"]
        print(f"hb back and shown up in {time.monotonic() - began:.1f} s")
        web.shot("cluster-hb-back")
