"""The watchdog's hold after a clean stop of pyvirtd (issue 16): it renews the lease, moving
the fence deadline only as far as each successful renewal allows, and stops renewing when the
hold runs out, the lease is gone, or the daemon is back."""

from __future__ import annotations

import time

from pyvirt.drivers.etcd import EtcdUnavailableError
from pyvirt.service.cluster.fence import FENCE_MARGIN
from pyvirt.service.cluster.watchdog import Holder


class FakeEtcd:
    def __init__(self, ttls: list[int | None]) -> None:
        self.ttls = ttls  # None: etcd does not answer
        self.calls = 0
        self.closed = False

    def lease_keepalive(self, lease: int) -> int:
        assert lease == 0x42
        ttl = self.ttls[min(self.calls, len(self.ttls) - 1)]
        self.calls += 1
        if ttl is None:
            raise EtcdUnavailableError("etcd did not answer")
        return ttl

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


def test_the_daemon_coming_back_stops_it() -> None:
    etcd = FakeEtcd([8])
    h = Holder(etcd, 0x42, renew=0.02, seconds=30.0, deadline=time.monotonic()).start()
    time.sleep(0.1)
    h.stop()
    wait_done(h, 1.0)
    assert etcd.closed
