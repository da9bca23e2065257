"""Host facts on the real machine: the KVM probe, capabilities and host-validate.

These assert that the probe is bounded and self-consistent, never that this particular machine
is slow: on a hardware host the same tests must pass with a ``fast`` verdict.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
from lxml import etree

from pyvirt.host import kvm, validate
from pyvirt.host.capabilities import capabilities
from pyvirt.host.qemu_binaries import find_qemu_binaries

needs_kvm = pytest.mark.skipif(not kvm.KVM_DEVICE.exists(), reason="no /dev/kvm on this host")
needs_qemu = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="qemu-system-x86_64 not installed"
)


def _assert_consistent(status: kvm.KvmStatus) -> None:
    """The verdict must follow from the measured numbers, whatever the host."""
    assert status.verdict in ("fast", "slow", "absent")
    if status.verdict == "fast":
        assert status.usable
        assert status.loop_rate is not None and status.loop_rate >= kvm.FAST_LOOP_RATE
        assert status.exits_per_sec is not None and status.exits_per_sec >= kvm.FAST_EXIT_RATE
    elif status.verdict == "slow":
        assert status.usable
        assert (
            status.loop_rate is None
            or status.loop_rate < kvm.FAST_LOOP_RATE
            or (status.exits_per_sec or 0) < kvm.FAST_EXIT_RATE
        )
    else:
        assert not status.usable
    assert kvm.default_domain_type(status) == ("kvm" if status.verdict == "fast" else "qemu")


@needs_kvm
def test_kvm_probe_is_bounded_and_consistent() -> None:
    start = time.monotonic()
    status = kvm.kvm_status()
    elapsed = time.monotonic() - start
    assert elapsed < 2.0, f"KVM probe took {elapsed:.2f} s"
    assert status.device.exists
    _assert_consistent(status)
    if status.probe is not None:
        print(  # visible with -s: the numbers this machine measured
            f"\nKVM verdict={status.verdict} loop_rate={status.loop_rate} "
            f"exits/s={status.exits_per_sec} slowdown={status.slowdown} "
            f"probe_elapsed={status.probe.elapsed:.3f}s"
        )


@needs_kvm
def test_kvm_probe_cache_is_reused(tmp_path: Path) -> None:
    cache = tmp_path / "kvm-probe.json"
    first = kvm.kvm_status(cache_path=cache)
    if first.probe is None:
        pytest.skip(f"KVM not probed here: {first.reason}")
    start = time.monotonic()
    second = kvm.kvm_status(cache_path=cache)
    assert time.monotonic() - start < 0.5
    assert second.cached and second.verdict == first.verdict
    _assert_consistent(second)


def test_kvm_status_without_device_is_absent(tmp_path: Path) -> None:
    status = kvm.kvm_status(device=tmp_path / "kvm")
    assert status.verdict == "absent"
    assert kvm.default_domain_type(status) == "qemu"


@needs_qemu
@pytest.mark.qemu
def test_capabilities_lists_installed_qemu(tmp_path: Path) -> None:
    status = kvm.kvm_status(cache_path=tmp_path / "kvm-probe.json")
    doc = etree.fromstring(capabilities(kvm=status, cache_dir=tmp_path / "cache").encode())
    assert doc.tag == "capabilities"
    assert doc.findtext("host/uuid")
    assert doc.findtext("host/cpu/arch")
    emulators = {str(e) for e in doc.xpath("guest/arch/emulator/text()")}
    binaries = find_qemu_binaries()
    assert {str(p) for p in binaries.values()} == emulators
    x86 = doc.xpath("guest[arch/emulator=$e]", e=str(binaries["x86_64"]))[0]
    assert x86.xpath("string(arch/@name)") == "x86_64"
    assert x86.xpath("arch/machine[.='pc']/@canonical")
    types = x86.xpath("arch/domain/@type")
    assert "qemu" in types
    assert ("kvm" in types) == status.usable


@needs_qemu
@pytest.mark.qemu
def test_host_validate_runs_every_check(tmp_path: Path) -> None:
    start = time.monotonic()
    checks = validate.host_validate(kvm_cache_path=tmp_path / "kvm-probe.json")
    assert time.monotonic() - start < 5.0
    by = {c.name: c for c in checks}
    assert len(by) == len(checks)
    assert by["QEMU: Checking for qemu-system-x86_64"].status is validate.CheckStatus.PASS
    for check in checks:
        if check.status is not validate.CheckStatus.PASS:
            assert check.detail, f"{check.name} gives no reason"
    speed = by.get("QEMU: Checking KVM speed (probe)")
    if speed is not None and speed.status is validate.CheckStatus.WARN:
        assert "guests will use TCG (type=qemu)" in speed.detail
