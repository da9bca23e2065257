"""The cluster's changes as events (issue 16 item 6): the snapshot diff, the watch's rounds
against a fake etcd, the watchdog's fencing records, the status's JSON, and the daemon's
recent cluster events and recovery jobs (in-process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import pyvirt.api
from pyvirt.daemon.app import create_app
from pyvirt.daemon.cluster_agent import _run_job, publish
from pyvirt.daemon.context import CLUSTER_EVENTS, Daemon, DaemonConfig
from pyvirt.drivers.etcd import Entry, EtcdUnavailableError
from pyvirt.errors import OperationFailedError, PyvirtError
from pyvirt.service.cluster import keys, watchdog
from pyvirt.service.cluster.domains import ClusterDomain, DomainPlacementInfo
from pyvirt.service.cluster.membership import ClusterRecord, ClusterStatus
from pyvirt.service.cluster.status import status_from_json
from pyvirt.service.cluster.watch import ClusterWatch, HostView, Snapshot, diff
from pyvirt.state.paths import StatePaths

UP, DOWN = HostView("up", "u", False), HostView("down", "u", False)


def events(old: Snapshot, new: Snapshot, skip: str = "") -> list[tuple[str, str, str, str]]:
    return [(c.object, c.name, c.event, c.detail) for c in diff(old, new, skip_host=skip)]


def test_host_changes() -> None:
    old = Snapshot({"a": UP, "b": UP, "c": DOWN, "gone": UP}, {})
    new = Snapshot({"a": UP, "b": DOWN, "c": UP, "new": HostView("up", "", False)}, {})
    assert events(old, new) == [
        ("host", "b", "Down", "lease expired"),
        ("host", "c", "Up", "lease granted"),
        ("host", "gone", "Left", ""),
        ("host", "new", "Joined", "no address"),
    ]
    # this host's own Up/Down come from its heartbeat, not from the watch
    assert events(old, new, skip="b") == [e for e in events(old, new) if e[1] != "b"]
    assert events(new, new) == []


def test_maintenance_changes() -> None:
    maint = HostView("up", "u", True)
    assert events(Snapshot({"a": UP}, {}), Snapshot({"a": maint}, {})) == [
        ("host", "a", "Maintenance", "evacuated")
    ]
    assert events(Snapshot({"a": maint}, {}), Snapshot({"a": UP}, {})) == [
        ("host", "a", "Restored", "maintenance ended")
    ]


def test_owner_changes() -> None:
    old = Snapshot({}, {"d1": "a", "d2": "a"})
    new = Snapshot({}, {"d2": "b", "d3": "c"})
    changes = diff(old, new)
    assert [(c.name, c.event, c.detail) for c in changes] == [
        ("d1", "Released", "was a"),
        ("d2", "Claimed", "b (was a)"),
        ("d3", "Claimed", "c"),
    ]
    assert changes[1].data == {"domain": "d2", "owner": "b", "previous": "a"}


class FakeEtcd:
    """``get_prefix`` over a dict; ``down`` makes every read fail."""

    def __init__(self) -> None:
        self.kv: dict[str, str] = {}
        self.down = False
        self.reads = 0

    def get_prefix(self, prefix: str) -> list[Entry]:
        if self.down:
            raise EtcdUnavailableError("etcd did not answer")
        self.reads += 1
        return [Entry(k, v, 1, 1, 0) for k, v in sorted(self.kv.items()) if k.startswith(prefix)]

    def host(self, name: str, *, alive: bool = True, **extra: object) -> None:
        rec = {"name": name, "host_id": "x", "address": f"pyvirt+unix:///{name}", "joined": 1.0,
               "version": "1", "arch": "x86_64", "cpu_model": "", "cpu_flags": [], "cpus": 2,
               "memory_kib": 1024, "numa_cells": 1, **extra}  # fmt: skip
        self.kv[keys.host(name)] = json.dumps(rec)
        if alive:
            self.kv[keys.alive(name)] = json.dumps({"lease": 1, "since": 1.0, "pid": 1})
        else:
            self.kv.pop(keys.alive(name), None)


def test_watch_rounds() -> None:
    etcd = FakeEtcd()
    etcd.host("a")
    etcd.host("b")
    watch = ClusterWatch("a")
    assert watch.poll(etcd) == []  # type: ignore[arg-type]  # the first round: a baseline
    assert etcd.reads == 4  # hosts, alive, maintenance marks, owners: no busy reading
    etcd.host("b", alive=False)
    etcd.kv[keys.owner("web")] = json.dumps({"host": "a"})
    got = [(c.name, c.event) for c in watch.poll(etcd)]  # type: ignore[arg-type]
    assert got == [("b", "Down"), ("web", "Claimed")]
    # etcd unreachable: nothing reported, the last snapshot kept; the change shows later
    etcd.down = True
    etcd.host("b")
    with pytest.raises(PyvirtError):
        watch.poll(etcd)  # type: ignore[arg-type]
    etcd.down = False
    assert [(c.name, c.event) for c in watch.poll(etcd)] == [("b", "Up")]  # type: ignore[arg-type]
    etcd.host("a", alive=False)  # this host's own Down comes from its heartbeat
    assert watch.poll(etcd) == []  # type: ignore[arg-type]


def test_watchdog_records(tmp_path: Path) -> None:
    paths = StatePaths.from_root(tmp_path)
    paths.run.mkdir(parents=True)
    assert watchdog.take_fenced(paths) == []
    watchdog.record_fenced(paths, ["web1"])
    watchdog.record_fenced(paths, ["db1", "db2"])
    (paths.run / watchdog.FENCED).open("a").write("not json\n")
    taken = watchdog.take_fenced(paths)
    assert [names for _, names in taken] == [["web1"], ["db1", "db2"]]
    assert all(t > 0 for t, _ in taken)
    assert watchdog.take_fenced(paths) == []  # taken once
    assert not list(paths.run.glob("cluster-fenced*"))


def test_status_json_round_trip() -> None:
    dom = ClusterDomain("web1", "u-1", "", True, 131072, 1, 0.0)
    status = ClusterStatus(ClusterRecord("lab", 1.0, 8, 0.5), "ha", [], [],
                           [DomainPlacementInfo(dom, "hb", "running")], "ha")  # fmt: skip
    doc = status.to_json()
    assert doc["leader"] == "ha" and doc["domains"][0] == {
        "name": "web1", "uuid": "u-1", "ha": True, "memory_kib": 131072, "vcpus": 1,
        "owner": "hb", "state": "running",
    }  # fmt: skip
    back = status_from_json(json.loads(json.dumps(doc)))
    assert back.to_json() == doc


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    yield Daemon(DaemonConfig(StatePaths.from_root(tmp_path / "s")), conn)


def test_recent_cluster_events_route(daemon: Daemon) -> None:
    with TestClient(create_app(daemon)) as http:
        assert http.get("/api/v1/cluster/events").json() == []
        publish(daemon, "host", "hb", "Down", "lease expired", host="hb", state="down")
        publish(daemon, "domain", "web1", "Claimed", "ha", domain="web1", owner="ha")
        got = http.get("/api/v1/cluster/events").json()
        assert [(e["kind"], e["object"], e["name"], e["event"]) for e in got] == [
            ("cluster", "host", "hb", "Down"),
            ("cluster", "domain", "web1", "Claimed"),
        ]
        assert got[1]["data"] == {"domain": "web1", "owner": "ha"} and got[0]["seq"] > 0
        for i in range(CLUSTER_EVENTS + 5):
            publish(daemon, "host", f"h{i}", "Joined")
        got = http.get("/api/v1/cluster/events").json()
        assert len(got) == CLUSTER_EVENTS and got[-1]["name"] == f"h{CLUSTER_EVENTS + 4}"


def test_recovery_runs_as_a_job(daemon: Daemon) -> None:
    _run_job(daemon, "cluster-recover", "domain/web1", lambda: {"host": "hb"})
    (job,) = daemon.jobs.list()
    assert (job.kind, job.object, job.state, job.result) == (
        "cluster-recover", "domain/web1", "completed", {"host": "hb"},
    )  # fmt: skip

    def fails() -> object:
        raise OperationFailedError("cannot start web1 on hb", hint="see hb's log")

    with pytest.raises(OperationFailedError, match="cannot start web1 on hb") as err:
        _run_job(daemon, "cluster-recover", "domain/web1", fails)
    assert err.value.hint == "see hb's log"
    assert sorted(j.state for j in daemon.jobs.list()) == ["completed", "failed"]
