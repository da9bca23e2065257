"""What a host does with the HA guests it fenced (issue 16): the fencers mark them, and a
host that kept its lease after all gives their ownership up so the leader restarts them; the
fencers' list includes an HA guest claimed here before the next round lists it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, cast

import pytest

from pyvirt.drivers.etcd import Compare, Delete, Entry, Etcd, Put
from pyvirt.service.cluster import domains, fence, keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.domains import ClusterDomain
from pyvirt.service.cluster.recovery import RecoveryManager
from pyvirt.state.paths import StatePaths
from tests.fakeqmp import FakeQmp

LEASE = 0x51


class FakeEtcd:
    """Keys in a dict; transactions check ``lease`` and ``create`` comparisons."""

    def __init__(self) -> None:
        self.kv: dict[str, tuple[str, int]] = {}

    def get_prefix(self, prefix: str) -> list[Entry]:
        return [
            Entry(k, v, 1, 1, lease) for k, (v, lease) in sorted(self.kv.items())
            if k.startswith(prefix)
        ]  # fmt: skip

    def get(self, key: str) -> Entry | None:
        found = self.kv.get(key)
        return Entry(key, found[0], 1, 1, found[1]) if found else None

    def transaction(self, compare: list[Compare], success: list[Put | Delete]) -> bool:
        for c in compare:
            held = self.kv.get(c.key)
            if c.target == "lease" and (held is None or held[1] != c.value):
                return False
            if c.target == "create" and held is not None:
                return False
        for op in success:
            if isinstance(op, Put):
                self.kv[op.key] = (op.value, op.lease)
            else:
                self.kv.pop(op.key, None)
        return True


def _manager(tmp_path: Path, etcd: FakeEtcd, running: set[str]) -> RecoveryManager:
    config = ClusterConfig(cluster="lab", host="ha", endpoints=("http://127.0.0.1:2379",))
    return RecoveryManager(
        cast(Etcd, etcd), config, running=lambda: running, start_on=lambda n, h: None,
        lease=lambda: LEASE, paths=StatePaths.from_root(tmp_path),
    )  # fmt: skip


def _cluster_with(etcd: FakeEtcd, name: str) -> None:
    record = ClusterDomain(name, "u", "<domain/>", True, 1024, 1, 0.0)
    etcd.kv[keys.domain(name)] = (record.encode(), 0)
    etcd.kv[keys.owner(name)] = (json.dumps({"host": "ha"}), LEASE)
    etcd.kv[keys.placed(name)] = (domains.placed_value("ha", "running"), 0)


def _placed(etcd: FakeEtcd, name: str) -> Any:
    return json.loads(etcd.kv[keys.placed(name)][0])


def test_a_fenced_guest_is_given_up_once_dead(tmp_path: Path) -> None:
    etcd = FakeEtcd()
    _cluster_with(etcd, "g1")
    paths = StatePaths.from_root(tmp_path)
    running = {"g1"}
    manager = _manager(tmp_path, etcd, running)
    manager.round()
    assert manager.ready and manager.ha_here == ["g1"]
    fence.mark_fenced(paths, "g1")
    assert set(fence.fenced(paths)) == {"g1"}
    manager.round()  # still has a run directory: kept, nothing given up yet
    assert keys.owner("g1") in etcd.kv and set(fence.fenced(paths)) == {"g1"}
    running.clear()  # reaped
    manager.round()
    assert keys.owner("g1") not in etcd.kv  # the leader (this host here) may restart it
    assert _placed(etcd, "g1")["state"] == "running"
    assert fence.fenced(paths) == {}


def test_a_stopped_guest_that_was_not_fenced_stays_owned(tmp_path: Path) -> None:
    etcd = FakeEtcd()
    _cluster_with(etcd, "g2")
    running = {"g2"}
    manager = _manager(tmp_path, etcd, running)
    manager.round()
    running.clear()  # stopped here (by its user) while the daemon runs
    manager.round()
    assert keys.owner("g2") in etcd.kv and _placed(etcd, "g2")["state"] == "stopped"


def test_a_restarted_daemon_gives_up_an_ha_guest_that_does_not_run(tmp_path: Path) -> None:
    """Published running here, owned here, not running at the daemon's first round: a start
    the previous daemon did not finish (or a guest fenced while no daemon ran)."""
    etcd = FakeEtcd()
    _cluster_with(etcd, "g4")
    manager = _manager(tmp_path, etcd, set())
    manager.round()
    assert keys.owner("g4") not in etcd.kv and _placed(etcd, "g4")["state"] == "running"


def test_a_fresh_ha_claim_is_fenced_before_the_next_round(tmp_path: Path) -> None:
    etcd = FakeEtcd()
    manager = _manager(tmp_path, etcd, set())
    assert not manager.ready and manager.fence_names() == []
    manager.round()  # a round lists the host's HA guests: claims before it began are in it
    domains._recent_ha["g3"] = 0.0
    assert "g3" not in manager.fence_names()
    domains._recent_ha["g3"] = time.monotonic()
    try:
        assert manager.fence_names() == ["g3"]
    finally:
        domains._recent_ha.pop("g3", None)


def _kills_of_a_round(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """What one round asks ``kill_now`` to kill while HA guest g5 runs here and hb owns it."""
    etcd = FakeEtcd()
    _cluster_with(etcd, "g5")
    etcd.kv[keys.owner("g5")] = (json.dumps({"host": "hb"}), 0x77)
    killed: list[list[str]] = []

    def kill_now(paths: StatePaths, names: list[str]) -> list[str]:
        killed.append(list(names))
        return []

    monkeypatch.setattr(fence, "kill_now", kill_now)
    _manager(tmp_path, etcd, {"g5"}).round()
    return killed


def test_an_ha_guest_running_here_that_another_host_owns_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A start that went on after this host's lease ended while another host took over."""
    assert _kills_of_a_round(tmp_path, monkeypatch) == [["g5"]]


