"""The ownership hand-over of an evacuation (issue 16), against an in-memory etcd with the
transaction semantics pyvirt uses: the owner key moves only while the source still owns it
and the target is alive and out of maintenance, bound to the target's lease; a start on a
host in maintenance is refused by the claim's transaction."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pyvirt.drivers.etcd import Compare, Delete, Entry, Put
from pyvirt.errors import InvalidStateError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.config import ClusterConfig
from pyvirt.service.cluster.domains import claim
from pyvirt.service.cluster.maintenance import hand_over, mark, unmark
from pyvirt.service.cluster.records import Liveness


class MemEtcd:
    """Keys, revisions and leases; transactions compare ``create``, ``mod`` and ``lease``."""

    def __init__(self) -> None:
        self.kv: dict[str, Entry] = {}
        self.rev = 0

    def get(self, key: str) -> Entry | None:
        return self.kv.get(key)

    def put(self, key: str, value: str, *, lease: int = 0) -> None:
        self.rev += 1
        old = self.kv.get(key)
        self.kv[key] = Entry(key, value, self.rev, old.create_revision if old else self.rev, lease)

    def delete(self, key: str) -> bool:
        return self.kv.pop(key, None) is not None

    def _holds(self, c: Compare) -> bool:
        e = self.kv.get(c.key)
        got: Any = {"create": e.create_revision if e else 0, "mod": e.mod_revision if e else 0,
                    "lease": e.lease if e else 0}[c.target]  # fmt: skip
        return bool(got == c.value) if c.result == "EQUAL" else bool(got != c.value)

    def transaction(self, compare: list[Compare], success: list[Put | Delete]) -> bool:
        if not all(self._holds(c) for c in compare):
            return False
        for op in success:
            if isinstance(op, Put):
                self.put(op.key, op.value, lease=op.lease)
            else:
                self.delete(op.key)
        return True

    def up(self, host: str, lease: int) -> None:
        self.put(keys.alive(host), Liveness(lease, 0.0, 1).encode(), lease=lease)

    def owner(self, name: str) -> tuple[str, int]:
        e = self.kv[keys.owner(name)]
        return json.loads(e.value)["host"], e.lease


def cluster(host: str) -> ClusterConfig:
    return ClusterConfig(cluster="lab", host=host, endpoints=("http://127.0.0.1:2379",))


@pytest.fixture
def etcd() -> MemEtcd:
    e = MemEtcd()
    e.up("a", 0xA)
    e.up("b", 0xB)
    claim(e, cluster("a"), "w1", 0xA)
    return e


def test_the_owner_moves_bound_to_the_targets_lease(etcd: MemEtcd) -> None:
    hand_over(etcd, "w1", "a", "b", state="running")
    assert etcd.owner("w1") == ("b", 0xB)
    assert json.loads(etcd.kv[keys.placed("w1")].value)["host"] == "b"


def test_refused_when_the_source_no_longer_owns_it(etcd: MemEtcd) -> None:
    with pytest.raises(InvalidStateError, match="no longer owned by host 'c'"):
        hand_over(etcd, "w1", "c", "b", state="running")
    assert etcd.owner("w1") == ("a", 0xA)


def test_refused_when_the_target_is_down_or_in_maintenance(etcd: MemEtcd) -> None:
    with pytest.raises(InvalidStateError, match="host 'c' is down"):
        hand_over(etcd, "w1", "a", "c", state="running")
    mark(etcd, "b", by="a")
    with pytest.raises(InvalidStateError, match="could not move from 'a' to 'b'"):
        hand_over(etcd, "w1", "a", "b", state="running")
    assert etcd.owner("w1") == ("a", 0xA)


def test_the_ownership_comes_back_to_a_host_in_maintenance(etcd: MemEtcd) -> None:
    mark(etcd, "a", by="a")
    hand_over(etcd, "w1", "a", "b", state="running")
    # the target could not run it: back to the evacuated host
    hand_over(etcd, "w1", "b", "a", state="running", back=True)
    assert etcd.owner("w1") == ("a", 0xA)


def test_a_host_in_maintenance_starts_nothing_until_restored(etcd: MemEtcd) -> None:
    assert mark(etcd, "b", by="a") is True
    assert mark(etcd, "b", by="a") is False
    with pytest.raises(InvalidStateError, match="host 'b' is in maintenance") as err:
        claim(etcd, cluster("b"), "w2", 0xB)
    assert "pyvirt cluster restore b" in (err.value.hint or "")
    assert keys.owner("w2") not in etcd.kv
    # not even a domain it owns already
    claim(etcd, cluster("a"), "w3", 0xA)
    mark(etcd, "a", by="a")
    with pytest.raises(InvalidStateError, match="host 'a' is in maintenance"):
        claim(etcd, cluster("a"), "w3", 0xA)
    assert unmark(etcd, "b") is True
    claim(etcd, cluster("b"), "w2", 0xB)
    assert etcd.owner("w2") == ("b", 0xB)
    # another host's domain is still refused for being another host's
    with pytest.raises(InvalidStateError, match="owned by host 'a'"):
        claim(etcd, cluster("b"), "w1", 0xB)
