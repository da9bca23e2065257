"""Cluster networks and shared pools on one host (issue 16), without etcd: what a member's
agent does with the cluster's list (define, start an autostart pool, undefine what the
cluster removed, leave a local one of another UUID alone) and the inventory it publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import pyvirt.api
from pyvirt.errors import InvalidConfigError
from pyvirt.service.cluster.resources import inventory, parse_resource, read_applied, sync
from pyvirt.service.tuning.advisor import HostShape

NET = ("<network><name>cnet</name><bridge name='cbr9'/>"
       "<ip address='10.219.7.1' prefix='24'/></network>")  # fmt: skip


def pool_xml(name: str, path: Path, kind: str = "dir") -> str:
    return f"<pool type='{kind}'><name>{name}</name><target><path>{path}</path></target></pool>"


@pytest.fixture
def service(state_root: Path) -> Any:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={state_root}")
    return conn._service  # type: ignore[attr-defined]


def test_records_get_a_uuid_and_only_shareable_pools(tmp_path: Path) -> None:
    net = parse_resource("network", NET, autostart=True)
    assert (net.kind, net.name, net.autostart) == ("network", "cnet", True)
    assert len(net.uuid) == 36 and net.uuid in net.xml
    pool = parse_resource("pool", pool_xml("shared", tmp_path), autostart=False)
    assert (pool.type, pool.uuid in pool.xml) == ("dir", True)
    with pytest.raises(InvalidConfigError, match="type 'logical' cannot be shared"):
        parse_resource("pool", "<pool type='logical'><name>vg</name></pool>", autostart=False)
    with pytest.raises(InvalidConfigError, match="unknown cluster resource kind"):
        parse_resource("volume", NET, autostart=False)


def test_sync_defines_starts_and_undefines(service: Any, tmp_path: Path) -> None:
    net = parse_resource("network", NET, autostart=True)
    shared = tmp_path / "shared"
    pool = parse_resource("pool", pool_xml("shared", shared), autostart=True)
    report = sync(service, [net, pool])
    assert report.defined == [("network", "cnet"), ("pool", "shared")]
    assert report.problems == []
    info = service.networks.info("cnet")
    # an autostart network is started by pyvirt on first use, not now
    assert (info.uuid, info.autostart, info.active) == (net.uuid, True, False)
    assert service.pools.live("shared") is not None and shared.is_dir()  # built and started
    assert read_applied(service) == {"network": {"cnet": net.uuid}, "pool": {"shared": pool.uuid}}
    inv = inventory(service, HostShape.uniform(1, 2, 1024 * 1024))
    assert "cnet" in inv.networks and "shared" in inv.pools and inv.used == {}

    # again: nothing to do
    again = sync(service, [net, pool])
    assert (again.defined, again.removed, again.problems) == ([], [], [])
    # the cluster removed the network: undefined here; the pool stays
    gone = sync(service, [pool])
    assert gone.removed == [("network", "cnet")]
    assert "cnet" not in [n.name for n in service.networks.list()]
    gone = sync(service, [])
    assert gone.removed == [("pool", "shared")]
    assert service.pools.config("shared") is None and service.pools.live("shared") is None
    assert read_applied(service) == {"network": {}, "pool": {}}


def test_a_local_network_of_another_uuid_is_left_alone(service: Any) -> None:
    service.networks.define_xml(NET)
    local = service.networks.info("cnet").uuid
    net = parse_resource("network", NET, autostart=False)
    report = sync(service, [net])
    assert report.defined == [] and "has another UUID" in report.problems[0]
    assert service.networks.info("cnet").uuid == local
    # removed from the cluster: the local one is not the cluster's, it stays
    assert sync(service, []).removed == []
    assert service.networks.info("cnet").uuid == local
    # the same UUID defined locally before is adopted (and removed with the cluster's)
    service.networks.undefine("cnet")
    service.networks.define_xml(net.xml)
    assert sync(service, [net]).problems == []
    assert read_applied(service)["network"] == {"cnet": net.uuid}
    assert sync(service, []).removed == [("network", "cnet")]


def test_idle_rounds_do_not_retry_starting_a_pool(service: Any, tmp_path: Path) -> None:
    pool = parse_resource("pool", pool_xml("shared", tmp_path / "s"), autostart=True)
    assert sync(service, [pool], start=False).defined == [("pool", "shared")]
    assert service.pools.live("shared") is not None  # newly defined: started all the same
    service.pools.destroy("shared")
    sync(service, [pool], start=False)  # an idle round (no change in the cluster)
    assert service.pools.live("shared") is None
    sync(service, [pool])  # a round after a change
    assert service.pools.live("shared") is not None