def test_a_migrations_source_another_host_owns_now_is_left_to_the_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``cluster evacuate`` moved the ownership at the switch-over: the paused source is the
    migration's to stop (or to run again if the destination fails), not the round's."""
    monkeypatch.setattr(fence, "outgoing", lambda paths, name: name == "g5")
    assert _kills_of_a_round(tmp_path, monkeypatch) == [[]]


def test_a_guest_claimed_here_and_still_starting_stays_published_running(
    tmp_path: Path,
) -> None:
    """A round between the claim and QEMU's start must not publish it stopped: if the host
    died then, the leader would never restart it."""
    etcd = FakeEtcd()
    _cluster_with(etcd, "g6")
    manager = _manager(tmp_path, etcd, set())
    manager.ready = True  # not a daemon's first round
    domains._recent_ha["g6"] = time.monotonic()
    try:
        manager.round()
    finally:
        domains._recent_ha.pop("g6", None)
    assert _placed(etcd, "g6")["state"] == "running" and keys.owner("g6") in etcd.kv


def test_a_migrations_destination_is_incoming(tmp_path: Path) -> None:
    """The round that kills unowned HA guests leaves a migration's destination alone: a QEMU
    started with ``-incoming`` whose runtime record is not written yet (or says paused)."""
    import subprocess
    import sys

    paths = StatePaths.from_root(tmp_path)
    run_dir = paths.domain_run_dir("g1")
    run_dir.mkdir(parents=True)
    assert not fence.incoming(paths, "g1")  # nothing runs
    for argv, want in (([], False), (["-incoming", "defer"], True)):
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", *argv])
        try:
            (run_dir / "qemu.pid").write_text(f"{proc.pid}\n")
            cmdline = Path(f"/proc/{proc.pid}/cmdline")
            for _ in range(500):  # until the child has exec'd (before, it shows our argv)
                if b"time.sleep" in cmdline.read_bytes():
                    break
                time.sleep(0.01)
            assert fence.incoming(paths, "g1") is want, argv
        finally:
            proc.kill()
            proc.wait()


def test_a_migrations_source_that_sent_its_state_is_outgoing(
    tmp_path: Path, fake_qmp: FakeQmp
) -> None:
    """The same round leaves a migration's source alone once its state went out (QEMU
    ``postmigrate``), while the migration is recent: ``cluster evacuate`` moves the
    ownership before the destination resumes, and the confirm stops the source after
    handing its shared images over; killed first, their owner came back under the
    destination's QEMU (its ``cont``: "Permission denied")."""
    import os

    from pyvirt.drivers.qemu import runtime
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor

    paths = StatePaths.from_root(tmp_path)
    run_dir = paths.domain_run_dir("g1")
    run_dir.mkdir(parents=True)
    assert not fence.outgoing(paths, "g1")  # nothing runs
    rec = runtime.RuntimeRecord(name="g1", uuid="u", pid=os.getpid(), starttime=None,
                                qmp_socket=str(fake_qmp.path), events_socket="",
                                log_path="", argv=[])  # fmt: skip
    rec.save(run_dir)
    state = {"status": "postmigrate", "running": False}
    fake_qmp.on_call("query-status", lambda _: dict(state))
    assert not fence.outgoing(paths, "g1")  # no migration began here
    before = run_dir / runtime.MIGRATE_BEFORE_FILE
    before.write_text("{}")
    assert fence.outgoing(paths, "g1")
    state["status"] = "running"  # a migration that failed: the guest runs here
    assert not fence.outgoing(paths, "g1")
    state["status"] = "postmigrate"
    with SyncMonitor(fake_qmp.path, name="g1"):  # the migration's confirm holds the monitor
        assert fence.outgoing(paths, "g1")
    old = time.time() - fence.HANDOVER_GRACE - 1  # a move that never ended: a stray again
    os.utime(before, (old, old))
    assert not fence.outgoing(paths, "g1")
