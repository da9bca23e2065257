"""host-validate's NUMA, hugepage and KSM checks on fake trees."""

from __future__ import annotations

from pathlib import Path

from host_fakes import write

from pyvirt.host import validate
from pyvirt.host.validate import CheckStatus

NUMA = "QEMU: Checking for NUMA support"
HUGE = "QEMU: Checking for hugepage support (hugetlbfs at /dev/hugepages)"
KSM = "QEMU: Checking for KSM (same-page merging) support"


def _by_name(root: Path) -> dict[str, validate.Check]:
    return {c.name: c for c in validate._memory_checks(root)}


def test_seed_host_passes(data_dir: Path) -> None:
    by = _by_name(data_dir / "seed-2x8")
    assert by[NUMA].status is CheckStatus.PASS and by[NUMA].detail == "2 NUMA node(s) in sysfs"
    assert by[HUGE].status is CheckStatus.PASS
    assert "2M: 1024 pages (512 free)" in by[HUGE].detail
    assert by[KSM].status is CheckStatus.PASS and by[KSM].detail.endswith("running")


def test_bare_kernel_warns_with_kernel_features(tmp_path: Path) -> None:
    by = _by_name(tmp_path)
    assert by[NUMA].status is CheckStatus.WARN and "CONFIG_NUMA" in by[NUMA].detail
    assert by[HUGE].status is CheckStatus.WARN and "CONFIG_HUGETLBFS" in by[HUGE].detail
    assert by[KSM].status is CheckStatus.WARN and "CONFIG_KSM" in by[KSM].detail


def test_hugetlbfs_not_mounted(tmp_path: Path) -> None:
    write(tmp_path, "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages", "0\n")
    write(tmp_path, "proc/mounts", "proc /proc proc rw 0 0\n")
    check = _by_name(tmp_path)[HUGE]
    assert check.status is CheckStatus.WARN and "not mounted at /dev/hugepages" in check.detail
    assert check.hint and check.hint.startswith("mount -t hugetlbfs hugetlbfs /dev/hugepages")
