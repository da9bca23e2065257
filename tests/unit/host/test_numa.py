"""pyvirt.host.numa and memory/cpustats readers against the seed's host and synthetic trees."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from host_fakes import make_cpu_tree, write
from lxml import etree

from pyvirt.errors import InvalidConfigError
from pyvirt.host import capabilities as caps
from pyvirt.host import cpustats, memory, numa
from pyvirt.host.cpu import read_host_cpu


@pytest.fixture
def seed(data_dir: Path) -> Path:
    return data_dir / "seed-2x8"


def test_seed_host_cells(seed: Path) -> None:
    cells = numa.read_cells(seed)
    assert [c.id for c in cells] == [0, 1]
    assert cells[0].cpu_ids == tuple(range(8)) and cells[1].cpu_ids == tuple(range(8, 16))
    assert cells[0].memory_kib == 64 * 1024 * 1024
    assert cells[1].free_kib == 64 * 1024 * 1024 - 4194304
    assert cells[0].distances == {0: 10, 1: 21} and cells[1].distances == {0: 21, 1: 10}
    assert cells[1].sockets == (1,)
    assert cells[1].cpus[0].siblings == (8,)
    assert [(p.size_kib, p.total, p.free) for p in cells[0].pages] == [
        (2048, 512, 256),
        (1048576, 0, 0),
    ]


def test_no_numa_kernel_is_one_cell(tmp_path: Path) -> None:
    make_cpu_tree(tmp_path, sockets=1, cores=4, threads=1)
    write(tmp_path, "proc/meminfo", "MemTotal: 8000000 kB\nMemFree: 5000000 kB\n")
    assert not numa.has_numa(tmp_path)
    (only,) = numa.read_cells(tmp_path)
    assert only.cpu_ids == (0, 1, 2, 3) and only.memory_kib == 8000000 and only.free_kib == 5000000
    assert only.distances == {0: 10}


def test_memstats(seed: Path) -> None:
    host = memory.host_memstats(seed)
    assert host.items() == [
        ("total", 134217728),
        ("free", 134217728 - 8388608),
        ("buffers", 524288),
        ("cached", 3145728),
    ]
    node = memory.node_memstats(seed, 1)
    assert node is not None and node.items() == [("total", 67108864), ("free", 62914560)]
    assert memory.node_memstats(seed, 7) is None


def test_cpustats_ns_and_percent(seed: Path, tmp_path: Path) -> None:
    all_cpus = cpustats.read_cpu_times(seed, hz=100)
    assert all_cpus.user == (16000 + 400) * 10_000_000  # user + nice, ticks of 10 ms
    assert all_cpus.system == (8000 + 200) * 10_000_000
    one = cpustats.read_cpu_times(seed, 3, hz=100)
    assert one.idle == 9375 * 10_000_000
    with pytest.raises(InvalidConfigError, match="host CPU 99 does not exist"):
        cpustats.read_cpu_times(seed, 99)
    later = cpustats.CpuTimes(one.user + 60, one.system + 20, one.idle + 20, one.iowait)
    pct = cpustats.percentages(one, later)
    assert pct == {"usage": 80.0, "user": 60.0, "system": 20.0, "idle": 20.0, "iowait": 0.0}
    assert cpustats.read_cpu_mhz(seed) == 2600


def test_capabilities_topology_and_ept(seed: Path) -> None:
    cpu = read_host_cpu(seed, arch="x86_64")
    assert cpu.mmu_virt == "ept" and cpu.topology.sockets == 2 and cpu.topology.cores == 8
    text = caps.build_capabilities(
        host_uuid="u", cpu=cpu, binaries=[], kvm_usable=True, cells=numa.read_cells(seed)
    )
    doc = etree.fromstring(text.encode())
    assert doc.find("host/cpu/feature[@name='ept']") is not None
    assert doc.find("host/cpu/feature[@name='vmx']") is not None
    cells = doc.find("host/topology/cells")
    assert cells is not None and cells.get("num") == "2"
    cell1 = cells.find("cell[@id='1']")
    assert cell1 is not None
    assert cell1.findtext("memory") == "67108864"
    assert cell1.findtext("freememory") == "62914560"
    assert cell1.findtext("pages[@size='2048']") == "512"
    assert [(s.get("id"), s.get("value")) for s in cell1.iterfind("distances/sibling")] == [
        ("0", "21"),
        ("1", "10"),
    ]
    cpu_ids = [c.get("id") for c in cell1.iterfind("cpus/cpu")]
    assert cpu_ids == [str(i) for i in range(8, 16)]
    assert cell1.find("cpus/cpu[@id='9']").get("socket_id") == "1"  # type: ignore[union-attr]


def test_real_host_reads_consistently() -> None:
    """The real sysfs: every online CPU is in exactly one cell."""
    cells = numa.read_cells(Path("/"))
    ids = [c for cell in cells for c in cell.cpu_ids]
    assert len(ids) == len(set(ids)) and ids
    assert all(cell.memory_kib > 0 for cell in cells)


def test_copy_of_seed_tree_is_independent(seed: Path, tmp_path: Path) -> None:
    shutil.copytree(seed, tmp_path / "h")
    assert numa.node_ids(tmp_path / "h") == [0, 1]
