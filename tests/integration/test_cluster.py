"""The cluster on etcd (issue 16): three pyvirtd (three state directories) and a real
three-member etcd on loopback. Membership: init, join, list, status, leave; a host's lease
follows its daemon (kill -9 → down within the TTL; a restart within the TTL goes on with the
same lease); names are claimed atomically; the cluster keeps working with one etcd member down
and says clearly when etcd has no quorum."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.daemonhelp import pyvirtds
from tests.integration.clusterhelp import (
    cli,
    crash,
    destroy_everywhere,
    etcd,
    etcd1,
    ha_cluster,
    hosts,
    hosts_running,
    no_watchdog_left,
    owner_of,
    qemus,
    wait_owner_running,
    wait_state,
)
from tests.integration.etcdhelp import EtcdCluster
from tests.integration.nethelp import guest_xml

__all__ = ["etcd", "etcd1", "no_watchdog_left"]  # fixtures

pytestmark = pytest.mark.usefixtures("no_watchdog_left")

TTL = 8  # seconds: a dead host goes down quickly; a daemon restart (~3 s here) fits in it
RENEW = 0.5


def test_membership_leases_and_quorum(tmp_path: Path, etcd: EtcdCluster) -> None:
    roots = [tmp_path / n for n in ("a", "b", "c")]
    with pyvirtds(dict(enumerate(roots))) as d:
        a, b = d[0], d[1]
        out = cli(roots[0], "cluster", "init", "--etcd", etcd.endpoints, "--host", "ha",
                  "--name", "lab", "--ttl", str(TTL), "--renew", str(RENEW)).stdout  # fmt: skip
        assert out.strip() == "Host ha created cluster lab"
        # a second cluster in the same etcd is refused, naming the first
        res = cli(roots[1], "cluster", "init", "--etcd", etcd.endpoints, "--host", "hb",
                  check=False)  # fmt: skip
        assert res.returncode == 1 and "already holds cluster 'lab'" in res.stderr
        assert not (roots[1] / "lib" / "daemon" / "cluster.json").exists()
        # another machine (state directory) cannot take a member's name
        res = cli(roots[1], "cluster", "join", "--etcd", etcd.endpoints, "--host", "ha",
                  check=False)  # fmt: skip
        assert res.returncode == 1 and "registered by another machine" in res.stderr
        cli(roots[1], "cluster", "join", "--etcd", etcd.endpoints, "--host", "hb")
        cli(roots[2], "cluster", "join", "--etcd", etcd.endpoints.split(",")[2], "--host", "hc")
        listed = hosts(roots[2])
        assert {n: h["state"] for n, h in listed.items()} == {"ha": "up", "hb": "up", "hc": "up"}
        assert listed["hb"]["cpus"] >= 1 and listed["hb"]["memory_kib"] > 0
        assert listed["hb"]["free_kib"] > 0 and listed["hb"]["cpu_flags"]
        table = cli(roots[0], "cluster", "list").stdout
        assert table.splitlines()[0].split() == ["Host", "State", "Up", "CPUs", "Memory",
                                                 "Free", "Address"]  # fmt: skip
        status = json.loads(cli(roots[1], "cluster", "status", "--json").stdout)
        assert status["cluster"]["name"] == "lab" and status["host"] == "hb"
        assert status["cluster"]["ttl"] == TTL  # joined hosts take the cluster's timings
        assert len(status["etcd"]) == 3 and all(m["healthy"] for m in status["etcd"])
        # joining twice is refused
        res = cli(roots[1], "cluster", "join", "--etcd", etcd.endpoints, check=False)
        assert res.returncode == 1 and "already in cluster 'lab' as 'hb'" in res.stderr

        # kill -9 hb's daemon: its lease expires, hb goes down within the TTL (+ a renewal)
        since = hosts(roots[0])["hb"]["up_since"]
        b.kill()
        took = wait_state(roots[0], "hb", "down", TTL + 5)
        print(f"hb down {took:.1f} s after its daemon was killed (TTL {TTL} s)")
        b.start()
        wait_state(roots[0], "hb", "up", 30)
        assert hosts(roots[0])["hb"]["up_since"] > since  # a new lease
        # a restart within the TTL goes on with the same lease: never seen down
        since = hosts(roots[0])["hb"]["up_since"]
        b.kill()
        began = time.monotonic()
        b.start()
        wait_state(roots[0], "hb", "up", TTL)
        print(f"hb's daemon restarted in {time.monotonic() - began:.1f} s")
        assert hosts(roots[0])["hb"]["state"] == "up"
        assert hosts(roots[0])["hb"]["up_since"] == since

        # one etcd member lost: everything keeps working (quorum 2 of 3)
        etcd.members[0].stop()
        cli(roots[2], "cluster", "leave")
        assert set(hosts(roots[0])) == {"ha", "hb"}
        status = json.loads(cli(roots[0], "cluster", "status", "--json").stdout)
        assert sorted(m["healthy"] for m in status["etcd"]) == [False, True, True]
        assert "quorum 2: yes" in cli(roots[0], "cluster", "status").stdout
        time.sleep(TTL + 1)
        assert {h["state"] for h in hosts(roots[0]).values()} == {"up"}

        # quorum lost: a clear error naming etcd; the daemons keep running
        etcd.members[1].stop()
        res = cli(roots[0], "cluster", "list", check=False)
        assert res.returncode == 1 and "etcd" in res.stderr, res.stderr
        assert a.proc.poll() is None and b.proc.poll() is None
        # leaving anyway (--force) removes the local membership
        cli(roots[1], "cluster", "leave", "--force")
        assert not (roots[1] / "lib" / "daemon" / "cluster.json").exists()
        res = cli(roots[1], "cluster", "status", check=False)
        assert res.returncode == 1 and "not in a cluster" in res.stderr


def test_bad_input(tmp_path: Path, etcd1: EtcdCluster) -> None:
    etcd = etcd1  # one member: nothing here needs a quorum of three
    root = tmp_path / "x"
    for args, message in [
        (("--etcd", "not a url"), "is not a URL"),
        (("--etcd", "http://127.0.0.1:1", "--host", "../x"), "invalid cluster host name"),
        (("--etcd", etcd.endpoints, "--ttl", "6", "--renew", "5"), "out of range"),
    ]:
        res = cli(root, "cluster", "init", *args, check=False)
        assert res.returncode == 1 and message in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) <= 2  # error + hint, no traceback
    res = cli(root, "cluster", "join", "--etcd", "http://127.0.0.1:1", check=False)
    assert res.returncode == 1 and "etcd did not answer" in res.stderr
    res = cli(root, "cluster", "join", "--etcd", etcd.endpoints, check=False)
    assert res.returncode == 1 and "holds no pyvirt cluster" in res.stderr
    assert not (root / "lib" / "daemon" / "cluster.json").exists()


@pytest.mark.qemu
def test_a_cluster_domain_runs_on_its_owner_only(
    tmp_path: Path, etcd1: EtcdCluster, tiny_image: Any
) -> None:
    ra, rb = tmp_path / "a", tmp_path / "b"
    with contextlib.ExitStack() as stack:
        a, b = stack.enter_context(pyvirtds({"a": ra, "b": rb})).values()
        stack.callback(destroy_everywhere, {"a": ra, "b": rb}, "c1")
        stack.callback(destroy_everywhere, {"a": ra}, "local1")
        cli(ra, "cluster", "init", "--etcd", etcd1.endpoints, "--host", "ha",
            "--address", a.uri, "--ttl", str(TTL), "--renew", str(RENEW))  # fmt: skip
        cli(rb, "cluster", "join", "--etcd", etcd1.endpoints, "--host", "hb", "--address", b.uri)
        xml = tmp_path / "c1.xml"
        uuid = "<uuid>6f1b7c1e-3a1d-4c55-9d2e-0c1c0c1c0c11</uuid>"
        xml.write_text(
            guest_xml(tiny_image, "c1", "", dhcp=False).replace("<memory", uuid + "<memory")
        )
        assert (
            "defined in the cluster (HA)" in cli(ra, "cluster", "define", str(xml), "--ha").stdout
        )
        res = cli(rb, "cluster", "define", str(xml), check=False)
        assert res.returncode == 1 and "already has a domain named 'c1'" in res.stderr
        domains = json.loads(cli(rb, "cluster", "domains", "--json").stdout)
        assert [(d["name"], d["owner"], d["ha"], d["memory_kib"]) for d in domains] == [
            ("c1", "", True, 128 * 1024)
        ]
        place = cli(ra, "cluster", "place", "c1").stdout
        assert "Chosen: h" in place and "Why not" in place

        # started on hb through hb's daemon: defined there from the cluster, owned by hb
        assert cli(ra, "cluster", "start", "c1", "--host", "hb").stdout.strip() == (
            "Domain 'c1' started on hb"
        )
        assert "running" in cli(rb, "domstate", "c1").stdout
        assert json.loads(cli(ra, "cluster", "domains", "--json").stdout)[0]["owner"] == "hb"
        # the same domain defined locally on ha cannot start there: hb owns it
        cli(ra, "define", str(xml))
        res = cli(ra, "start", "c1", check=False)
        assert res.returncode == 1 and "owned by host 'hb'" in res.stderr, res.stderr
        assert "shut off" in cli(ra, "domstate", "c1").stdout
        res = cli(ra, "cluster", "start", "c1", "--host", "ha", check=False)
        assert res.returncode == 1 and "owned by host 'hb'" in res.stderr
        res = cli(ra, "cluster", "undefine", "c1", check=False)
        assert res.returncode == 1 and "owned by host 'hb'" in res.stderr
        # a running domain keeps its owner; once it is off and released, ha may take it
        res = cli(rb, "cluster", "release", "c1", check=False)
        assert res.returncode == 1 and "running on this host" in res.stderr
        cli(rb, "destroy", "c1")
        assert cli(rb, "cluster", "release", "c1").stdout.strip() == "Domain 'c1' released"
        cli(ra, "start", "c1")
        assert json.loads(cli(rb, "cluster", "domains", "--json").stdout)[0]["owner"] == "ha"
        res = cli(rb, "start", "c1", check=False)
        assert res.returncode == 1 and "owned by host 'ha'" in res.stderr
        cli(ra, "destroy", "c1")
        cli(ra, "cluster", "release", "c1")
        # placement picks an up host; an unknown one is named
        res = cli(ra, "cluster", "start", "c1", "--host", "nosuch", check=False)
        assert res.returncode == 1 and "no host named 'nosuch'" in res.stderr
        where = cli(rb, "cluster", "start", "c1").stdout.split()[-1]
        assert where in ("ha", "hb")
        owner_root = ra if where == "ha" else rb
        assert "running" in cli(owner_root, "domstate", "c1").stdout
        cli(owner_root, "destroy", "c1")
        cli(owner_root, "cluster", "release", "c1")
        cli(ra, "cluster", "undefine", "c1")
        assert json.loads(cli(ra, "cluster", "domains", "--json").stdout) == []
        # a domain of this host only is not the cluster's business
        (tmp_path / "local.xml").write_text(guest_xml(tiny_image, "local1", "", dhcp=False))
        cli(ra, "define", str(tmp_path / "local.xml"))
        cli(ra, "start", "local1")
        cli(ra, "destroy", "local1")


class Sampler:
    """Counts, every 50 ms, the hosts running one guest (never more than one)."""

    def __init__(self, name: str, under: Path) -> None:
        self.name = name
        self.under = under
        self.most = 0
        self.seen = ""  # when and where it first ran twice
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.wait(0.05):
            found = qemus(self.name, self.under)
            hosts = {pidfile for _, pidfile in found}
            if len(hosts) > 1 and not self.seen:
                self.seen = f"{time.strftime('%H:%M:%S')}: {found}"
            self.most = max(self.most, len(hosts))

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


@pytest.mark.qemu
def test_ha_guest_fails_over_and_never_runs_twice(
    tmp_path: Path, etcd: EtcdCluster, tiny_image: Any
) -> None:
    roots = {h: tmp_path / h for h in ("ha", "hb", "hc")}
    with contextlib.ExitStack() as stack:
        d = ha_cluster(stack, tmp_path, roots, etcd.endpoints, tiny_image, "h1", "hb", "16M")
        with Sampler("h1", tmp_path) as sampler:
            # a crashed host: its daemon, its watchdog and its QEMU die at once
            crash(d["hb"], roots["hb"], "h1")
            host, took = wait_owner_running(roots, "h1", 40, not_on="hb")
            print(f"failover: h1 running again on {host} {took:.1f} s after hb crashed")
            # the target (<= 15 s with the defaults) is measured on a quiet machine and
            # recorded in docs/cluster.md; beside the rest of the suite a QEMU start alone can
            # take 7 s, so this bound only catches a recovery that did not happen in time
            assert took <= 25, f"failover took {took:.1f} s (target 15 s, bound 25 s)"
            # the crashed host comes back: it does not start h1 again
            d["hb"].start()
            wait_state(roots["ha"], "hb", "up", 30)
            time.sleep(2)
            assert "running" not in cli(roots["hb"], "domstate", "h1", check=False).stdout
            assert hosts_running("h1", tmp_path) == 1

            # pyvirtd killed (-9) and restarted later than the fence deadline (TTL - 2 s)
            # and the TTL: its watchdog holds the lease meanwhile, so h1 runs on, never
            # fenced, not restarted elsewhere: the same QEMU all along
            pids = {pid for pid, _ in qemus("h1", roots[host])}
            host2 = next(h for h in roots if h != host)
            since = hosts(roots[host2])[host]["up_since"]
            d[host].kill()
            time.sleep(TTL + 2)
            assert hosts(roots[host2])[host]["state"] == "up"
            assert owner_of(roots[host2], "h1") == host
            assert {pid for pid, _ in qemus("h1", tmp_path)} == pids
            d[host].start()
            assert "running" in cli(roots[host], "domstate", "h1").stdout
            time.sleep(2)  # a recovery round of the restarted daemon
            assert hosts(roots[host2])[host]["up_since"] == since  # the same lease
            assert owner_of(roots[host2], "h1") == host
            assert {pid for pid, _ in qemus("h1", tmp_path)} == pids
        assert sampler.most == 1, f"h1 ran on two hosts at once: {sampler.seen}"
        log = (roots[host] / "log" / "cluster-watchdog.log").read_text()
        assert "no pet from pyvirtd" in log and "fencing" not in log, log
