"""Per-domain cgroups on fake v1, v2 and hybrid trees (plain directories and files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.host.cgroups import (
    CgroupLayout,
    DomainCgroup,
    parse_membership,
    shares_to_weight,
    weight_to_shares,
)

OWN_V1 = "4:memory:/session/abc\n3:cpuset:/\n1:cpu,cpuacct:/\n0::/\n"


def v1_tree(tmp_path: Path) -> CgroupLayout:
    """A hybrid host like this one: v1 cpu/cpuset/memory plus a v2 mount with hugetlb only."""
    base = tmp_path / "cg"
    mounts = []
    for ctrl, opts in (("cpu,cpuacct", "cpu,cpuacct"), ("cpuset", "cpuset"), ("memory", "memory")):
        (base / ctrl).mkdir(parents=True)
        mounts.append(f"cgroup {base / ctrl} cgroup rw,relatime,{opts} 0 0")
    (base / "cpuset" / "cpuset.cpus").write_text("0-3\n")
    (base / "cpuset" / "cpuset.mems").write_text("0\n")
    (base / "memory" / "session" / "abc").mkdir(parents=True)
    (base / "unified").mkdir()
    (base / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    mounts.append(f"cgroup2 {base / 'unified'} cgroup2 rw 0 0")
    (tmp_path / "mounts").write_text("\n".join(mounts) + "\n")
    (tmp_path / "own").write_text(OWN_V1)
    return CgroupLayout.detect(tmp_path / "mounts", tmp_path / "own")


def v2_tree(tmp_path: Path) -> CgroupLayout:
    base = tmp_path / "cg2"
    base.mkdir()
    (base / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "mounts").write_text(f"cgroup2 {base} cgroup2 rw,nsdelegate 0 0\n")
    (tmp_path / "own").write_text("0::/user.slice/session-1.scope\n")
    return CgroupLayout.detect(tmp_path / "mounts", tmp_path / "own")


def test_membership() -> None:
    assert parse_membership(OWN_V1) == {
        "memory": "/session/abc",
        "cpuset": "/",
        "cpu": "/",
        "cpuacct": "/",
        "": "/",
    }


def test_detect_hybrid(tmp_path: Path) -> None:
    layout = v1_tree(tmp_path)
    assert {c: h.version for c, h in layout.controllers.items()} == {
        "cpu": 1,
        "cpuset": 1,
        "memory": 1,
    }
    assert layout.v2_mount == tmp_path / "cg" / "unified"
    # nested under the caller's own memory cgroup
    assert layout.controllers["memory"].domain_dir("web1") == (
        tmp_path / "cg/memory/session/abc/pyvirt/web1"
    )


def test_v1_create_set_read_remove(tmp_path: Path) -> None:
    layout = v1_tree(tmp_path)
    cg = DomainCgroup.create(layout, "web1")
    cpuset = tmp_path / "cg/cpuset/pyvirt/web1"
    assert cg.dirs["cpuset"] == cpuset
    # a new v1 cpuset gets its parent's cpus and mems, or no task could join it
    assert (cpuset / "cpuset.cpus").read_text() == "0-3"
    assert (cpuset / "cpuset.mems").read_text() == "0"
    cg.attach(4242)
    assert (tmp_path / "cg/memory/session/abc/pyvirt/web1/cgroup.procs").read_text() == "4242"
    cg.set_cpu(shares=512, period=50000, quota=25000)
    assert (tmp_path / "cg/cpu,cpuacct/pyvirt/web1/cpu.shares").read_text() == "512"
    assert cg.cpu() == {"shares": 512, "period": 50000, "quota": 25000}
    cg.set_cpu(quota=-1)
    assert cg.cpu()["quota"] is None
    mem = tmp_path / "cg/memory/session/abc/pyvirt/web1"
    (mem / "memory.memsw.limit_in_bytes").write_text(str(2**63 - 4096))
    cg.set_memory(hard_kib=65536, soft_kib=32768, swap_kib=131072)
    assert (mem / "memory.limit_in_bytes").read_text() == str(64 * 1024 * 1024)
    assert (mem / "memory.memsw.limit_in_bytes").read_text() == str(128 * 1024 * 1024)
    assert cg.memory()["hard"] == 65536 and cg.memory()["soft"] == 32768
    cg.set_memory(hard_kib=-1)
    assert (mem / "memory.limit_in_bytes").read_text() == "-1"
    cg.set_mems("0")
    assert cg.mems() == "0"
    again = DomainCgroup.from_json(layout, cg.to_json())
    assert again.dirs == cg.dirs and again.owned()
    for d in cg.dirs.values():  # a fake tree's control files are plain files
        for f in [*d.iterdir(), *d.parent.glob("*.*")]:
            f.unlink()
    cg.remove()
    assert not any(d.exists() for d in cg.dirs.values())
    assert not (tmp_path / "cg/cpuset/pyvirt").exists()


def test_v1_swap_without_accounting(tmp_path: Path) -> None:
    cg = DomainCgroup.create(v1_tree(tmp_path), "web1")
    with pytest.raises(UnsupportedError, match="swap accounting"):
        cg.set_memory(swap_kib=1024)


def test_v2(tmp_path: Path) -> None:
    layout = v2_tree(tmp_path)
    assert {h.version for h in layout.controllers.values()} == {2}
    cg = DomainCgroup.create(layout, "db")
    leaf = tmp_path / "cg2/pyvirt.slice/pyvirt-db"
    assert set(cg.dirs.values()) == {leaf}
    assert "+memory" in (tmp_path / "cg2/cgroup.subtree_control").read_text()
    assert "+cpu" in (tmp_path / "cg2/pyvirt.slice/cgroup.subtree_control").read_text()
    cg.attach(77)
    assert (leaf / "cgroup.procs").read_text() == "77"
    cg.set_cpu(shares=1024, period=20000, quota=10000)
    assert (leaf / "cpu.weight").read_text() == str(shares_to_weight(1024))
    assert (leaf / "cpu.max").read_text() == "10000 20000"
    cg.set_cpu(quota=-1)
    assert (leaf / "cpu.max").read_text() == "max 20000"
    cg.set_memory(hard_kib=1024, soft_kib=512, swap_kib=3072)
    assert (leaf / "memory.max").read_text() == str(1024 * 1024)
    assert (leaf / "memory.high").read_text() == str(512 * 1024)
    # libvirt's swap_hard_limit is memory+swap; v2's swap.max is swap alone
    assert (leaf / "memory.swap.max").read_text() == str(2048 * 1024)
    assert cg.memory()["swap"] == 3072
    cg.set_memory(hard_kib=-1)
    assert (leaf / "memory.max").read_text() == "max" and cg.memory()["hard"] is None


def test_weight_conversion() -> None:
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    for shares in (2, 512, 1024, 4096, 262144):
        assert abs(weight_to_shares(shares_to_weight(shares)) - shares) <= 27


def test_bad_values_and_missing_controller(tmp_path: Path) -> None:
    cg = DomainCgroup.create(v1_tree(tmp_path), "web1")
    with pytest.raises(InvalidConfigError, match="cpu_shares 1"):
        cg.set_cpu(shares=1)
    with pytest.raises(InvalidConfigError, match="vcpu_period"):
        cg.set_cpu(period=10)
    (tmp_path / "m").write_text("")
    bare = CgroupLayout.detect(tmp_path / "m", tmp_path / "m")
    with pytest.raises(UnsupportedError, match="'memory' controller"):
        DomainCgroup(bare, {}).memory()


def test_of_pid(tmp_path: Path) -> None:
    layout = v1_tree(tmp_path)
    proc = tmp_path / "proc"
    (proc / "99").mkdir(parents=True)
    (proc / "99" / "cgroup").write_text(
        "4:memory:/session/abc/pyvirt/w\n3:cpuset:/pyvirt/w\n1:cpu,cpuacct:/pyvirt/w\n"
    )
    cg = DomainCgroup.of_pid(layout, 99, proc)
    assert cg.dirs["memory"] == tmp_path / "cg/memory/session/abc/pyvirt/w" and cg.owned()
