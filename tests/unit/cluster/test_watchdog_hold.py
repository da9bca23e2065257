"""The watchdog's hold of the host's lease (issue 16): it renews the lease while pyvirtd pets
and for a while after its last pet (a clean stop, a kill -9), moving the fence deadline only as
far as each successful renewal allows, publishing it for pyvirtd, giving the recovery
leadership up when pyvirtd is silent, and stopping when the hold runs out, the lease is gone,
or it is stopped."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.etcd import Compare, EtcdUnavailableError
from pyvirt.service.cluster import keys, watchdog
from pyvirt.service.cluster.fence import FENCE_MARGIN
from pyvirt.service.cluster.watchdog import Holder, read_held


class FakeEtcd:
    def __init__(self, ttls: list[int | None]) -> None:
        self.ttls = ttls  # None: etcd does not answer
        self.calls = 0
        self.closed = False
        self.txns: list[tuple[list[Compare], list[Any]]] = []

    def lease_keepalive(self, lease: int) -> int:
        assert lease == 0x42
        ttl = self.ttls[min(self.calls, len(self.ttls) - 1)]
        self.calls += 1
        if ttl is None:
            raise EtcdUnavailableError("etcd did not answer")
        return ttl

    def transaction(self, compare: list[Compare], success: list[Any]) -> bool:
        self.txns.append((compare, success))
        return True

    def close(self) -> None:
        self.closed = True


def wait_done(h: Holder, timeout: float = 3.0) -> None:
    end = time.monotonic() + timeout
    while h.active and time.monotonic() < end:
        time.sleep(0.01)
    assert not h.active


def test_renewals_push_the_deadline_until_the_hold_runs_out() -> None:
    etcd = FakeEtcd([8])
    began = time.monotonic()
    h = Holder(etcd, 0x42, renew=0.05, seconds=0.3, deadline=began + 1).start()
    wait_done(h)
    assert etcd.calls >= 3 and etcd.closed
    # the last renewal's start + TTL - margin: later than the daemon's deadline, never more
    assert began + 8 - FENCE_MARGIN < h.deadline <= time.monotonic() + 8 - FENCE_MARGIN


def test_failed_renewals_leave_the_deadline_where_it_was() -> None:
    etcd = FakeEtcd([None])
    deadline = time.monotonic() + 1
    h = Holder(etcd, 0x42, renew=0.05, seconds=0.2, deadline=deadline).start()
    wait_done(h)
    assert etcd.calls >= 2 and h.deadline == deadline


def test_a_lost_lease_ends_the_hold_at_once() -> None:
    etcd = FakeEtcd([8, 0])
    h = Holder(etcd, 0x42, renew=0.01, seconds=5.0, deadline=time.monotonic()).start()
    wait_done(h, 1.0)
    assert etcd.calls == 2 and etcd.closed


def test_stop_ends_it() -> None:
    etcd = FakeEtcd([8])
    h = Holder(etcd, 0x42, renew=0.02, seconds=30.0, deadline=time.monotonic()).start()
    time.sleep(0.1)
    h.stop()
    wait_done(h, 1.0)
    assert etcd.closed


def test_pets_keep_it_renewing_and_their_absence_ends_it() -> None:
    etcd = FakeEtcd([8])
    h = Holder(etcd, 0x42, renew=0.02, seconds=0.2, deadline=time.monotonic()).start()
    for _ in range(10):  # 0.5 s of pets: longer than the hold
        time.sleep(0.05)
        h.petted(time.monotonic())
        assert h.active
    wait_done(h)  # no more pets: it ends 0.2 s after the last one
    assert etcd.calls >= 20 and etcd.closed


def test_the_deadline_is_published_for_its_lease(tmp_path: Path) -> None:
    held = tmp_path / "cluster-lease-held"
    h = Holder(FakeEtcd([8]), 0x42, renew=0.02, seconds=0.1, deadline=time.monotonic(),
               held=held).start()  # fmt: skip
    wait_done(h)
    assert read_held(held, 0x42) == h.deadline
    assert read_held(held, 0x43) is None  # another lease's deadline is not ours
    assert read_held(tmp_path / "none", 0x42) is None


def test_a_silent_daemon_gives_up_the_leadership_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watchdog, "SILENT", 0.1)
    etcd = FakeEtcd([8])
    h = Holder(etcd, 0x42, renew=0.02, seconds=30.0, deadline=time.monotonic()).start()
    time.sleep(0.3)
    assert len(etcd.txns) == 1  # only when this host's lease holds the leader key
    compare, success = etcd.txns[0]
    assert compare == [Compare(keys.LEADER, "lease", "EQUAL", 0x42)]
    assert [op.key for op in success] == [keys.LEADER]
    h.petted(time.monotonic())  # the daemon is back, then silent again: once more
    time.sleep(0.3)
    h.stop()
    wait_done(h)
    assert len(etcd.txns) == 2


def test_pyvirtd_counts_the_deadline_the_watchdog_reached(tmp_path: Path) -> None:
    from pyvirt.service.cluster.config import ClusterConfig
    from pyvirt.service.cluster.heartbeat import Heartbeat

    held = tmp_path / "cluster-lease-held"
    config = ClusterConfig("lab", "ha", ("http://127.0.0.1:1",))
    hb = Heartbeat(None, config, held_file=held)  # type: ignore[arg-type]
    assert hb.fence_deadline is None  # no lease
    now = time.monotonic()
    hb.lease, hb.expires_at = 0x42, now + 8
    assert hb.fence_deadline == now + 8 - FENCE_MARGIN
    watchdog.write_held(held, 0x42, now + 20)  # the watchdog renewed later (pyvirtd hung)
    assert hb.fence_deadline == now + 20
    watchdog.write_held(held, 0x42, now + 1)  # an older one never moves the deadline back
    assert hb.fence_deadline == now + 8 - FENCE_MARGIN
    watchdog.write_held(held, 0x43, now + 30)  # another lease's
    assert hb.fence_deadline == now + 8 - FENCE_MARGIN


def test_pets_start_follow_and_end_the_hold(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[Holder] = []

    def holder(paths: object, lease: int, deadline: float, seconds: float) -> Holder:
        h = Holder(FakeEtcd([8]) if lease == 0x42 else _Etcd43(), lease, renew=0.02,
                   seconds=seconds, deadline=deadline).start()  # fmt: skip
        made.append(h)
        return h

    monkeypatch.setattr(watchdog, "_holder", holder)
    follow = watchdog._follow
    soon = time.monotonic() + 5
    assert follow(None, None, {"deadline": soon}, soon, ["g1"]) is None  # no lease: no hold
    h = follow(None, None, {"deadline": soon, "lease": 0x42}, soon, ["g1"])
    assert h is made[0] and h.seconds == watchdog.STOP_HOLD
    h.last_pet -= 1.0
    again = follow(None, h, {"deadline": soon + 1, "lease": 0x42}, soon + 1, ["g1"])
    assert again is h and len(made) == 1 and time.monotonic() - h.last_pet < 0.5
    assert h.deadline >= soon + 1
    stop = follow(None, h, {"deadline": soon, "lease": 0x42, "hold": 30}, soon, ["g1"])
    assert stop is h and h.seconds == 30  # a clean stop's hold
    other = follow(None, h, {"deadline": soon, "lease": 0x43}, soon, ["g1"])  # a new lease
    assert other is made[1]
    wait_done(h)
    assert follow(None, other, {"deadline": soon, "lease": 0x43}, soon, []) is None  # no guest
    wait_done(other)
    past = time.monotonic() - 1  # past the deadline: fenced, nothing to hold any more
    assert follow(None, None, {"deadline": past, "lease": 0x42}, past, ["g1"]) is None
    assert len(made) == 2


class _Etcd43(FakeEtcd):
    def __init__(self) -> None:
        super().__init__([8])

    def lease_keepalive(self, lease: int) -> int:
        assert lease == 0x43
        self.calls += 1
        return 8


def test_the_daemon_hold_is_a_host_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pyvirt.errors import InvalidConfigError
    from pyvirt.service.cluster.config import ClusterConfig
    from pyvirt.service.cluster.membership import _check_hold

    base = {"cluster": "lab", "host": "ha", "endpoints": ["http://127.0.0.1:1"]}
    assert ClusterConfig.from_json(base).daemon_hold == watchdog.STOP_HOLD  # older files
    config = ClusterConfig.from_json({**base, "daemon_hold": 0})
    assert config.daemon_hold == 0 and config.to_json()["daemon_hold"] == 0
    _check_hold(0)
    _check_hold(3600)
    with pytest.raises(InvalidConfigError, match="daemon hold of -1 s is out of range"):
        _check_hold(-1)
    # no hold: pets never start one (the daemon's own renewals count alone) ...
    monkeypatch.setattr(watchdog, "_holder", lambda *a: pytest.fail("no hold wanted"))
    soon = time.monotonic() + 5
    pet = {"deadline": soon, "lease": 0x42}
    assert watchdog._follow(None, None, pet, soon, ["g1"], 0.0) is None  # type: ignore[arg-type]
    # ... but a clean stop's hold is kept
    made: list[float] = []
    monkeypatch.setattr(watchdog, "_holder", lambda p, lease, d, seconds: made.append(seconds))
    watchdog._follow(None, None, {**pet, "hold": 120}, soon, ["g1"], 0.0)  # type: ignore[arg-type]
    assert made == [120.0]
