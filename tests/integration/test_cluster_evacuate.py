"""Maintenance mode (issue 16): ``cluster evacuate HOST`` live-migrates a running HA cluster
guest (shared disk, a ticker on its serial console) to the other host and moves the ownership
of a shut-off one; the guest counts on at the destination without a reboot and never runs on
two hosts; the evacuated host is in maintenance (listed, refused by placement and by starts)
until ``cluster restore``. Evacuating the last host with nowhere to go is refused, nothing
moved. Then the clean-stop rule: a daemon stopped cleanly with an HA guest running hands its
lease to its watchdog, so the guest keeps running (not fenced, not restarted elsewhere) past
the fence deadline, and a restarted daemon goes on with the same lease. Two pyvirtd (two
state directories on this machine, ``pyvirt+unix://`` addresses) and one etcd member."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import kill_leftovers
from tests.daemonhelp import pyvirtds
from tests.integration.clusterhelp import (
    cli,
    destroy_everywhere,
    etcd1,
    hosts,
    qemus,
    stop_watchdogs,
)
from tests.integration.nethelp import guest_xml
from tests.integration.test_cluster import RENEW, TTL
from tests.integration.test_migrate_live import Ticks

__all__ = ["etcd1"]  # a fixture

pytestmark = pytest.mark.qemu

TICKER = (
    "(i=0; while :; do read u r < /proc/uptime; echo TICK $i $u; i=$((i+1)); usleep 50000; "
    "done) > /dev/console 2>&1 &"
)


@pytest.fixture
def base() -> Iterator[Path]:
    """The hosts' state roots live here: a short path QEMU's user can reach (a migration's
    unix socket is bound in the destination's state directory; pytest's tmp_path is not)."""
    root = Path(tempfile.mkdtemp(prefix="pvev", dir="/tmp"))
    root.chmod(0o711)  # the QEMU user traverses it to the state roots (which pyvirt sets up)
    yield root
    for host in ("ha", "hb"):
        kill_leftovers(root / host)
    shutil.rmtree(root, ignore_errors=True)


def owners(root: Path) -> dict[str, str]:
    listed = json.loads(cli(root, "cluster", "domains", "--json").stdout)
    return {d["name"]: d["owner"] for d in listed}


def wait_ticks(ticks: Ticks, above: int, timeout: float) -> None:
    """Wait until *ticks* saw a counter above *above*."""
    began = time.monotonic()
    while max((t[1] for t in ticks.seen), default=-1) <= above:
        assert time.monotonic() - began < timeout, f"no tick above {above} in {timeout} s"
        time.sleep(0.1)


def test_evacuate_moves_guests_off_and_restore_ends_maintenance(
    base: Path,
    etcd1: Any,
    tiny_image: Any,
) -> None:
    roots = {h: base / h for h in ("ha", "hb")}
    disk = base / "shared.img"  # "shared storage": one file both hosts see
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk), "16M"], check=True)
    disk_xml = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>")  # fmt: skip
    ticks = {h: Ticks() for h in roots}  # the ticker's lines from each host's console
    with contextlib.ExitStack() as stack:
        stack.callback(stop_watchdogs, list(roots.values()))  # after the daemons stopped
        d = stack.enter_context(pyvirtds(roots))
        stack.callback(destroy_everywhere, roots, "e1")
        stack.callback(destroy_everywhere, roots, "e2")
        for t in ticks.values():
            stack.callback(t.stop)
        cli(roots["ha"], "cluster", "init", "--etcd", etcd1.endpoints, "--host", "ha",
            "--address", d["ha"].uri, "--ttl", str(TTL), "--renew", str(RENEW))  # fmt: skip
        cli(roots["hb"], "cluster", "join", "--etcd", etcd1.endpoints, "--host", "hb",
            "--address", d["hb"].uri)  # fmt: skip
        for name, devices, run in (("e1", disk_xml, TICKER), ("e2", "", None)):
            xml = base / f"{name}.xml"
            xml.write_text(guest_xml(tiny_image, name, devices, run=run, dhcp=False))
            cli(roots["ha"], "cluster", "define", str(xml), *(["--ha"] if name == "e1" else []))
            cli(roots["ha"], "cluster", "start", name, "--host", "ha")
        cli(roots["ha"], "destroy", "e2")  # shut off, still owned by ha
        assert owners(roots["hb"]) == {"e1": "ha", "e2": "ha"}
        for h, t in ticks.items():
            t.follow(roots[h], "e1")
        wait_ticks(ticks["ha"], 10, 60)

        # bad input first: nothing marked
        res = cli(roots["hb"], "cluster", "evacuate", "nosuch", check=False)
        assert res.returncode == 1 and "cluster has no host named 'nosuch'" in res.stderr

        # evacuate ha through hb's daemon (a job there): e1 moves live, e2's ownership moves
        began = time.monotonic()
        res = cli(roots["hb"], "cluster", "evacuate", "ha", "--verbose", check=False)
        took = time.monotonic() - began
        out = res.stdout
        assert res.returncode == 0, out + res.stderr
        assert res.stderr.endswith("Evacuation: [100 %]\n"), res.stderr  # the job's progress
        wait_ticks(ticks["hb"], max(t[1] for t in ticks["ha"].seen) + 20, 30)
        print(f"evacuate ha: {took:.1f} s\n{out}")
        lines = out.splitlines()
        assert lines[0] == "Host ha is in maintenance"
        rows = {ln.split()[0]: " ".join(ln.split()[1:]) for ln in lines[3:] if ln.strip()}
        assert rows == {"e1": "moved to hb", "e2": "owner moved to hb"}, out
        assert owners(roots["ha"]) == {"e1": "hb", "e2": "hb"}
        assert "running" in cli(roots["hb"], "domstate", "e1").stdout
        # every member's event stream shows the evacuation hb's daemon ran (relayed by etcd)
        seen: list[str] = []
        for _ in range(100):
            seen = [f"{e['event']} {e['detail']} {e['data'].get('origin', '')}"
                    for e in d["ha"].get("/api/v1/cluster/events")
                    if e["object"] == "host" and e["name"] == "ha"]  # fmt: skip
            if "Evacuated 2 moved, 0 failed hb" in seen:
                break
            time.sleep(0.1)
        assert "Evacuating 0 % hb" in seen and "Evacuated 2 moved, 0 failed hb" in seen, seen
        assert len({p for _, p in qemus("e1", base)}) == 1
        # the same guest, never running on both hosts: the counter goes on at hb from where
        # it stopped at ha (no line counted on both, none lost to a reboot), uptime too
        for t in ticks.values():
            t.stop()
        on_a = sorted(t[1:] for t in ticks["ha"].seen)
        on_b = sorted(t[1:] for t in ticks["hb"].seen)
        assert on_a[-1][0] >= 10 and on_a[-1][0] < on_b[0][0], (on_a[-3:], on_b[:3])
        assert on_b[0][1] >= on_a[-1][1]  # uptime: no reboot

        # ha is in maintenance: listed, placement refuses it, a start there is refused
        listed = hosts(roots["hb"])
        assert listed["ha"]["maintenance"] is True and listed["hb"]["maintenance"] is False
        assert "up (maintenance)" in cli(roots["ha"], "cluster", "list").stdout
        assert "in maintenance: ha" in cli(roots["hb"], "cluster", "status").stdout
        place = cli(roots["ha"], "cluster", "place", "e2").stdout
        assert any(ln.split()[:2] == ["ha", "no"] and "maintenance" in ln
                   for ln in place.splitlines()), place  # fmt: skip
        res = cli(roots["hb"], "cluster", "start", "e2", "--host", "ha", check=False)
        assert res.returncode == 1 and "host 'ha' is in maintenance" in res.stderr, res.stderr
        assert "restore ha" in res.stderr

        # the last host with nowhere to go: refused, nothing marked or moved
        res = cli(roots["ha"], "cluster", "evacuate", "hb", check=False)
        assert res.returncode == 1 and "no other cluster host can take host 'hb'" in res.stderr
        assert "ha: maintenance" in res.stderr, res.stderr
        assert hosts(roots["ha"])["hb"]["maintenance"] is False
        assert owners(roots["ha"]) == {"e1": "hb", "e2": "hb"}
        assert {pf for _, pf in qemus("e1", base)} == {pf for _, pf in qemus("e1", roots["hb"])}

        # restore: ha is out of maintenance, nothing moves back
        out = cli(roots["ha"], "cluster", "restore", "ha").stdout
        assert out.startswith("Host ha is out of maintenance (no guest moves back")
        assert hosts(roots["hb"])["ha"]["maintenance"] is False
        place = cli(roots["ha"], "cluster", "place", "e2").stdout
        assert any(ln.split()[:2] == ["ha", "yes"] for ln in place.splitlines()), place
        assert cli(roots["hb"], "cluster", "restore", "ha").stdout.strip() == (
            "Host ha was not in maintenance"
        )

        # the clean-stop rule: hb's daemon stops cleanly with HA guest e1 running; its
        # watchdog renews the lease, so well past the fence deadline (TTL - 2 s) e1 still
        # runs on hb, owned by hb, not restarted on ha (which leads recovery); the restarted
        # daemon goes on with the same lease
        since = hosts(roots["ha"])["hb"]["up_since"]
        pids = {p for p, _ in qemus("e1", roots["hb"])}
        assert d["hb"].stop()
        time.sleep(TTL + 2)
        assert hosts(roots["ha"])["hb"]["state"] == "up"
        assert owners(roots["ha"])["e1"] == "hb"
        assert {p for p, _ in qemus("e1", base)} == pids
        watchdog_log = (roots["hb"] / "log" / "cluster-watchdog.log").read_text()
        assert "pyvirtd stopped; renewing lease" in watchdog_log, watchdog_log
        assert "fencing" not in watchdog_log
        d["hb"].start()
        assert "running" in cli(roots["hb"], "domstate", "e1").stdout
        assert hosts(roots["ha"])["hb"]["up_since"] == since
        assert {p for p, _ in qemus("e1", base)} == pids
