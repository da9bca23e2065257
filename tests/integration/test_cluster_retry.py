"""A recovery whose start fails is retried, and fencing and recovery are cluster-wide events
(issue 16): three pyvirtd on a real etcd on loopback and an HA guest on shared storage. Its
host crashes while its disk is away: every start fails after the claim, the claim is given
back and the leader tries again with a back-off (``RecoveryFailed`` … ``again in N s``); the
disk back, the guest runs again — not left stopped. Then the host running it hangs (the
hosts joined with ``--daemon-hold 0``: no hold of the lease): its watchdog fences the guest,
which restarts elsewhere, and the hung daemon, resumed, reports ``Fenced``. Every daemon's
event stream shows the leader's recovery events and the fenced host's ``Fenced``, with the
host they happened on (``origin``)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemonhelp import RunningDaemon
from tests.integration.clusterhelp import (
    cli,
    crash,
    etcd1,
    ha_cluster,
    wait_owner_running,
)
from tests.integration.etcdhelp import EtcdCluster

__all__ = ["etcd1"]  # a fixture

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(300)]

HOSTS = ("ha", "hb", "hc")


def _events(d: RunningDaemon) -> list[dict[str, Any]]:
    """The cluster events daemon *d* published (its own and those relayed to it)."""
    with contextlib.suppress(Exception):
        return list(d.get("/api/v1/cluster/events"))
    return []


def _wait_event(d: RunningDaemon, pred: Callable[[dict[str, Any]], bool], what: str,
                timeout: float = 40) -> dict[str, Any]:  # fmt: skip
    began = time.monotonic()
    while True:
        found = [e for e in _events(d) if pred(e)]
        if found:
            return found[0]
        assert time.monotonic() - began < timeout, f"{what}: not seen within {timeout} s"
        time.sleep(0.2)


def _leader(d: RunningDaemon) -> str:
    """The host leading recovery, as *d* sees it."""
    with contextlib.suppress(Exception):
        return str(d.get("/api/v1/cluster/status").get("leader") or "")
    return ""


def test_a_failed_recovery_is_retried_and_events_reach_every_host(
    tmp_path: Path, etcd1: EtcdCluster, tiny_image: Any
) -> None:
    roots = {h: tmp_path / h for h in HOSTS}
    disk = tmp_path / "shared.img"
    away = tmp_path / "shared.img.away"
    with contextlib.ExitStack() as stack:
        # --daemon-hold 0: a hung daemon's watchdog does not hold the lease (the default
        # holds it 2 minutes), so the hang below fences its guest, as a strict host wants
        d = ha_cluster(stack, tmp_path, roots, etcd1.endpoints, tiny_image, "r1", "ha",
                       cluster_args=("--daemon-hold", "0"))  # fmt: skip

        # ha crashes while r1's disk is away: the recovery's starts fail
        crash(d["ha"], roots["ha"], "r1")
        disk.rename(away)
        crashed = time.monotonic()

        def recovery_failed(e: dict[str, Any]) -> bool:
            return bool(e["event"] == "RecoveryFailed" and e["name"] == "r1")

        failed = [_wait_event(d[h], recovery_failed, f"RecoveryFailed on {h}", 60)
                  for h in ("hb", "hc")]  # fmt: skip
        print(f"RecoveryFailed seen {time.monotonic() - crashed:.1f} s after the crash: "
              f"{failed[0]['detail']!r}")  # fmt: skip
        assert "again in" in failed[0]["detail"]
        leader = _leader(d["hb"])
        assert leader, "no leader among hb and hc"
        other = "hc" if leader == "hb" else "hb"
        relayed = next(e for e in failed if e["data"].get("origin"))
        assert relayed["data"]["origin"] == leader  # the other host saw the leader's event
        # no host keeps a claim it could not start: nobody runs it, nobody owns it for long
        time.sleep(1)
        assert all("running" not in cli(roots[h], "domstate", "r1", check=False).stdout
                   for h in ("hb", "hc"))  # fmt: skip

        # the disk is back: the next attempt (after the back-off) starts it
        away.rename(disk)
        back = time.monotonic()
        host, took = wait_owner_running({h: roots[h] for h in ("hb", "hc")}, "r1", 60)
        print(f"r1 running on {host} {took:.1f} s after its disk came back "
              f"({time.monotonic() - crashed:.1f} s after the crash)")  # fmt: skip
        recovered = _wait_event(d[other], lambda e: e["event"] == "Recovered"
                                and e["name"] == "r1", f"Recovered on {other}")  # fmt: skip
        assert recovered["data"]["origin"] == leader and recovered["detail"] == host
        assert took < 40, f"retried only {took:.1f} s after the disk came back"
        del back

        # the host running r1 hangs: its watchdog fences r1, which runs elsewhere; resumed,
        # the daemon reports Fenced, and every other daemon shows it
        os.kill(d[host].pid, signal.SIGSTOP)
        try:
            host2, took2 = wait_owner_running({h: roots[h] for h in ("hb", "hc")}, "r1", 60,
                                              not_on=host)  # fmt: skip
        finally:
            os.kill(d[host].pid, signal.SIGCONT)
        print(f"r1 fenced on the hung {host}, running on {host2} {took2:.1f} s later")
        fenced = _wait_event(d[host2], lambda e: e["event"] == "Fenced" and e["name"] == "r1",
                             f"Fenced of {host} on {host2}")  # fmt: skip
        assert fenced["data"]["origin"] == host and "watchdog" in fenced["detail"]
