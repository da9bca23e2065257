"""pyvirt.host.validate: each host check against fake trees and canned KVM states."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from host_fakes import kvm_state, write

from pyvirt.host import validate
from pyvirt.host.validate import Check, CheckStatus


def _by_name(checks: list[Check]) -> dict[str, Check]:
    names = [c.name for c in checks]
    assert len(names) == len(set(names)), "check names must be unique"
    return {c.name: c for c in checks}


def _statuses(checks: list[Check]) -> dict[str, str]:
    return {c.name: str(c.status) for c in checks}


HW = "QEMU: Checking for hardware virtualization"
EXISTS = "QEMU: Checking if device /dev/kvm exists"
ACCESS = "QEMU: Checking if device /dev/kvm is accessible"
SPEED = "QEMU: Checking KVM speed (probe)"
QEMU = "QEMU: Checking for qemu-system-x86_64"
IMG = "QEMU: Checking for qemu-img"
TUN = "QEMU: Checking if device /dev/net/tun exists"
VHOST = "QEMU: Checking if device /dev/vhost-net exists"
IOMMU = "QEMU: Checking for device assignment IOMMU support"


@pytest.fixture
def qemu_dir(fake_qemu: Callable[..., Path]) -> Path:
    """A bin dir with fake qemu-system-x86_64 and qemu-img."""
    script = fake_qemu()
    fake_qemu("qemu-img")
    return script.parent


def test_hardware_host_passes_everything(data_dir: Path, qemu_dir: Path) -> None:
    checks = validate.host_validate(
        root=data_dir / "intel-hw", kvm=kvm_state("fast"), search_path=[qemu_dir]
    )
    assert {c.name: c.status for c in checks if c.status is not CheckStatus.PASS} == {}
    by = _by_name(checks)
    assert by[HW].detail == "vmx/svm on 8 CPUs"
    assert (
        "v2 at /sys/fs/cgroup" in by["QEMU: Checking for cgroup 'memory' controller support"].detail
    )
    assert by[QEMU].detail.endswith("(version 7.2.22)")
    assert validate.worst_status(checks) is CheckStatus.PASS


def test_emulated_kvm_host_warns(data_dir: Path, qemu_dir: Path) -> None:
    checks = validate.host_validate(
        root=data_dir / "emulated-kvm", kvm=kvm_state("slow"), search_path=[qemu_dir]
    )
    by = _by_name(checks)
    assert by[HW].status is CheckStatus.WARN and "kvm_pvm" in by[HW].detail
    assert by[EXISTS].status is CheckStatus.PASS and by[ACCESS].status is CheckStatus.PASS
    speed = by[SPEED]
    assert speed.status is CheckStatus.WARN
    assert speed.detail.startswith(
        "KVM is present but ~1,250 times slower than expected; guests will use TCG (type=qemu)"
    )
    assert by[VHOST].status is CheckStatus.WARN and "CONFIG_VHOST_NET" in by[VHOST].detail
    assert by[VHOST].hint == "modprobe vhost_net"
    assert by[IOMMU].status is CheckStatus.WARN and "VFIO" in by[IOMMU].detail
    assert by[IOMMU].hint and "intel_iommu=on" in by[IOMMU].hint
    assert by[TUN].status is CheckStatus.PASS
    cpu_cg = by["QEMU: Checking for cgroup 'cpu' controller support"]
    assert cpu_cg.status is CheckStatus.PASS and cpu_cg.detail == "v1 at /sys/fs/cgroup/cpu"
    assert validate.worst_status(checks) is CheckStatus.WARN


def test_missing_kvm_with_vmx_fails(data_dir: Path, qemu_dir: Path) -> None:
    checks = validate.host_validate(
        root=data_dir / "intel-hw", kvm=kvm_state("absent"), search_path=[qemu_dir]
    )
    by = _by_name(checks)
    assert by[EXISTS].status is CheckStatus.FAIL
    assert by[EXISTS].hint and "modprobe kvm_intel" in by[EXISTS].hint
    assert ACCESS not in by and SPEED not in by


def test_missing_kvm_without_vmx_warns(tmp_path: Path, qemu_dir: Path) -> None:
    write(tmp_path, "proc/cpuinfo", "processor : 0\nflags : fpu sse2\n")
    by = _by_name(
        validate.host_validate(root=tmp_path, kvm=kvm_state("absent"), search_path=[qemu_dir])
    )
    assert by[HW].status is CheckStatus.WARN
    assert by[EXISTS].status is CheckStatus.WARN and "CONFIG_KVM" in by[EXISTS].detail


def test_inaccessible_kvm_fails(data_dir: Path, qemu_dir: Path) -> None:
    by = _by_name(
        validate.host_validate(
            root=data_dir / "intel-hw", kvm=kvm_state("denied"), search_path=[qemu_dir]
        )
    )
    assert by[ACCESS].status is CheckStatus.FAIL
    assert "Permission denied" in by[ACCESS].detail
    assert by[ACCESS].hint and "'kvm'" in by[ACCESS].hint
    assert SPEED not in by


def test_missing_qemu_fails(data_dir: Path, tmp_path: Path) -> None:
    checks = validate.host_validate(
        root=data_dir / "intel-hw", kvm=kvm_state("fast"), search_path=[tmp_path / "empty"]
    )
    by = _by_name(checks)
    assert by[QEMU].status is CheckStatus.FAIL and by[IMG].status is CheckStatus.FAIL
    assert by[QEMU].hint and "apt install" in by[QEMU].hint
    assert validate.worst_status(checks) is CheckStatus.FAIL


def test_bare_tree_warns_on_devices_and_cgroups(tmp_path: Path, qemu_dir: Path) -> None:
    by = _by_name(
        validate.host_validate(root=tmp_path, kvm=kvm_state("absent"), search_path=[qemu_dir])
    )
    assert by[TUN].status is CheckStatus.WARN and "CONFIG_TUN" in by[TUN].detail
    for controller in ("cpu", "memory", "cpuset"):
        assert by[f"QEMU: Checking for cgroup '{controller}' controller support"].status is (
            CheckStatus.WARN
        )


def test_iommu_groups_without_vfio(tmp_path: Path) -> None:
    write(tmp_path, "sys/kernel/iommu_groups/0/type", "DMA\n")
    by = _by_name(validate.host_validate(root=tmp_path, kvm=kvm_state("absent"), search_path=[]))
    assert by[IOMMU].status is CheckStatus.WARN and "/dev/vfio/vfio" in by[IOMMU].detail


def test_cgroup_mounts(tmp_path: Path) -> None:
    write(
        tmp_path,
        "proc/mounts",
        "cgroup /sys/fs/cgroup/cpu\\040x cgroup rw,cpu,cpuacct 0 0\n"
        "cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0\n"
        "cgroup2 /nowhere cgroup2 rw 0 0\n",
    )
    write(tmp_path, "sys/fs/cgroup/unified/cgroup.controllers", "cpu memory\n")
    assert validate.cgroup_controllers(tmp_path) == {
        "cpu": "v1 at /sys/fs/cgroup/cpu x",
        "cpuacct": "v1 at /sys/fs/cgroup/cpu x",
        "memory": "v2 at /sys/fs/cgroup/unified",
        "devices": "v2 at /sys/fs/cgroup/unified",
    }


def test_format_checks() -> None:
    text = validate.format_checks(
        [
            Check("QEMU: a", CheckStatus.PASS, "fine"),
            Check("QEMU: longer", CheckStatus.WARN, "not great", "do this"),
        ]
    )
    assert text == ("QEMU: a      : PASS\nQEMU: longer : WARN\n    not great\n    hint: do this\n")
    assert validate.format_checks([]) == ""
    assert validate.worst_status([]) is CheckStatus.PASS
