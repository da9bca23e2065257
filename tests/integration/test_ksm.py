"""KSM measured: 4 identical tiny guests share pages; with <nosharepages/> they share none.

Counts are per QEMU process (``/proc/PID/ksm_merging_pages``) because other QEMUs on the
host may be merged too; the global ``pages_shared``/``pages_sharing`` are printed for the
report. KSM settings are restored afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import wait_for, wait_marker
from tests.integration.test_tuning import start, tune_xml

pytestmark = pytest.mark.qemu

KSM = Path("/sys/kernel/mm/ksm")
SETTINGS = ("run", "pages_to_scan", "sleep_millisecs")
GUESTS = 4


def ksm(name: str) -> int:
    return int((KSM / name).read_text())


def merging(pid: int) -> int:
    return int(Path(f"/proc/{pid}/ksm_merging_pages").read_text())


@pytest.fixture
def fast_ksm() -> Iterator[None]:
    if not (KSM / "run").exists():
        pytest.skip("the kernel has no KSM (CONFIG_KSM)")
    if not Path("/proc/self/ksm_merging_pages").exists():
        pytest.skip("the kernel has no per-process KSM counters (/proc/PID/ksm_merging_pages)")
    saved = {name: (KSM / name).read_text().strip() for name in SETTINGS}
    (KSM / "pages_to_scan").write_text("2000")
    (KSM / "sleep_millisecs").write_text("10")
    (KSM / "run").write_text("1")
    try:
        yield
    finally:
        for name in ("pages_to_scan", "sleep_millisecs", "run"):
            (KSM / name).write_text(saved[name])


def boot(pv: Pyvirt, image: Any, prefix: str, extra: str = "") -> list[int]:
    pids = [start(pv, tune_xml(image, f"{prefix}{i}", memory_mib=96, extra=extra), f"{prefix}{i}")
            for i in range(GUESTS)]  # fmt: skip
    for i in range(GUESTS):
        wait_marker(pv, f"{prefix}{i}")
    return pids


def mergeable_ram(pid: int) -> list[bool]:
    """For each mapping of 64 MiB or more (the guest RAM): is it MADV_MERGEABLE (``mg``)?"""
    out, size = [], 0
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        if line.startswith("Size:"):
            size = int(line.split()[1])
        elif line.startswith("VmFlags:") and size >= 64 * 1024:
            out.append(" mg" in line + " ")
    return out


def test_ksm_sharing(pyvirt: Pyvirt, tiny_image: Any, fast_ksm: None) -> None:
    before = (ksm("pages_shared"), ksm("pages_sharing"))
    pids = boot(pyvirt, tiny_image, "k")
    t0 = time.monotonic()
    wait_for(lambda: all(merging(p) > 1000 for p in pids), 120, "KSM to merge guest pages")
    time.sleep(2)
    per_guest = [merging(p) for p in pids]
    shared, sharing = ksm("pages_shared") - before[0], ksm("pages_sharing") - before[1]
    print(
        f"\nKSM {GUESTS} guests: merging pages per QEMU {per_guest} "
        f"({sum(per_guest) * 4 // 1024} MiB), pages_shared +{shared}, pages_sharing +{sharing} "
        f"(saved ~{sharing * 4 // 1024} MiB), after {time.monotonic() - t0:.1f} s"
    )
    # host-wide deltas also move with other processes' pages (other guests unmerging), so the
    # assertion uses the per-process counters waited for above plus the absolute host figure
    assert ksm("pages_sharing") > 0 and any(mergeable_ram(pids[0]))
    # keep k0 running: ksmd only scans (and counts full scans) while some process has
    # mergeable memory, and the <nosharepages/> guests below have none
    for i in range(1, GUESTS):
        pyvirt("destroy", f"k{i}")

    # <nosharepages/>: QEMU runs with mem-merge=off, KSM never sees the guest RAM
    pids = boot(pyvirt, tiny_image, "n", "<memoryBacking><nosharepages/></memoryBacking>")
    assert not any(mergeable_ram(pids[0]))
    scans = ksm("full_scans")
    wait_for(lambda: ksm("full_scans") >= scans + 1, 120, "a KSM full scan")
    per_guest = [merging(p) for p in pids]
    print(f"KSM {GUESTS} guests with <nosharepages/>: merging pages per QEMU {per_guest}")
    assert per_guest == [0] * GUESTS
