"""Fencing bookkeeping without etcd or QEMU (issue 16): the fenced marks, the recovery
manager handing back a guest fenced while its lease lived on, and the fence timer fencing
again after a renewal moved its deadline."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, cast

from pyvirt.drivers.etcd import Compare, Delete, Entry, Etcd, Put
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.domains import ClusterDomain, placed_value
from pyvirt.service.cluster.fence import FENCE_MARGIN, fenced, forget_fenced, mark_fenced
from pyvirt.service.cluster.heartbeat import Heartbeat
from pyvirt.service.cluster.recovery import RecoveryManager
from pyvirt.state.paths import StatePaths

CONFIG = ClusterConfig(cluster="lab", host="hb", endpoints=("http://127.0.0.1:1",))


class FakeEtcd:
    """The few calls the recovery manager makes, on a dict (key → (value, lease))."""

    def __init__(self) -> None:
        self.kv: dict[str, tuple[str, int]] = {}

    def _entry(self, key: str) -> Entry:
        value, lease = self.kv[key]
        return Entry(key, value, 1, 1, lease)

    def get(self, key: str) -> Entry | None:
        return self._entry(key) if key in self.kv else None

    def get_prefix(self, prefix: str) -> list[Entry]:
        return [self._entry(k) for k in sorted(self.kv) if k.startswith(prefix)]

    def transaction(self, compare: list[Compare], success: list[Put | Delete]) -> bool:
        for c in compare:
            if c.target == "lease":
                held = c.key in self.kv and self.kv[c.key][1] == c.value
            elif c.target == "create":
                held = (c.key in self.kv) == (c.value != 0)
            else:
                raise AssertionError(f"unexpected compare {c}")
            if not held:
                return False
        for op in success:
            if isinstance(op, Put):
                self.kv[op.key] = (op.value, op.lease)
            else:
                self.kv.pop(op.key, None)
        return True


def _paths(tmp: Path) -> StatePaths:
    return StatePaths.from_root(tmp)


def _manager(etcd: FakeEtcd, tmp: Path, running: set[str], events: list[Any]) -> RecoveryManager:
    manager = RecoveryManager(
        cast(Etcd, etcd), CONFIG, running=lambda: running, start_on=lambda n, h: None,
        lease=lambda: 7, on_event=lambda *e: events.append(e), paths=_paths(tmp),
    )  # fmt: skip
    manager.ready = True  # a later round (a daemon's first gives up interrupted starts)
    return manager


def _cluster_with_p1(etcd: FakeEtcd) -> None:
    dom = ClusterDomain("p1", "u", "<domain/>", True, 131072, 1, 0.0)
    etcd.kv[keys.domain("p1")] = (dom.encode(), 0)
    etcd.kv[keys.owner("p1")] = (json.dumps({"host": "hb"}), 7)
    etcd.kv[keys.placed("p1")] = (placed_value("hb", "running"), 0)
    etcd.kv[keys.LEADER] = (json.dumps({"host": "hc"}), 9)  # another host leads


def test_the_fenced_marks(tmp_path: Path) -> None:
    paths = _paths(tmp_path)
    assert fenced(paths) == {}
    mark_fenced(paths, "a")
    mark_fenced(paths, "b")
    mark_fenced(paths, "a")
    assert sorted(fenced(paths)) == ["a", "b"]
    forget_fenced(paths, "a")
    assert sorted(fenced(paths)) == ["b"]


def test_a_guest_fenced_while_the_lease_lived_is_handed_back(tmp_path: Path) -> None:
    etcd, events = FakeEtcd(), []  # type: list[Any]
    _cluster_with_p1(etcd)
    mark_fenced(_paths(tmp_path), "p1")
    _manager(etcd, tmp_path, set(), events).round()
    # no owner any more, still "running" where it ran: the leader restarts it
    assert keys.owner("p1") not in etcd.kv
    assert json.loads(etcd.kv[keys.placed("p1")][0])["state"] == "running"
    assert events == [("HandedBack", "p1", "fenced while the lease lived on")]
    assert fenced(_paths(tmp_path)) == {}


def test_a_guest_stopped_otherwise_stays_owned_and_stopped(tmp_path: Path) -> None:
    etcd, events = FakeEtcd(), []  # type: list[Any]
    _cluster_with_p1(etcd)
    _manager(etcd, tmp_path, set(), events).round()
    assert json.loads(etcd.kv[keys.owner("p1")][0])["host"] == "hb"
    assert json.loads(etcd.kv[keys.placed("p1")][0])["state"] == "stopped"
    assert events == []


def test_a_fenced_guest_running_again_or_owned_elsewhere_is_left_alone(tmp_path: Path) -> None:
    etcd, events = FakeEtcd(), []  # type: list[Any]
    _cluster_with_p1(etcd)
    mark_fenced(_paths(tmp_path), "p1")
    _manager(etcd, tmp_path, {"p1"}, events).round()
    assert etcd.kv[keys.owner("p1")][1] == 7 and events == []
    etcd.kv[keys.owner("p1")] = (json.dumps({"host": "hc"}), 9)
    forget_fenced(_paths(tmp_path), "p1")
    mark_fenced(_paths(tmp_path), "p1")
    _manager(etcd, tmp_path, set(), events).round()
    assert etcd.kv[keys.owner("p1")][1] == 9 and events == []


def test_the_fence_timer_fences_again_after_a_renewal(tmp_path: Path) -> None:
    fences: list[float] = []
    hb = Heartbeat(cast(Etcd, None), CONFIG, on_fence=lambda: fences.append(time.monotonic()))
    hb.lease = 1
    hb.expires_at = time.monotonic() + FENCE_MARGIN  # the deadline is now
    timer = threading.Thread(target=hb._fence_timer, daemon=True)
    timer.start()
    try:
        deadline = time.monotonic() + 5
        while not fences:
            assert time.monotonic() < deadline, "not fenced"
            time.sleep(0.02)
        time.sleep(0.3)
        assert len(fences) == 1  # once per deadline
        hb.expires_at = time.monotonic() + FENCE_MARGIN + 0.2  # renewed, then lost again
        while len(fences) < 2:
            assert time.monotonic() < deadline, "not fenced after the renewal"
            time.sleep(0.02)
    finally:
        hb._stop.set()
        timer.join(2)
