"""Placement rules (issue 16): networks and pools a host lacks, NUMA fit (the advisor's
findings reused), affinity and anti-affinity groups; every refusal names its rule."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidStateError
from pyvirt.model.domain import Domain
from pyvirt.service.cluster.membership import HostStatus
from pyvirt.service.cluster.placement import place
from pyvirt.service.cluster.records import HostRecord, Liveness
from pyvirt.service.cluster.rules import (
    Inventory,
    Needs,
    group_rules,
    needs_of,
    numa_fit,
    resources_missing,
)
from pyvirt.service.tuning.advisor import HostShape

GIB = 1024 * 1024


def host(name: str, free_gib: float = 8) -> HostStatus:
    record = HostRecord(name, name, "", 0.0, "1", "x86_64", "cpu", (), 4, 16 * GIB, 1)
    return HostStatus(record, "up", Liveness(1, 0.0, 1, free_kib=int(free_gib * GIB)))


def dom(extra: str = "", devices: str = "", memory_mib: int = 1024) -> Domain:
    return Domain.from_xml(f"""<domain type='qemu'><name>d1</name>
      <memory unit='MiB'>{memory_mib}</memory><vcpu>2</vcpu>{extra}
      <os><type arch='x86_64' machine='pc'>hvm</type></os>
      <devices>{devices}</devices></domain>""")


NIC = "<interface type='network'><source network='{}'/></interface>"
VOL = ("<disk type='volume' device='disk'><source pool='{}' volume='v.qcow2'/>"
       "<target dev='vda'/></disk>")  # fmt: skip


def test_needs_name_networks_pools_and_numa() -> None:
    d = dom(devices=NIC.format("cnet") + NIC.format("cnet") + VOL.format("shared"))
    assert needs_of(d) == Needs(("cnet",), ("shared",), False)
    assert not needs_of(dom())
    cells = "<cpu><numa><cell id='0' cpus='0' memory='512' unit='MiB'/></numa></cpu>"
    assert needs_of(dom(cells)).numa
    assert needs_of(Domain.from_xml(
        "<domain type='qemu'><name>p</name><memory unit='MiB'>64</memory>"
        "<vcpu cpuset='0-1'>2</vcpu><os><type>hvm</type></os></domain>"
    )).numa  # fmt: skip
    pin = "<cputune><vcpupin vcpu='0' cpuset='3'/></cputune>"
    assert needs_of(dom(pin)).numa


def test_a_host_lacking_a_network_or_pool_is_named() -> None:
    needs = Needs(("cnet",), ("shared",))
    assert resources_missing(needs, Inventory(("cnet",), ("shared",))) == ""
    assert resources_missing(needs, Inventory((), ("shared",))) == "lacks network 'cnet'"
    assert resources_missing(needs, Inventory(("cnet",), ())) == "lacks pool 'shared'"
    assert resources_missing(needs, None) == "no inventory published"
    assert resources_missing(Needs(), None) == ""


def test_inventory_round_trips_through_json() -> None:
    shape = HostShape.uniform(2, 4, 8 * GIB)
    inv = Inventory(("a", "b"), ("p",), shape, {"network:a": ("web1",)})
    back = Inventory.from_json(inv.to_json())
    assert back == inv
    assert back.to_json()["shape"]["nodes"][1] == {"id": 1, "cpus": "4-7", "memory_kib": 4 * GIB}


def test_numa_cells_fit_the_nodes_memory() -> None:
    two_nodes = HostShape.uniform(2, 4, 8 * GIB)  # 2 nodes of 4 GiB
    cells = ("<cpu><numa><cell id='0' cpus='0' memory='{}' unit='GiB'/>"
             "<cell id='1' cpus='1' memory='{}' unit='GiB'/></numa></cpu>")  # fmt: skip
    assert numa_fit(dom(cells.format(3, 3), memory_mib=6144), two_nodes) == ""
    # a 5 GiB cell fits no 4 GiB node
    why = numa_fit(dom(cells.format(5, 1), memory_mib=6144), two_nodes)
    assert why == "guest NUMA cells (5120 MiB, 1024 MiB) do not fit its nodes (4096 MiB, 4096 MiB)"
    # 3 + 3 + 2 GiB cannot be packed into two 4 GiB nodes (one 3 GiB cell per node)
    three = ("<cpu><numa><cell id='0' cpus='0' memory='3' unit='GiB'/>"
             "<cell id='1' cpus='1' memory='3' unit='GiB'/>"
             "<cell id='2' cpus='1' memory='2' unit='GiB'/></numa></cpu>")  # fmt: skip
    assert "do not fit" in numa_fit(dom(three, memory_mib=8192), two_nodes)
    assert numa_fit(dom(three, memory_mib=8192), HostShape.uniform(2, 4, 16 * GIB)) == ""


def test_pinning_to_cpus_or_nodes_the_host_lacks() -> None:
    small = HostShape.uniform(1, 4, 8 * GIB)  # CPUs 0-3, node 0
    cpuset = Domain.from_xml(
        "<domain type='qemu'><name>p</name><memory unit='MiB'>64</memory>"
        "<vcpu cpuset='6-7'>2</vcpu><os><type>hvm</type></os></domain>"
    )
    assert numa_fit(cpuset, small) == "pinned to CPUs 6,7 which this host does not have"
    assert numa_fit(cpuset, HostShape.uniform(2, 4, 8 * GIB)) == ""
    pin = dom("<cputune><vcpupin vcpu='0' cpuset='9'/></cputune>")
    assert numa_fit(pin, small) == "vcpupin names CPUs 9 this host lacks"
    tune = dom("<numatune><memory mode='strict' nodeset='1'/></numatune>")
    assert numa_fit(tune, small) == "numatune names NUMA nodes 1 this host lacks"
    assert numa_fit(tune, HostShape.uniform(2, 2, 8 * GIB)) == ""


def test_anti_affinity_keeps_group_members_apart() -> None:
    groups = {"web1": ("", "web"), "web2": ("", "web"), "db1": ("", "")}
    owners = {"web1": "a", "db1": "b"}
    rule = group_rules("web2", "", "web", groups, owners)
    assert rule.why_not("a") == "anti-affinity group 'web': web1 there"
    assert rule.why_not("b") == ""
    p = place([host("a", 12), host("b", 2)], GIB, checks=[lambda h: rule.why_not(h.name)])
    assert p.host == "b"  # a has more room but web1 is there
    owners["web3"] = "b"
    groups["web3"] = ("", "web")
    rule = group_rules("web2", "", "web", groups, owners)
    with pytest.raises(InvalidStateError, match="anti-affinity group 'web': web1 there"):
        place([host("a"), host("b")], GIB, checks=[lambda h: rule.why_not(h.name)])


def test_affinity_follows_the_group() -> None:
    groups = {"app": ("pair", ""), "cache": ("pair", ""), "other": ("", "")}
    # nobody of the group placed yet: any host
    assert group_rules("cache", "pair", "", groups, {"other": "a"}).why_not("a") == ""
    rule = group_rules("cache", "pair", "", groups, {"app": "b", "other": "a"})
    assert rule.why_not("a") == "affinity group 'pair': app is on b"
    p = place([host("a", 12), host("b", 2)], GIB, checks=[lambda h: rule.why_not(h.name)])
    assert p.host == "b"
    assert {c.host: c.why for c in p.candidates}["a"] == "affinity group 'pair': app is on b"


def test_checks_come_after_down_and_avoided() -> None:
    record = HostRecord("c", "c", "", 0.0, "1", "x86_64", "cpu", (), 4, 16 * GIB, 1)
    down = HostStatus(record, "down", None)
    p = place([host("a"), host("b"), down], GIB, avoid=["a"],
              checks=[lambda h: "lacks network 'n'" if h.name != "b" else ""])  # fmt: skip
    assert [(c.host, c.why) for c in p.candidates] == [
        ("a", "avoided"), ("b", ""), ("c", "down")
    ]  # fmt: skip
