"""pyvirt.service.tuning.planner: the seed's case analysis and beyond, on described hosts."""

from __future__ import annotations

import json

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.service.tuning import planner
from pyvirt.service.tuning.advisor import HostShape

GIB = 1024 * 1024
SEED_TEXT = "sockets=2\ncores=8\nmemory=128G\n"


def plan(*specs: str, host: str = SEED_TEXT, **kw: int) -> planner.Plan:
    return planner.make_plan(
        planner.parse_host(host), [planner.parse_workload(s) for s in specs], **kw
    )


def test_host_description_formats() -> None:
    kv = planner.parse_host(SEED_TEXT)
    js = planner.parse_host('{"sockets": 2, "cores": 8, "memory": "128G"}')
    assert kv == js == HostShape.uniform(2, 8, 128 * GIB)
    assert len(kv.nodes) == 2 and kv.node_memory_kib == 64 * GIB


def test_seed_four_mail_servers() -> None:
    """2x8 cores, 128 GiB, 4 mail servers -> 4 VMs of 4 vCPUs / 32 GiB, 2 per node, thin."""
    result = plan("name=mail,count=4,disk=mail")
    assert [(v.vcpus, v.memory_kib) for v in result.vms] == [(4, 32 * GIB)] * 4
    assert sorted(v.nodes for v in result.vms) == [(0,), (0,), (1,), (1,)]
    assert all(v.provisioning == "thin" and v.cache == "none" for v in result.vms)
    cpusets = [v.cpuset for v in result.vms]
    assert sorted(cpusets) == ["0-3", "12-15", "4-7", "8-11"]  # dedicated, within one node
    assert all((v.sockets, v.cores) == (1, 4) for v in result.vms)


def test_mail_system_with_database_is_thick() -> None:
    result = plan(
        "name=mail,count=3,disk=many small files, random I/O".replace(", r", " r"),
        "name=maildb,disk=database",
    )
    by = {v.name: v for v in result.vms}
    assert by["maildb"].provisioning == "thick" and by["mail1"].provisioning == "thin"
    assert all((v.vcpus, v.memory_kib) == (4, 32 * GIB) for v in result.vms)
    db = planner.PROFILES["database"]
    assert db.format == "raw" and db.preallocation == "full"
    assert any("thick" in r and "database" in r for r in db.reasons)


def test_explicit_sizes_placed_first_and_rest_shares_room() -> None:
    result = plan("name=db,vcpus=8,memory=64G,disk=database", "name=web,count=2,disk=web")
    by = {v.name: v for v in result.vms}
    assert by["db"].nodes in ((0,), (1,)) and by["db"].cpuset in ("0-7", "8-15")
    other = {1: 0, 0: 1}[by["db"].nodes[0]]
    assert by["web1"].nodes == by["web2"].nodes == (other,)
    assert (by["web1"].vcpus, by["web1"].memory_kib) == (4, 32 * GIB)


def test_vm_larger_than_a_node_spans_with_note() -> None:
    (vm,) = plan("name=big,vcpus=12,memory=96G,disk=database").vms
    assert vm.nodes == (0, 1) and (vm.sockets, vm.cores) == (2, 6)
    assert any("spans nodes 0, 1" in n for n in vm.notes)
    assert any("not a recommended shape" in n for n in vm.notes)


def test_overcommit_noted() -> None:
    result = plan("name=a,count=3,vcpus=8,memory=60G")
    assert any("overcommitted" in n for n in result.notes)


def test_reserve_shrinks_units() -> None:
    result = plan("name=mail,count=4,disk=mail", reserve_kib=2 * GIB)
    assert {v.memory_kib for v in result.vms} == {31 * GIB}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("count=2", "workload needs a name"),
        ("name=a,count=0", "count must be positive"),
        ("name=a,memory=lots", "memory 'lots' is not a size"),
        ("name=a,disk=tape robot", "disk profile 'tape robot' is unknown"),
        ("name=a,colour=red", "workload key 'colour' is unknown"),
    ],
)
def test_bad_workloads(spec: str, message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        planner.parse_workload(spec)


def test_bad_host() -> None:
    with pytest.raises(InvalidConfigError, match="host description lacks 'memory'"):
        planner.parse_host("sockets=2,cores=8")


def test_workloads_file_and_json() -> None:
    ws = planner.parse_workloads_file(
        "# mail system\nname=mail,count=3,disk=mail\nname=db,disk=db\n"
    )
    assert [w.disk.name for w in ws] == ["mail", "database"]
    ws2 = planner.parse_workloads_file('[{"name": "mail", "count": 3, "disk": "mail"}]')
    assert ws2[0].count == 3
    data = planner.make_plan(planner.parse_host(SEED_TEXT), ws).to_json()
    text = json.dumps(data)
    assert json.loads(text)["vms"][0]["provisioning"] == "thin"
    assert data["host"]["cpus"] == 16
