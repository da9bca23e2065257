"""pyvirt.service.tuning.advisor: the seed's NUMA rules on fake host topologies."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.domain import Domain
from pyvirt.service.tuning import advisor
from pyvirt.service.tuning.advisor import HostShape

DATA = Path(__file__).resolve().parents[2] / "data" / "host"
GIB = 1024 * 1024
SEED = HostShape.uniform(2, 8, 128 * GIB)  # the seed's example host


def dom(vcpus: int, mem_gib: float, *, topo: str = "", cpuset: str = "", cells: str = "") -> Domain:
    cpu = ""
    if topo or cells:
        s, c = topo.split("x") if topo else ("", "")
        t = f"<topology sockets='{s}' cores='{c}' threads='1'/>" if topo else ""
        cpu = f"<cpu>{t}{cells}</cpu>"
    cs = f" cpuset='{cpuset}'" if cpuset else ""
    return Domain.from_xml(
        f"<domain type='kvm'><name>vm</name><memory unit='KiB'>{int(mem_gib * GIB)}</memory>"
        f"<vcpu{cs}>{vcpus}</vcpu>{cpu}<os><type>hvm</type></os></domain>"
    )


def codes(d: Domain, host: HostShape = SEED, **kw: int) -> list[str]:
    return [a.code for a in advisor.advise(d, host, **kw)]


def test_read_seed_host_from_sysfs_tree() -> None:
    host = advisor.read_host(DATA / "seed-2x8")
    assert (host.sockets, host.cores_per_socket, host.threads_per_core) == (2, 8, 1)
    assert host.cpus == 16 and host.memory_kib == 128 * GIB
    assert host.node_memory_kib == 64 * GIB and host.node_cpus == 8
    assert host == SEED


def test_seed_mail_server_is_clean() -> None:
    """The seed's case: 4 vCPUs / 32 GiB on its host raises nothing."""
    assert codes(dom(4, 32, topo="1x4")) == []


@pytest.mark.parametrize("shape", ["1x1", "1x2", "1x4", "1x8", "2x1", "2x2", "2x4", "2x8"])
def test_recommended_shapes_pass_the_shape_rule(shape: str) -> None:
    s, c = map(int, shape.split("x"))
    assert "shape" not in codes(dom(s * c, 4, topo=shape))


@pytest.mark.parametrize(("shape", "suggest"), [("2x3", "2x2"), ("2x5", "2x4"), ("2x7", "2x4")])
def test_odd_two_socket_shapes_warned(shape: str, suggest: str) -> None:
    s, c = map(int, shape.split("x"))
    (found,) = [a for a in advisor.advise(dom(s * c, 4, topo=shape), SEED) if a.code == "shape"]
    assert "odd core count per socket" in found.message
    assert found.hint.startswith(f"use {suggest}")


def test_other_shape_gets_nearest() -> None:
    (found,) = [a for a in advisor.advise(dom(6, 4, topo="1x6"), SEED) if a.code == "shape"]
    assert found.hint == "use 1x4 (4 vCPUs) or 1x8 (8 vCPUs)"


def test_memory_larger_than_a_node() -> None:
    found = {a.code: a for a in advisor.advise(dom(4, 96), SEED)}
    assert "more than one host NUMA node (64 GiB)" in found["memory-node"].message
    assert "at most 64 GiB" in found["memory-node"].hint
    # with guest NUMA cells that fit host nodes (vNUMA), the guest knows: no warning
    cells = (
        "<numa><cell id='0' cpus='0-3' memory='48' unit='GiB'/>"
        "<cell id='1' cpus='4-7' memory='48' unit='GiB'/></numa>"
    )
    assert "memory-node" not in codes(dom(8, 96, topo="2x4", cells=cells))


def test_vcpus_spanning_sockets() -> None:
    (found,) = [a for a in advisor.advise(dom(12, 8), SEED) if a.code == "vcpus-span"]
    assert "one host NUMA node (socket) has 8 CPUs" in found.message
    assert "at most 8 vCPUs" in found.hint


def test_overcommit_alone_and_with_running() -> None:
    assert "vcpu-overcommit" in codes(dom(24, 8))
    assert "vcpu-overcommit" not in codes(dom(8, 8))
    found = [a for a in advisor.advise(dom(8, 8), SEED, running_vcpus=12)]
    assert [a.code for a in found] == ["vcpu-overcommit"]
    assert "need 20 vCPUs but the host has 16 CPUs" in found[0].message


def test_vcpu_limits_32_warn_64_refuse() -> None:
    big = HostShape.uniform(4, 32, 512 * GIB)
    assert codes(dom(32, 8), big) == []
    assert codes(dom(40, 8), big)[0] == "vcpus-many"
    d = dom(80, 8)
    assert advisor.advise(d, big)[0].level == "error"
    with pytest.raises(InvalidConfigError, match="80 vCPUs, more than the limit of 64") as err:
        advisor.check_define(d, big)
    assert err.value.hint and "--force" in err.value.hint
    assert any("more than the limit" in w for w in advisor.check_define(d, big, force=True))


def test_cpuset_span_and_missing() -> None:
    found = {a.code: a for a in advisor.advise(dom(4, 8, cpuset="6-9"), SEED)}
    assert "spans host NUMA nodes 0, 1" in found["cpuset-span"].message
    assert "0-7" in found["cpuset-span"].hint
    found = {a.code: a for a in advisor.advise(dom(2, 8, cpuset="30-31"), SEED)}
    assert "CPUs 30,31 which this host does not have" in found["cpuset-missing"].message
    assert "cpuset-span" not in codes(dom(4, 8, cpuset="8-11"))


def test_single_node_host_no_numa_noise() -> None:
    small = HostShape.uniform(1, 2, 8 * GIB)
    assert codes(dom(2, 4), small) == []
    assert codes(dom(2, 16), small) == ["memory-overcommit"]


def test_every_warning_says_what_to_do_instead() -> None:
    for d in (dom(10, 200, topo="2x5", cpuset="6-9"), dom(80, 8), dom(12, 96, topo="3x4")):
        for a in advisor.advise(d, SEED):
            assert a.hint and str(a).endswith(a.hint) and "; instead, " in str(a)
