"""A recovery whose start fails is retried, not left stopped (issue 16): the chosen host gives
the ownership back when the guest does not run there, and the leader tries again after a
back-off — on another host while one fits, else on the same one."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from pyvirt.drivers.etcd import Etcd
from pyvirt.errors import InvalidStateError, OperationFailedError
from pyvirt.service.cluster import domains, keys, recovery
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.domains import ClusterDomain
from pyvirt.service.cluster.recovery import BACKOFF, BACKOFF_MAX, Attempts, RecoveryManager
from tests.unit.cluster.test_fenced import LEASE, FakeEtcd

CONFIG = ClusterConfig(cluster="lab", host="ha", endpoints=("http://127.0.0.1:2379",))


class ClosingEtcd(FakeEtcd):
    def close(self) -> None:
        pass


def test_the_back_off_doubles_up_to_its_cap() -> None:
    tried = Attempts()
    waits = [tried.failed("hb", 100.0) for _ in range(8)]
    assert waits[:3] == [BACKOFF, 2 * BACKOFF, 4 * BACKOFF]
    assert waits[-1] == BACKOFF_MAX and tried.retry_at == 100.0 + BACKOFF_MAX
    assert tried.avoid(101.0) == ["hb"] and tried.avoid(100.0 + recovery.FAILED_AVOID) == []


def _lost(etcd: FakeEtcd, name: str, last: str) -> tuple[dict[str, ClusterDomain], dict[str, Any]]:
    """An HA domain that ran on *last* and has no owner: what ``_recover`` reads."""
    record = ClusterDomain(name, "u", "<domain/>", True, 1024, 1, 0.0)
    etcd.kv[keys.domain(name)] = (record.encode(), 0)
    etcd.kv[keys.placed(name)] = (domains.placed_value(last, "running"), 0)
    placed = {e.key[len(keys.PLACED) :]: e for e in etcd.get_prefix(keys.PLACED)}
    return {name: record}, placed


@pytest.fixture
def fits(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Placement over the hosts in the returned list (first not avoided wins)."""
    up = ["hb", "hc"]

    def place(hosts: Any, need: int, *, avoid: Any = (), checks: Any = (),
              preferences: Any = ()) -> Any:  # fmt: skip
        for h in up:
            if h not in avoid:
                return SimpleNamespace(host=h)
        raise InvalidStateError("no host fits", hint="add one")

    monkeypatch.setattr(recovery, "list_hosts", lambda etcd: [])
    monkeypatch.setattr(recovery, "domain_checks", lambda etcd, dom: [])
    monkeypatch.setattr(recovery, "place", place)
    return up


def _leader(etcd: FakeEtcd, broken: set[str], events: list[tuple[str, str, str]],
            tried: list[str]) -> RecoveryManager:  # fmt: skip
    def start_on(name: str, host: str) -> None:
        tried.append(host)
        if host in broken:
            raise OperationFailedError(f"cannot open disk of {name}", hint="check the path")

    return RecoveryManager(
        cast(Etcd, etcd), CONFIG, running=set, start_on=start_on, lease=lambda: LEASE,
        on_event=lambda e, n, d: events.append((e, n, d)),
    )  # fmt: skip


def _recover_now(manager: RecoveryManager, dom: dict[str, ClusterDomain],
                 placed: dict[str, Any]) -> None:  # fmt: skip
    for name in dom:  # past the grace, and past any back-off
        manager._missing_since[name] = 0.0
        if name in manager._attempts:
            manager._attempts[name].retry_at = 0.0
    manager._recover(dom, {}, placed)


def test_a_failed_recovery_start_is_retried_on_another_host(fits: list[str]) -> None:
    etcd, events, tried = FakeEtcd(), [], []  # type: ignore[var-annotated]
    dom, placed = _lost(etcd, "g1", "ha")
    manager = _leader(etcd, {"hb"}, events, tried)
    _recover_now(manager, dom, placed)
    assert tried == ["hb"] and events[-1][0] == "RecoveryFailed"
    assert events[-1][2].startswith("hb: cannot open disk of g1; again in 2 s")
    # within the back-off: no new attempt
    manager._recover(dom, {}, placed)
    assert tried == ["hb"]
    # after it: placement avoids hb, where it failed
    _recover_now(manager, dom, placed)
    assert tried == ["hb", "hc"] and events[-1] == ("Recovered", "g1", "hc")
    assert "g1" not in manager._attempts


def test_with_no_other_host_the_same_one_is_tried_again(fits: list[str]) -> None:
    fits.remove("hc")
    etcd, events, tried = FakeEtcd(), [], []  # type: ignore[var-annotated]
    broken = {"hb"}
    dom, placed = _lost(etcd, "g2", "ha")
    manager = _leader(etcd, broken, events, tried)
    _recover_now(manager, dom, placed)
    _recover_now(manager, dom, placed)
    assert tried == ["hb", "hb"] and "again in 4 s" in events[-1][2]
    broken.clear()  # the path is back
    _recover_now(manager, dom, placed)
    assert tried == ["hb", "hb", "hb"] and events[-1] == ("Recovered", "g2", "hb")


def test_no_host_fitting_is_retried_too(fits: list[str]) -> None:
    fits.clear()
    etcd, events, tried = FakeEtcd(), [], []  # type: ignore[var-annotated]
    dom, placed = _lost(etcd, "g3", "ha")
    manager = _leader(etcd, set(), events, tried)
    _recover_now(manager, dom, placed)
    assert tried == [] and events[-1][0] == "RecoveryFailed"
    fits.append("hc")
    _recover_now(manager, dom, placed)
    assert events[-1] == ("Recovered", "g3", "hc")


def _conn(tmp_path: Path, running: bool) -> Any:
    return SimpleNamespace(
        paths=SimpleNamespace(run=tmp_path),
        domains=SimpleNamespace(live_record=lambda name, cleanup: object() if running else None),
    )


@pytest.mark.parametrize("running", [False, True])
def test_the_host_gives_a_failed_start_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, running: bool
) -> None:
    etcd = ClosingEtcd()
    etcd.kv[keys.owner("g4")] = (json.dumps({"host": "ha"}), LEASE)
    etcd.kv[keys.placed("g4")] = (domains.placed_value("ha", "running"), 0)
    monkeypatch.setattr(domains, "read_config", lambda paths: CONFIG)
    monkeypatch.setattr(domains, "open_etcd", lambda config: etcd)
    domains._recent_ha["g4"] = 1.0
    gave = domains.give_up_failed_start(_conn(tmp_path, running), "g4")
    assert "g4" not in domains._recent_ha
    # given back only when it does not run here (a start that failed after all)
    assert gave is not running
    assert (keys.owner("g4") in etcd.kv) is running
    assert json.loads(etcd.kv[keys.placed("g4")][0])["state"] == "running"


def test_another_hosts_claim_is_not_given_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    etcd = ClosingEtcd()
    etcd.kv[keys.owner("g5")] = (json.dumps({"host": "hb"}), LEASE)
    monkeypatch.setattr(domains, "read_config", lambda paths: CONFIG)
    monkeypatch.setattr(domains, "open_etcd", lambda config: etcd)
    assert not domains.give_up_failed_start(_conn(tmp_path, False), "g5")
    assert keys.owner("g5") in etcd.kv
