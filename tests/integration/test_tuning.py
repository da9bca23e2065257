"""Live tuning of a running tiny guest through the CLI: cgroups, pinning, balloon, vCPUs."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.conftest import TINY_CMDLINE
from tests.integration.test_lifecycle import console_log, wait_for, wait_marker

pytestmark = pytest.mark.qemu

MEMINFO_LOOP = "(while :; do grep MemTotal /proc/meminfo; sleep 0.5; done) &"


def tune_xml(
    image: Any, name: str, *, memory_mib: int = 160, extra: str = "", run: str = ""
) -> str:
    cmdline = TINY_CMDLINE
    if run:
        cmdline += " pyvirt.run=" + base64.b64encode(run.encode()).decode()
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu current='1'>2</vcpu>
  {extra}
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='virtio'><stats period='1'/></memballoon>
  </devices>
</domain>
"""


def start(pv: Pyvirt, xml: str, name: str) -> int:
    path = pv.root / f"{name}.xml"
    path.write_text(xml)
    pv("define", str(path))
    pv("start", name)
    rec = json.loads((pv.root / "run" / "qemu" / name / "runtime.json").read_text())
    return int(rec["pid"])


def cgroup_dirs(pid: int) -> dict[str, Path]:
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for ctrl in ctrls.split(","):
            if ctrl in ("cpu", "memory", "cpuset"):
                out[ctrl] = Path("/sys/fs/cgroup") / ctrl / path.lstrip("/")
    return out


def allowed(pid: int, tid: int) -> str:
    status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
    return re.search(r"Cpus_allowed_list:\s*(\S+)", status).group(1)  # type: ignore[union-attr]


