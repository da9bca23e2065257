"""Node commands, the advisor and the planner end to end on this machine's real sysfs/procfs.

Writes to /sys (KSM settings, hugepage pools) are relative and restored: other tests on the
same host may be using hugepages or KSM at the same time.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import domain_xml

KSM = Path("/sys/kernel/mm/ksm")
NODE0_2M = Path("/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages")
SEED = Path(__file__).resolve().parents[1] / "data" / "host" / "seed-2x8"


def _meminfo(key: str) -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def test_nodeinfo_and_memory_commands(pyvirt: Pyvirt) -> None:
    info = json.loads(pyvirt("nodeinfo", "--json").out)
    assert info["cpus"] == len(os.sched_getaffinity(0)) or info["cpus"] == os.cpu_count()
    assert info["memory_kib"] == _meminfo("MemTotal") and info["cpu_model"] == "x86_64"
    text = pyvirt("nodeinfo").out
    assert re.search(rf"^CPU\(s\):\s+{info['cpus']}$", text, re.M)
    assert re.search(r"^NUMA cell\(s\):\s+\d+$", text, re.M)
    stats = pyvirt("nodememstats").out
    assert re.search(rf"^total  :\s+{_meminfo('MemTotal')} KiB$", stats, re.M)
    cells = json.loads(pyvirt("freecell", "--all", "--json").out)
    assert cells["cells"][0]["cell"] == 0 and cells["total_kib"] > 0
    bad = pyvirt("freecell", "--cellno", "99", check=False)
    assert bad.rc == 1 and "error: NUMA cell 99 does not exist on this host" in bad.err


def test_nodecpustats_percent(pyvirt: Pyvirt) -> None:
    pct = json.loads(pyvirt("nodecpustats", "--percent", "--json").out)
    total = pct["user"] + pct["system"] + pct["idle"] + pct["iowait"]
    assert 99.0 < total < 101.0
    ns = json.loads(pyvirt("nodecpustats", "--cpu", "0", "--json").out)
    assert ns["idle"] > 0
    assert (
        "host CPU 4096 does not exist" in pyvirt("nodecpustats", "--cpu", "4096", check=False).err
    )


@pytest.mark.skipif(not KSM.is_dir(), reason="kernel lacks KSM (CONFIG_KSM)")
def test_node_memory_tune_sets_and_restores_ksm(pyvirt: Pyvirt) -> None:
    before = int((KSM / "pages_to_scan").read_text())
    try:
        out = pyvirt("node-memory-tune", "--shm-pages-to-scan", str(before + 7)).out
        assert re.search(rf"shm_pages_to_scan\s+{before + 7}$", out, re.M)
        assert int((KSM / "pages_to_scan").read_text()) == before + 7  # the kernel's value
        assert "shm_pages_sharing" in out and "shm_run" in out
        bad = pyvirt("node-memory-tune", "--shm-merge-across-nodes", "5", check=False)
        assert bad.rc == 1 and "error:" in bad.err
    finally:
        (KSM / "pages_to_scan").write_text(f"{before}\n")


@pytest.mark.skipif(not NODE0_2M.exists(), reason="kernel lacks HugeTLB (CONFIG_HUGETLBFS)")
def test_allocpages_reserves_and_reads_back(pyvirt: Pyvirt) -> None:
    start = int(NODE0_2M.read_text())
    try:
        out = pyvirt("allocpages", "--pagesize", "2M", "--cellno", "0", "--add", "2").out
        now = int(NODE0_2M.read_text())
        assert now == start + 2 or now >= start + 2  # others may add at the same time
        assert "pages of size 2M reserved on cell 0" in out
        bad = pyvirt("allocpages", "--pagesize", "3M", "1", check=False)
        assert bad.rc == 1 and "page size '3M' is not supported by this host" in bad.err
        assert "hint: use one of: 2M" in bad.err
    finally:
        current = int(NODE0_2M.read_text())
        pyvirt("allocpages", "2M", str(max(0, current - 2)), "--cellno", "0", check=False)


def test_capabilities_and_host_validate_have_numa(pyvirt: Pyvirt) -> None:
    caps = pyvirt("capabilities").out
    assert "<cells num=" in caps and "<freememory unit='KiB'>" in caps
    checks = {c["name"]: c for c in json.loads(pyvirt("host-validate", "--json", check=False).out)}
    numa = checks["QEMU: Checking for NUMA support"]
    assert numa["status"] in ("PASS", "WARN")
    assert "QEMU: Checking for KSM (same-page merging) support" in checks
    huge = checks["QEMU: Checking for hugepage support (hugetlbfs at /dev/hugepages)"]
    mounted = any(
        line.split()[1] == "/dev/hugepages" and line.split()[2] == "hugetlbfs"
        for line in Path("/proc/mounts").read_text().splitlines()
    )
    assert (huge["status"] == "PASS") == mounted


def test_plan_seed_case_cli(pyvirt: Pyvirt, tmp_path: Path) -> None:
    host = tmp_path / "seed.host"
    host.write_text("sockets=2\ncores=8\nmemory=128G\n")
    out = pyvirt("plan", "--host", str(host), "--workload", "name=mail,count=4,disk=mail").out
    rows = [ln.split() for ln in out.splitlines() if ln.startswith(" mail")]
    assert [(r[1], r[2], r[3]) for r in rows] == [("4", "32", "GiB")] * 4
    assert sorted(r[5] for r in rows) == ["0", "0", "1", "1"]
    data = json.loads(
        pyvirt(
            "plan",
            "--host",
            str(host),
            "--workload",
            "name=mail,count=3,disk=mail",
            "--workload",
            "name=db,disk=database",
            "--json",
        ).out
    )
    assert {v["name"]: v["provisioning"] for v in data["vms"]}["db"] == "thick"
    env_plan = Pyvirt(pyvirt.root)
    env_plan.env["PYVIRT_HOST_ROOT"] = str(SEED)
    same = json.loads(env_plan("plan", "--workload", "name=mail,count=4,disk=mail", "--json").out)
    assert [v["memory_kib"] for v in same["vms"]] == [32 * 1024 * 1024] * 4


@pytest.mark.qemu
def test_advisor_on_define_start_and_request(pyvirt: Pyvirt, tiny_image: Any) -> None:
    cpus = len(os.sched_getaffinity(0))
    vcpus = cpus + 1  # overcommit on this host, whatever its size
    xml = domain_xml(tiny_image, "adv").replace(
        "<vcpu>1</vcpu>",
        f"<vcpu>{vcpus}</vcpu><cpu><topology sockets='1' cores='{vcpus}' threads='1'/></cpu>",
    )
    path = pyvirt.root / "adv.xml"
    path.write_text(xml)
    res = pyvirt("define", str(path))
    assert f"warning: domain 'adv' has {vcpus} vCPUs but the host has only {cpus} CPUs" in res.err
    advice = json.loads(pyvirt("numa-advise", "adv", "--json").out)["advice"]
    assert "vcpu-overcommit" in [a["code"] for a in advice]
    started = pyvirt("start", "adv")
    assert "vCPUs but the host has only" in started.err  # compile path
    pyvirt("destroy", "adv")
    again = pyvirt("start", "adv")  # cached plan: the stored warning is repeated
    assert "vCPUs but the host has only" in again.err
    pyvirt("destroy", "adv")
    big = path.read_text().replace("adv", "adv80")
    big = re.sub(r"<vcpu>\d+</vcpu><cpu>.*?</cpu>", "<vcpu>80</vcpu>", big)
    (pyvirt.root / "adv80.xml").write_text(big)
    refused = pyvirt("define", str(pyvirt.root / "adv80.xml"), check=False)
    assert refused.rc == 1 and "80 vCPUs, more than the limit of 64" in refused.err
    assert "adv80" not in pyvirt("list", "--all").out
    assert pyvirt("define", "--force", str(pyvirt.root / "adv80.xml")).rc == 0
    pyvirt("undefine", "adv80")
    created = pyvirt("create", str(pyvirt.root / "adv80.xml"), check=False)
    assert created.rc == 1 and "more than the limit of 64" in created.err  # transient: refused
    assert "define --force" in created.err
    assert "adv80" not in pyvirt("list", "--all").out
