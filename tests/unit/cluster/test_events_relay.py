"""Cluster-wide events (issue 16): a host's fencing, recovery and evacuation events go to
etcd under a short lease and every other member's relay hands them on from its watch — not
its own, not the past, and those made while etcd did not answer once it does."""

from __future__ import annotations

import threading
import time
from typing import Any, cast

from pyvirt.drivers.etcd import Entry, Etcd, EtcdUnavailableError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.events import EVENT_TTL, ClusterEvent, EventRelay


class WatchableEtcd:
    """One store shared by several relays: puts with leases, ranged reads with a revision,
    and a watch that blocks until a put (or an abort)."""

    def __init__(self) -> None:
        self.kv: dict[str, tuple[str, int, int]] = {}  # key -> value, lease, create revision
        self.revision = 1
        self.leases: list[int] = []
        self.down = False
        self.changed = threading.Condition()

    def client(self) -> Any:
        return _Client(self)


class _Client:
    def __init__(self, store: WatchableEtcd) -> None:
        self.store = store
        self.aborted = threading.Event()

    def _check(self) -> None:
        if self.store.down:
            raise EtcdUnavailableError("etcd is down", hint="wait")

    def lease_grant(self, ttl: int) -> int:
        self._check()
        assert ttl == EVENT_TTL
        self.store.leases.append(len(self.store.leases) + 1)
        return self.store.leases[-1]

    def put(self, key: str, value: str, *, lease: int = 0) -> None:
        self._check()
        with self.store.changed:
            self.store.revision += 1
            self.store.kv[key] = (value, lease, self.store.revision)
            self.store.changed.notify_all()

    def get_prefix_at(self, prefix: str) -> tuple[list[Entry], int]:
        self._check()
        found = [
            Entry(k, v, rev, rev, lease)
            for k, (v, lease, rev) in sorted(self.store.kv.items())
            if k.startswith(prefix)
        ]
        return found, self.store.revision

    def watch(self, prefix: str, start_revision: int, *, idle: float) -> bool:
        with self.store.changed:
            return self.store.changed.wait_for(
                lambda: self.store.revision >= start_revision or self.aborted.is_set(),
                timeout=idle,
            )

    def abort_watch(self) -> None:
        self.aborted.set()
        with self.store.changed:
            self.store.changed.notify_all()

    def close(self) -> None:
        pass


def _relay(store: WatchableEtcd, host: str, got: list[ClusterEvent]) -> EventRelay:
    return EventRelay(cast(Etcd, store.client()), cast(Etcd, store.client()), host, got.append)


def _wait(pred: Any, timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_an_event_reaches_the_other_hosts_only() -> None:
    store = WatchableEtcd()
    got = {h: [] for h in ("ha", "hb", "hc")}  # type: ignore[var-annotated]
    # an event from before the relays started: the cluster's past, not reported
    old = ClusterEvent("hc", "domain", "g0", "Recovered", "hb")
    store.kv[keys.event("hc", "0")] = (old.encode(), 1, 1)
    relays = {h: _relay(store, h, got[h]) for h in got}
    for r in relays.values():
        r.start()
    try:
        _wait(lambda: all(r._seen is not None for r in relays.values()))
        relays["ha"].announce("domain", "g1", "Fenced", "lease not renewed in time",
                              {"domain": "g1", "host": "ha"})  # fmt: skip
        relays["hb"].announce("host", "hb", "Evacuating", "50 %", {"percent": 50})
        _wait(lambda: len(got["hc"]) == 2 and got["ha"] and got["hb"])
    finally:
        for r in relays.values():
            r.stop()
    assert [(e.host, e.event) for e in got["ha"]] == [("hb", "Evacuating")]
    assert [(e.host, e.event) for e in got["hb"]] == [("ha", "Fenced")]
    # two hosts' writers: in either order
    assert sorted((e.host, e.name, e.event) for e in got["hc"]) == [
        ("ha", "g1", "Fenced"),
        ("hb", "hb", "Evacuating"),
    ]
    fenced = next(e for e in got["hc"] if e.event == "Fenced")
    assert fenced.detail == "lease not renewed in time" and fenced.data["host"] == "ha"
    assert all(lease for _, lease, _ in store.kv.values())  # every event bound to a lease


def test_events_made_while_etcd_is_down_are_written_later() -> None:
    store = WatchableEtcd()
    got: list[ClusterEvent] = []
    hb = _relay(store, "hb", got)
    hb.poll()  # hb has read the past
    ha = _relay(store, "ha", [])
    store.down = True
    ha.announce("domain", "g2", "Fenced", "lease not renewed in time")
    ha.announce("domain", "g3", "Fenced", "lease not renewed in time")
    try:
        ha.flush()
        raise AssertionError("flush wrote to an etcd that is down")
    except EtcdUnavailableError:
        pass
    assert ha.written == 0
    store.down = False
    ha.flush()
    assert ha.written == 2
    hb.poll()
    assert [e.name for e in got] == ["g2", "g3"]
    hb.poll()  # nothing new: nothing handed on twice
    assert len(got) == 2


def test_an_event_round_trips() -> None:
    ev = ClusterEvent("ha", "domain", "g1", "RecoveryFailed", "hb: no disk", {"a": 1}, 5.0)
    assert ClusterEvent.decode(ev.encode()) == ev
