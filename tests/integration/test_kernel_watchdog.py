"""The kernel's watchdog for real (issue 16): where the kernel has ``softdog``, arming starts
its timer (``/sys/class/watchdog/*/state`` reads ``active``) with the fence margin as its
timeout, and the magic close stops it again.

Only where a forgotten timer cannot reset the machine: softdog loaded with ``nowayout`` off
(the magic close works) and nobody else holding the device. Elsewhere — the machines pyvirt's
CI runs on have no softdog module — it is skipped, saying so; the protocol itself is unit
tested on a plain file (tests/unit/cluster/test_kernel_watchdog.py)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pyvirt.service.cluster.kernel_watchdog import DEVICE, TIMEOUT, KernelWatchdog

NOWAYOUT = Path("/sys/module/softdog/parameters/nowayout")


def _sysfs() -> Path | None:
    for state in sorted(Path("/sys/class/watchdog").glob("watchdog*/identity")):
        if "soft" in state.read_text().lower():
            return state.parent
    return None


def test_softdog_armed_and_disarmed() -> None:
    if not DEVICE.exists() or not NOWAYOUT.exists():
        pytest.skip("no /dev/watchdog from softdog: this kernel has no softdog module loaded")
    if NOWAYOUT.read_text().strip() not in ("0", "N"):
        pytest.skip("softdog runs with nowayout: a test cannot stop its timer again")
    sysfs = _sysfs()
    if sysfs is None or (sysfs / "state").read_text().strip() == "active":
        pytest.skip("the watchdog device is softdog's, but another process has armed it")
    dog = KernelWatchdog()
    assert dog.arm()
    try:
        assert (sysfs / "state").read_text().strip() == "active"
        assert int((sysfs / "timeout").read_text()) == TIMEOUT
        for _ in range(3):
            time.sleep(TIMEOUT / 4)
            dog.pet()
    finally:
        dog.disarm()
    assert (sysfs / "state").read_text().strip() == "inactive"
