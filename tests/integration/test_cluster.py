"""The cluster on etcd (issue 16): three pyvirtd (three state directories) and a real
three-member etcd on loopback. Membership: init, join, list, status, leave; a host's lease
follows its daemon (kill -9 → down within the TTL; a restart within the TTL goes on with the
same lease); names are claimed atomically; the cluster keeps working with one etcd member down
and says clearly when etcd has no quorum."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemonhelp import pyvirtd
from tests.integration.etcdhelp import EtcdCluster, etcd_cluster
from tests.integration.nethelp import guest_xml

TTL = 8  # seconds: a dead host goes down quickly; a daemon restart (~3 s here) fits in it
RENEW = 0.5


def cli(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}
    res = subprocess.run([sys.executable, "-m", "pyvirt.cli", *args], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    if check:
        assert res.returncode == 0, f"pyvirt {' '.join(args)}: {res.stderr}"
    return res


def hosts(root: Path) -> dict[str, dict[str, Any]]:
    return {h["name"]: h for h in json.loads(cli(root, "cluster", "list", "--json").stdout)}


def wait_state(root: Path, host: str, state: str, timeout: float) -> float:
    began = time.monotonic()
    while hosts(root).get(host, {}).get("state") != state:
        assert time.monotonic() - began < timeout, f"{host} not {state} within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - began


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    with etcd_cluster(tmp_path / "etcd") as cluster:
        yield cluster


@pytest.fixture
def etcd1(tmp_path: Path) -> Iterator[EtcdCluster]:
    with etcd_cluster(tmp_path / "etcd", size=1) as cluster:
        yield cluster


def test_membership_leases_and_quorum(tmp_path: Path, etcd: EtcdCluster) -> None:
    roots = [tmp_path / n for n in ("a", "b", "c")]
    with pyvirtd(roots[0]) as a, pyvirtd(roots[1]) as b, pyvirtd(roots[2]):
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


def test_bad_input(tmp_path: Path, etcd: EtcdCluster) -> None:
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
    with pyvirtd(ra) as a, pyvirtd(rb) as b:
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
