"""A plain ``migrate`` of a cluster domain is refused at the source before anything moves (it
would move the guest but not its ownership in etcd), with ``cluster evacuate`` as the hint;
evacuation's own migration (``Policy(cluster_handover=True)``) and local domains go on."""

from __future__ import annotations

from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.errors import InvalidStateError
from pyvirt.service.cluster import keys, membership
from pyvirt.service.cluster.config import write_config
from pyvirt.service.cluster.domains import claim
from pyvirt.service.domain import migrate
from tests.unit.cluster.test_hand_over import MemEtcd, cluster


class Etcd(MemEtcd):
    def close(self) -> None:
        pass


def xml(name: str, uuid: str) -> str:
    return (f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
            "<memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>")  # fmt: skip


def test_plain_migrate_of_a_cluster_domain_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={tmp_path / 's'}")
    conn.domains.define(xml("w1", "11111111-1111-1111-1111-111111111111"))
    conn.domains.define(xml("local", "22222222-2222-2222-2222-222222222222"))
    mgr = conn._service.domains  # type: ignore[attr-defined]
    etcd = Etcd()
    etcd.up("a", 0xA)
    etcd.put(keys.domain("w1"), "{}")
    claim(etcd, cluster("a"), "w1", 0xA)
    monkeypatch.setattr(membership, "open_etcd", lambda config, **kw: etcd)
    not_running = "is not running"
    # outside a cluster: only the usual checks
    with pytest.raises(InvalidStateError, match=not_running):
        migrate.perform(mgr, "w1", "unix:/nonexistent", migrate.Policy())
    write_config(mgr.paths, cluster("a"))
    with pytest.raises(InvalidStateError) as err:
        migrate.perform(mgr, "w1", "unix:/nonexistent", migrate.Policy())
    assert err.value.message == (
        "domain 'w1' is a domain of cluster 'lab' (owned by a): a plain migrate would not move "
        "its ownership"
    )
    assert "pyvirt cluster evacuate a" in (err.value.hint or "")
    with pytest.raises(InvalidStateError, match=not_running):  # evacuation's own
        migrate.perform(mgr, "w1", "unix:/nonexistent", migrate.Policy(cluster_handover=True))
    with pytest.raises(InvalidStateError, match=not_running):  # a domain of this host only
        migrate.perform(mgr, "local", "unix:/nonexistent", migrate.Policy())