def needs_v1() -> None:
    if not Path("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists():
        pytest.skip("these checks read cgroup v1 files; this host has no v1 memory controller")


def test_live_tuning(pyvirt: Pyvirt, tiny_image: Any) -> None:
    needs_v1()
    extra = (
        "<memtune><hard_limit unit='MiB'>1024</hard_limit></memtune>"
        "<cputune><shares>512</shares><vcpupin vcpu='0' cpuset='0'/></cputune>"
    )
    pid = start(pyvirt, tune_xml(tiny_image, "tu1", extra=extra, run=MEMINFO_LOOP), "tu1")
    wait_marker(pyvirt, "tu1")
    dirs = cgroup_dirs(pid)
    # the domain's own cgroup, with the limits of the XML
    assert dirs["memory"].parent.name == "pyvirt" and dirs["memory"].name == "tu1"
    assert (dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == str(1024 << 20)
    assert (dirs["cpu"] / "cpu.shares").read_text().strip() == "512"
    info = json.loads(pyvirt("vcpuinfo", "tu1", "--json").out)
    tid = info[0]["thread"]
    assert allowed(pid, tid) == "0"  # <vcpupin> applied at start

    # vcpupin / emulatorpin live: read back from /proc
    pyvirt("vcpupin", "tu1", "0", "1", "--live")
    assert allowed(pid, tid) == "1"
    assert " 0      1" in pyvirt("vcpupin", "tu1").out
    pyvirt("emulatorpin", "tu1", "0")
    emulator = [int(t) for t in os.listdir(f"/proc/{pid}/task") if int(t) != tid]
    assert emulator and all(allowed(pid, t) == "0" for t in emulator)
    assert allowed(pid, tid) == "1"
    pyvirt("vcpupin", "tu1", "0", "1", "--config")
    assert "<vcpupin vcpu='0' cpuset='1'/>" in pyvirt("dumpxml", "tu1", "--inactive").out

    # schedinfo and memtune through the cgroup files
    pyvirt("schedinfo", "tu1", "--set", "cpu_shares=256,vcpu_quota=50000", "--live")
    assert (dirs["cpu"] / "cpu.shares").read_text().strip() == "256"
    assert (dirs["cpu"] / "cpu.cfs_quota_us").read_text().strip() == "50000"
    assert "cpu_shares     : 256" in pyvirt("schedinfo", "tu1").out
    pyvirt("memtune", "tu1", "--hard-limit", "900M", "--soft-limit", "600M")
    assert (dirs["memory"] / "memory.limit_in_bytes").read_text().strip() == str(900 << 20)
    assert (dirs["memory"] / "memory.soft_limit_in_bytes").read_text().strip() == str(600 << 20)
    assert "hard_limit     : 921600" in pyvirt("memtune", "tu1").out
    pyvirt("numatune", "tu1", "--nodeset", "0", "--live")
    assert (dirs["cpuset"] / "cpuset.mems").read_text().strip() == "0"

    # balloon: the guest's MemTotal and QEMU's actual follow setmem
    log = console_log(pyvirt, "tu1")

    def mem_totals() -> list[int]:
        return [int(v) for v in re.findall(r"MemTotal:\s+(\d+) kB", log.read_text())]

    wait_for(lambda: mem_totals(), 30, "MemTotal lines from the guest")
    before = mem_totals()[-1]
    pyvirt("setmem", "tu1", "100M", "--live")
    wait_for(lambda: "actual 102400" in pyvirt("dommemstat", "tu1").out, 30, "balloon actual")
    wait_for(lambda: mem_totals()[-1] <= before - 50 * 1024, 30, "guest MemTotal to shrink")
    wait_for(lambda: "available" in pyvirt("dommemstat", "tu1").out, 30, "guest stats")
    stats = json.loads(pyvirt("dommemstat", "tu1", "--json").out)
    assert stats["actual"] == 102400 and stats["rss"] > 0 and stats["available"] > 0
    assert "<currentMemory unit='KiB'>102400</currentMemory>" in pyvirt("dumpxml", "tu1").out

    # vCPU hotplug: 1 -> 2
    pyvirt("setvcpus", "tu1", "2", "--live")
    assert "current      live           2" in pyvirt("vcpucount", "tu1").out
    assert len(json.loads(pyvirt("vcpuinfo", "tu1", "--json").out)) == 2

    pyvirt("destroy", "tu1")
    assert not any(d.exists() for d in dirs.values())


def test_bad_input(pyvirt: Pyvirt, tiny_image: Any) -> None:
    path = pyvirt.root / "bad.xml"
    path.write_text(tune_xml(tiny_image, "bad"))
    pyvirt("define", str(path))
    cases = [
        (("setvcpus", "bad", "0", "--config"), "out of range 1-255"),
        (("setvcpus", "bad", "300", "--config", "--maximum"), "out of range 1-255"),
        (("setvcpus", "bad", "3", "--config"), "at most 2 vCPUs"),
        (("vcpupin", "bad", "0", "0,4096", "--config"), "CPUs 4096 the host does not have"),
        (("vcpupin", "bad", "5", "0", "--config"), "has no vCPU 5"),
        (("emulatorpin", "bad", "x-y"), "is malformed"),
        (("numatune", "bad", "--nodeset", "7"), "NUMA nodes 7 the host does not have"),
        (("setmem", "bad", "1G", "--config"), "out of range"),
        (("setmem", "bad", "100M", "--live"), "is not running"),
        (("schedinfo", "bad", "--set", "bogus=1"), "unknown scheduler parameter 'bogus'"),
        (("memtune", "bad", "--hard-limit", "12XB"), "is not one of"),
    ]
    for args, message in cases:
        res = pyvirt(*args, check=False)
        assert res.rc == 1 and message in res.err and "Traceback" not in res.err, (args, res.err)
    pyvirt("setmaxmem", "bad", "128M", "--config")
    xml = pyvirt("dumpxml", "bad", "--inactive").out
    assert "<memory unit='KiB'>131072</memory>" in xml
    assert "<currentMemory unit='KiB'>131072</currentMemory>" in xml


def test_memtune_hard_limit_oom(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """A guest touching more than its hard limit: the kernel reclaims, then OOM-kills QEMU."""
    needs_v1()
    fill = "sleep 1; dd if=/dev/zero of=/dev/shm/fill bs=1M count=200; echo FILLED"
    extra = "<memtune><hard_limit unit='MiB'>120</hard_limit></memtune>"
    pid = start(pyvirt, tune_xml(tiny_image, "oom", memory_mib=320, extra=extra, run=fill), "oom")
    mem = cgroup_dirs(pid)["memory"]
    failcnt = 0

    def killed() -> bool:
        nonlocal failcnt
        with contextlib.suppress(OSError):  # the reaper removes the cgroup once QEMU is gone
            failcnt = max(failcnt, int((mem / "memory.failcnt").read_text()))
        return not Path(f"/proc/{pid}").exists()

    wait_for(killed, 90, "QEMU to be killed")
    # the cgroup is gone with QEMU (eager stop), so the kernel log tells who killed it; the
    # OOM report also carries the cgroup's failcnt, which polling can miss when the kill is fast
    kmsg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
    assert re.search(rf"Memory cgroup out of memory: Killed process {pid} ", kmsg)
    reported = [int(n) for n in re.findall(r"limit 122880kB, failcnt (\d+)", kmsg)]
    assert failcnt > 0 or any(reported)  # the limit was hit (reclaim) before the kill
    assert "FILLED" not in console_log(pyvirt, "oom").read_text()
    assert pyvirt("domstate", "oom", "--reason").out.strip() == "shut off (crashed)"
    wait_for(lambda: not mem.exists(), 2, "the cgroup to be removed")


def test_plain_domain_gets_cgroup_on_demand(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """No limits in the XML: no cgroup at start (fast path); the first live memtune makes one."""
    needs_v1()
    pid = start(pyvirt, tune_xml(tiny_image, "plain"), "plain")
    assert "pyvirt" not in str(cgroup_dirs(pid).get("memory", ""))
    pyvirt("memtune", "plain", "--hard-limit", "262144", "--live")
    mem = cgroup_dirs(pid)["memory"]
    assert "plain" in str(mem)
    assert int((mem / "memory.limit_in_bytes").read_text()) == 262144 * 1024
    pyvirt("destroy", "plain")
    assert not mem.exists()
