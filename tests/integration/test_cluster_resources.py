"""Cluster networks and shared pools, and placement rules (issue 16), with two pyvirtd and a
real etcd: a network and a pool defined once for the cluster appear on both hosts (and go
when removed); a domain needing a pool only one host has starts there, and one needing a
network only one host has is placed there; two anti-affine domains land on different hosts
and a third of the group is refused, naming the rule; a pool a running domain uses cannot be
removed."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api
from pyvirt.drivers.etcd import Etcd
from pyvirt.errors import AlreadyExistsError, InvalidStateError, NotFoundError, PyvirtError
from tests.daemonhelp import pyvirtds
from tests.integration.clusterhelp import cli, etcd1, no_watchdog_left
from tests.integration.etcdhelp import EtcdCluster
from tests.integration.nethelp import guest_xml

__all__ = ["etcd1", "no_watchdog_left"]  # fixtures

pytestmark = pytest.mark.usefixtures("no_watchdog_left")  # end this test's watchdogs

NET = """<network><name>{name}</name><bridge name='{bridge}'/>
<ip address='{ip}' prefix='24'/></network>"""


def until(what: str, check: Callable[[], bool], timeout: float = 15.0) -> float:
    """Wait until *check* holds (the agents react to etcd's watch, not at once)."""
    began = time.monotonic()
    while not check():
        assert time.monotonic() - began < timeout, f"{what}: not within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - began


def nets(conn: Any) -> set[str]:
    return {n.name for n in conn.networks.list()}


def pools(conn: Any, *, active: bool = True) -> set[str]:
    return {p.name for p in conn.pools.list(all=not active)}


def running(conn: Any, name: str) -> bool:
    return str(conn.domains.get(name).state()[0]) == "running"


def volume_disk(pool: str, vol: str) -> str:
    return (
        "<disk type='volume' device='disk'><driver name='qemu' type='raw'/>"
        f"<source pool='{pool}' volume='{vol}'/><target dev='vda' bus='virtio'/></disk>"
    )


def destroy_all(conns: list[Any], names: list[str]) -> None:
    for conn in conns:
        for name in names:
            with contextlib.suppress(PyvirtError):
                conn.domains.get(name).destroy()


@pytest.mark.qemu
def test_cluster_networks_pools_and_placement_rules(
    tmp_path: Path, etcd1: EtcdCluster, tiny_image: Any
) -> None:
    ra, rb = tmp_path / "a", tmp_path / "b"
    with contextlib.ExitStack() as stack:
        a, b = stack.enter_context(pyvirtds({"a": ra, "b": rb})).values()
        for name in ("needy", "w1", "w2"):
            stack.callback(lambda n=name: [cli(r, "destroy", n, check=False) for r in (ra, rb)])
        cli(ra, "cluster", "init", "--etcd", etcd1.endpoints, "--host", "ha",
            "--address", a.uri, "--ttl", "8", "--renew", "0.5")  # fmt: skip
        cli(rb, "cluster", "join", "--etcd", etcd1.endpoints, "--host", "hb", "--address", b.uri)

        ca, cb = pyvirt.api.open(a.uri), pyvirt.api.open(b.uri)
        conns = {"ha": ca, "hb": cb}

        # a cluster network (not started: pyvirt starts it on first use) and a shared pool
        (tmp_path / "cnet.xml").write_text(NET.format(name="cnet", bridge="pvc9", ip="10.231.9.1"))
        out = cli(ra, "cluster", "net-define", str(tmp_path / "cnet.xml")).stdout
        assert out.strip() == "Network 'cnet' defined in the cluster"
        shared = tmp_path / "shared"
        (tmp_path / "shared.xml").write_text(
            f"<pool type='dir'><name>shared</name><target><path>{shared}</path></target></pool>"
        )
        cli(rb, "cluster", "pool-define", str(tmp_path / "shared.xml"), "--autostart")
        took = until("cnet on hb", lambda: "cnet" in nets(cb))
        print(f"cluster network defined on the other host {took:.1f} s later")
        until("cnet on ha", lambda: "cnet" in nets(ca))
        for conn in (ca, cb):
            until("shared active", lambda c=conn: "shared" in pools(c))
        listed = json.loads(cli(rb, "cluster", "resources", "--json").stdout)
        assert [(r["kind"], r["name"], r["autostart"]) for r in listed] == [
            ("network", "cnet", False), ("pool", "shared", True)
        ]  # fmt: skip
        with pytest.raises(AlreadyExistsError, match="already has a network named 'cnet'"):
            cb.cluster.resource_define("network", (tmp_path / "cnet.xml").read_text())
        with pytest.raises(NotFoundError, match="has no pool named 'nosuch'"):
            ca.cluster.resource_undefine("pool", "nosuch")

        # a pool only hb has: a domain with a volume in it starts there (placement's choice)
        local = tmp_path / "onlyb"
        cb.pools.define(
            f"<pool type='dir'><name>onlyb</name><target><path>{local}</path></target></pool>"
        )
        cb.pools.get("onlyb").start(build=True)
        cb.pools.get("onlyb").create_volume("n.img", 1024 * 1024, format="raw")
        ca.cluster.define(guest_xml(tiny_image, "needy", volume_disk("onlyb", "n.img"), dhcp=False))

        def placed_on(conn: Any, name: str, host: str) -> bool:
            with contextlib.suppress(PyvirtError):
                return str(conn.cluster.place(name).host) == host
            return False

        until("onlyb in hb's inventory", lambda: placed_on(ca, "needy", "hb"))
        assert {c.host: c.why for c in ca.cluster.place("needy").candidates}["ha"] == (
            "lacks pool 'onlyb'"
        )
        assert cli(ra, "cluster", "start", "needy").stdout.strip() == "Domain 'needy' started on hb"
        assert running(cb, "needy")

        # a network only ha has (a local one, autostart: usable there): placed on ha
        net, _ = ca.networks.define(NET.format(name="onlya", bridge="pvc8", ip="10.231.8.1"))
        net.set_autostart(True)
        nic = "<interface type='network'><source network='onlya'/></interface>"
        cb.cluster.define(guest_xml(tiny_image, "nic1", nic, dhcp=False))
        until("onlya in ha's inventory", lambda: placed_on(cb, "nic1", "ha"))
        why = {c.host: c.why for c in cb.cluster.place("nic1").candidates}
        assert why == {"ha": "", "hb": "lacks network 'onlya'"}
        cb.cluster.undefine("nic1")

        # anti-affinity: w1 and w2 (volumes on the shared pool) never on one host
        for name in ("w1", "w2", "w3"):
            ca.pools.get("shared").create_volume(f"{name}.img", 1024 * 1024, format="raw")
            disk = volume_disk("shared", f"{name}.img")
            xml = guest_xml(tiny_image, name, disk, dhcp=False)
            if name == "w1":
                (tmp_path / "w1.xml").write_text(xml)
                cli(ra, "cluster", "define", str(tmp_path / "w1.xml"), "--anti-affinity", "web")
            else:
                ca.cluster.define(xml, anti_affinity="web")
        first = cli(ra, "cluster", "start", "w1").stdout.split()[-1]
        second = cli(rb, "cluster", "start", "w2").stdout.split()[-1]
        assert {first, second} == {"ha", "hb"}, (first, second)
        assert running(conns[first], "w1") and running(conns[second], "w2")
        w1 = next(i for i in cb.cluster.domains() if i.domain.name == "w1")
        assert (w1.domain.anti_affinity, w1.owner) == ("web", first)
        res = cli(ra, "cluster", "start", "w3", check=False)
        assert res.returncode == 1, res.stdout
        assert "anti-affinity group 'web': w1 there" in res.stderr
        assert "anti-affinity group 'web': w2 there" in res.stderr
        # the same group as a preference (--soft): both hosts fit, each with the rule it breaks
        (tmp_path / "w4.xml").write_text(guest_xml(tiny_image, "w4", "", dhcp=False))
        cli(ra, "cluster", "define", str(tmp_path / "w4.xml"), "--anti-affinity", "web", "--soft")
        why = {c.host: (c.fits, c.why) for c in cb.cluster.place("w4").candidates}
        assert why == {first: (True, "soft anti-affinity group 'web': w1 there"),
                       second: (True, "soft anti-affinity group 'web': w2 there")}, why  # fmt: skip
        ca.cluster.undefine("w4")
        # evacuation keeps the hard rule: w1 (shut off, owned by `first`) may not go to
        # `second`, where w2 is: it stays there, the rule named, and the command fails
        conns[first].domains.get("w1").destroy()
        res = cli(ra, "cluster", "evacuate", first, check=False)
        assert res.returncode == 1, res.stdout + res.stderr
        assert f"{second}: anti-affinity group 'web': w2 there" in res.stdout, res.stdout
        assert next(i for i in cb.cluster.domains() if i.domain.name == "w1").owner == first
        cli(ra, "cluster", "restore", first)

        # the shared pool cannot go while a running domain uses it
        res = cli(rb, "cluster", "pool-undefine", "shared", check=False)
        assert res.returncode == 1 and "cluster pool 'shared' is used by" in res.stderr
        conns[second].domains.get("w2").destroy()
        for name, host in (("w1", first), ("w2", second)):
            conns[host].cluster.release(name)
        for name in ("w1", "w2", "w3"):
            ca.cluster.undefine(name)

        def undefined() -> bool:
            try:
                cb.cluster.resource_undefine("pool", "shared")
            except InvalidStateError:  # the hosts' inventories still show w1/w2 running
                return False
            return True

        until("no users published", undefined)
        assert cli(ra, "cluster", "net-undefine", "cnet").stdout.strip() == (
            "Network 'cnet' removed from the cluster"
        )
        for conn in (ca, cb):
            until("cnet gone", lambda c=conn: "cnet" not in nets(c))
            until("shared gone", lambda c=conn: "shared" not in pools(c, active=False))
        assert ca.cluster.resources() == []
        assert shared.is_dir()  # undefining a pool keeps its storage


def test_the_watch_wakes_on_a_change_idles_and_aborts(etcd1: EtcdCluster) -> None:
    """What the members' agents wait on: a long poll on etcd's watch stream."""
    etcd, other = Etcd([etcd1.endpoints]), Etcd([etcd1.endpoints])
    _, revision = etcd.get_prefix_at("/t/")
    out: dict[str, Any] = {}

    def watch() -> None:
        began = time.monotonic()
        out["changed"] = etcd.watch("/t/", revision + 1, idle=30)
        out["took"] = time.monotonic() - began

    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.5)
    other.put("/t/a", "1")
    thread.join(10)
    assert out["changed"] is True and out["took"] < 5
    # a change made before the watch starts is not missed (it goes on from the revision read)
    assert etcd.watch("/t/", revision + 1, idle=1) is True
    _, revision = etcd.get_prefix_at("/t/")
    began = time.monotonic()
    assert etcd.watch("/t/", revision + 1, idle=1) is False  # nothing changed
    assert time.monotonic() - began < 5
    thread = threading.Thread(target=watch)
    thread.start()
    time.sleep(0.5)
    etcd.abort_watch()  # what a stopping daemon does
    thread.join(5)
    assert not thread.is_alive() and out["changed"] is False and out["took"] < 5
    etcd.close()
    other.close()
