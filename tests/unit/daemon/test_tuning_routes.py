"""The web console's tuning routes on a shut-off domain (no QEMU): CPU facts and the NUMA
advisor, vCPU counts and pinning, memory, disk size and qemu-img resize, the statistics
history of a domain that never ran; errors in the API's shape."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, NotFoundError, PyvirtError
from tests.daemonhelp import InProcessDaemon

MiB = 1024 * 1024
BASE = "/api/v1/domains/t1"


@pytest.fixture(scope="module")
def pyvirtd() -> Iterator[InProcessDaemon]:  # one daemon: the tests touch different parts
    root = Path(tempfile.mkdtemp(prefix="pvd", dir="/tmp"))  # unix socket paths are short
    try:
        image = root / "t1.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "4M"], check=True)
        with InProcessDaemon(root) as d:
            d.daemon.conn.domains.define(f"""<domain type='qemu'><name>t1</name>
<memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='{image}'/>
<target dev='vda' bus='virtio'/></disk></devices></domain>""")
            yield d
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_cpus_pinning_and_counts(pyvirtd: InProcessDaemon) -> None:
    c = pyvirtd.client()
    facts = c.json("GET", f"{BASE}/cpus")
    assert facts["running"] is False and facts["host_cpus"] >= 1
    assert facts["vcpus"]["maximum"] == {"config": 1} and isinstance(facts["advice"], list)
    assert list(facts["pins"]) == ["0"]
    assert c.json("PUT", f"{BASE}/vcpupin", {"vcpu": 0, "cpulist": "0", "config": True}) == {
        "0": "0"
    }
    xml = pyvirtd.daemon.conn.domains.get("t1").xml_desc(inactive=True)
    assert "<vcpupin vcpu='0' cpuset='0'/>" in xml
    assert c.json("PUT", f"{BASE}/emulatorpin", {"cpulist": "0", "config": True}) == {
        "emulator": "0"
    }
    got = c.json("PUT", f"{BASE}/vcpus", {"count": 2, "maximum": True, "config": True})
    assert got["vcpus"]["maximum"]["config"] == 2
    with pytest.raises(NotFoundError):
        c.json("GET", "/api/v1/domains/nope/cpus")


def test_memory(pyvirtd: InProcessDaemon) -> None:
    c = pyvirtd.client()
    mem = c.json("GET", f"{BASE}/memory")
    assert mem["maximum_kib"] == 65536 and mem["balloon_kib"] is None
    got = c.json("PUT", f"{BASE}/memory", {"kib": 32768, "config": True})
    assert got["current_kib"] == 32768
    with pytest.raises(InvalidConfigError):
        c.json("PUT", f"{BASE}/memory", {"kib": 1 << 30, "config": True})


def test_disk_info_and_offline_resize(pyvirtd: InProcessDaemon) -> None:
    c = pyvirtd.client()
    assert c.json("GET", f"{BASE}/disks/vda")["capacity"] == 4 * MiB
    got = c.json("POST", f"{BASE}/disks/vda/resize", {"size": 6 * MiB + 1})
    assert got == {"target": "vda", "capacity": 6 * MiB + 512, "live": False}
    assert c.json("GET", f"{BASE}/disks/vda")["capacity"] == 6 * MiB + 512
    with pytest.raises(InvalidConfigError, match="shrinking would destroy data"):
        c.json("POST", f"{BASE}/disks/vda/resize", {"size": MiB})
    with pytest.raises(NotFoundError):
        c.json("POST", f"{BASE}/disks/vdz/resize", {"size": 8 * MiB})


def test_history_of_a_domain_that_never_ran(pyvirtd: InProcessDaemon) -> None:
    c = pyvirtd.client()
    hist = c.json("GET", f"{BASE}/stats/history?since=0")
    assert hist["t"] == [] and hist["cpu"] == [] and hist["interval"] > 0
    assert c.json("GET", "/api/v1/stats/history/cpu") == {}
    with pytest.raises(NotFoundError):
        c.json("GET", "/api/v1/domains/nope/stats/history")


def test_cpu_history_of_named_domains(pyvirtd: InProcessDaemon) -> None:
    """The overview's one request: the named domains only, at most ``points`` samples."""
    from pyvirt.daemon.routes.stats_history import history_of
    from tests.unit.api.test_stats_history import record

    hist = history_of(pyvirtd.daemon)
    for i in range(6):
        hist.add([record(n, i * k, 0, 0) for n, k in (("a", 0.5), ("b", 1.0), ("c", 0.1))],
                 1000.0 + 5 * i)  # fmt: skip
    c = pyvirtd.client()
    try:
        got = c.json("GET", "/api/v1/stats/history/cpu?domains=a,b,nope&points=2")
        assert got == {"a": {"t": [1020.0, 1025.0], "cpu": [10.0, 10.0]},
                       "b": {"t": [1020.0, 1025.0], "cpu": [20.0, 20.0]}}  # fmt: skip
        got = c.json("GET", "/api/v1/stats/history/cpu?domains=c&since=1015")
        assert got == {"c": {"t": [1020.0, 1025.0], "cpu": [2.0, 2.0]}}
        assert set(c.json("GET", "/api/v1/stats/history/cpu")) == {"a", "b", "c"}
        with pytest.raises(PyvirtError, match="points"):
            c.json("GET", "/api/v1/stats/history/cpu?points=0")
    finally:
        hist.keep_only([])
