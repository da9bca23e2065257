"""vCPU hot-plug on a running TCG guest: plugging works and the guest sees the vCPUs; live
unplug is refused with a clear error (QEMU 7.2's TCG corrupts its heap once a vCPU is
unplugged: the next plug aborts QEMU with "corrupted double-linked list", even when the guest
offlined the vCPU first), and the guest keeps running through several rounds."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.nethelp import shell
from tests.integration.test_lifecycle import domain_xml, wait_marker

pytestmark = pytest.mark.qemu


def _present(pv: Pyvirt, name: str) -> str:
    out = shell(pv, name, "echo CPUS=$(cat /sys/devices/system/cpu/present)")
    return re.findall(r"^CPUS=(\S+)", out, re.M)[-1]


def test_tcg_plug_works_and_unplug_is_refused(pyvirt: Pyvirt, tiny_image: Any) -> None:
    xml = domain_xml(tiny_image, "vc1").replace(
        "<vcpu>1</vcpu>", "<vcpu placement='static' current='1'>4</vcpu>"
    )
    path = pyvirt.root / "vc1.xml"
    path.write_text(xml)
    pyvirt("define", str(path))
    pyvirt("start", "vc1")
    wait_marker(pyvirt, "vc1")
    assert _present(pyvirt, "vc1") == "0"

    pyvirt("setvcpus", "vc1", "3", "--live")
    assert "current      live           3" in pyvirt("vcpucount", "vc1").out
    for _ in range(3):
        res = pyvirt("setvcpus", "vc1", "2", "--live", check=False)
        assert res.rc == 1
        assert "vCPUs cannot be unplugged while a TCG (type='qemu') domain runs" in res.err
        assert "lower the count with --config and restart the domain" in res.err
        assert "current      live           3" in pyvirt("vcpucount", "vc1").out
    pyvirt("setvcpus", "vc1", "4", "--live")
    time.sleep(2)  # the crash used to follow within a second
    assert pyvirt("domstate", "vc1", "--reason").out.strip() == "running (booted)"
    assert _present(pyvirt, "vc1") == "0-3"
    assert "current      live           4" in pyvirt("vcpucount", "vc1").out

    # the supported way down: the next boot
    pyvirt("setvcpus", "vc1", "2", "--config")
    assert "current      config         2" in pyvirt("vcpucount", "vc1").out
    log = (pyvirt.root / "log" / "qemu" / "vc1" / "qemu.log").read_text()
    assert "corrupted" not in log and "double free" not in log and "crashed" not in log
    pyvirt("destroy", "vc1")
    pyvirt("start", "vc1")
    wait_marker(pyvirt, "vc1", count=2)  # the console log is appended to
    assert _present(pyvirt, "vc1") == "0-1"
    assert "current      live           2" in pyvirt("vcpucount", "vc1").out
    pyvirt("destroy", "vc1")
