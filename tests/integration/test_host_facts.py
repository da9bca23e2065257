"""Host facts against the real QEMU: ``cpu-models``, ``domcapabilities``, ``cpu-baseline`` of
two real model expansions, ``hypervisor-cpu-baseline``, ``cpu-stats`` and ``domstats
--iothread --dirtyrate`` of a running tiny guest, and ``nodedev-detach`` refusing on this
kernel without VFIO."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import Pyvirt
from tests.integration.conftest import TINY_CMDLINE

pytestmark = pytest.mark.qemu


def expansions(qemu: str, *models: str) -> dict[str, set[str]]:
    """Each model's enabled features, asked from QEMU directly (not through pyvirt)."""
    cmds = [{"execute": "qmp_capabilities"}]
    cmds += [
        {"execute": "query-cpu-model-expansion",
         "arguments": {"type": "static", "model": {"name": m}}}
        for m in models
    ]  # fmt: skip
    cmds.append({"execute": "quit"})
    proc = subprocess.run(
        [qemu, "-machine", "none", "-accel", "tcg", "-nodefaults", "-display", "none",
         "-qmp", "stdio"],
        input="\n".join(json.dumps(c) for c in cmds) + "\n",
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    replies = [json.loads(line) for line in proc.stdout.splitlines() if '"return"' in line]
    props = [r["return"]["model"]["props"] for r in replies if r["return"]]
    return {m: {k for k, v in p.items() if v is True} for m, p in zip(models, props, strict=True)}


def test_cpu_models_lists_qemus_models(pyvirt: Pyvirt, qemu_binary: str) -> None:
    names = pyvirt("cpu-models", "x86_64").out.split()
    for model in ("qemu64", "Skylake-Client", "EPYC", "Nehalem-v2"):
        assert model in names
    assert "host" not in names and "max" not in names
    listed = json.loads(pyvirt("cpu-models", "x86_64", "--json").out)
    assert {m["name"]: m["alias_of"] for m in listed}["qemu64"] == "qemu64-v1"
    res = pyvirt("cpu-models", "sparc99", check=False)
    assert res.rc == 1 and "no QEMU emulator for architecture 'sparc99'" in res.err


def test_domcapabilities_names_the_machine_types(pyvirt: Pyvirt, qemu_binary: str) -> None:
    help_text = subprocess.run(
        [qemu_binary, "-machine", "help"], capture_output=True, text=True, check=True
    ).stdout
    machines = {line.split()[0] for line in help_text.splitlines()[1:] if line.strip()}
    root = etree.fromstring(pyvirt("domcapabilities", "--virttype", "qemu").out.encode())
    assert root.tag == "domainCapabilities"
    assert root.findtext("path") == qemu_binary and root.findtext("domain") == "qemu"
    assert root.findtext("machine", "").startswith("pc-i440fx-")
    assert root.findtext("machine") in machines
    q35 = etree.fromstring(pyvirt("domcapabilities", "--machine", "q35").out.encode())
    assert q35.findtext("machine", "").startswith("pc-q35-") and q35.findtext("machine") in machines
    assert int(q35.find("vcpu").get("max", "0")) >= 255
    usable = {m.text: m.get("usable") for m in root.iterfind("cpu/mode[@name='custom']/model")}
    assert usable["qemu64"] == "yes"
    assert "virtio" in root.xpath("devices/disk/enum[@name='bus']/value/text()")
    # no VFIO in this kernel: PCI assignment is not offered
    if not Path("/sys/bus/pci/drivers/vfio-pci").exists():
        assert root.xpath("devices/hostdev/enum[@name='pciBackend']/value") == []
    res = pyvirt("domcapabilities", "--machine", "nosuch", check=False)
    assert res.rc == 1 and "machine type 'nosuch'" in res.err


def test_cpu_baseline_of_two_real_model_expansions(pyvirt: Pyvirt, qemu_binary: str) -> None:
    feats = expansions(qemu_binary, "Skylake-Client", "Cascadelake-Server")
    # each CPU as a bare feature list (no model): the baseline has to find the model itself
    xml = "".join(
        "<cpu><vendor>Intel</vendor>"
        + "".join(f"<feature policy='require' name='{f}'/>" for f in sorted(fs))
        + "</cpu>"
        for fs in feats.values()
    )
    (pyvirt.root / "cpus.xml").write_text(xml)
    out = pyvirt("cpu-baseline", str(pyvirt.root / "cpus.xml")).out
    cpu = etree.fromstring(out.encode())
    assert cpu.get("mode") == "custom" and cpu.findtext("vendor") == "Intel"
    model = cpu.findtext("model")
    assert model == "Skylake-Client"  # every Skylake-Client feature is in Cascadelake-Server
    extra = {f.get("name") for f in cpu.iterfind("feature")}
    common = feats["Skylake-Client"] & feats["Cascadelake-Server"]
    assert extra == common - feats["Skylake-Client"]
    # --features lists the whole set: exactly what both CPUs have
    full = etree.fromstring(
        pyvirt("cpu-baseline", "--features", str(pyvirt.root / "cpus.xml")).out.encode()
    )
    assert {f.get("name") for f in full.iterfind("feature")} == common
    # what QEMU's TCG can run of it: a model usable under TCG
    hyper = etree.fromstring(
        pyvirt(
            "hypervisor-cpu-baseline", "--virttype", "qemu", str(pyvirt.root / "cpus.xml")
        ).out.encode()
    )
    caps = etree.fromstring(pyvirt("domcapabilities", "--virttype", "qemu").out.encode())
    usable = {m.text for m in caps.iterfind("cpu/mode[@name='custom']/model[@usable='yes']")}
    assert hyper.findtext("model") in usable


def test_cpu_compare_of_the_hosts_own_baseline(pyvirt: Pyvirt, qemu_binary: str) -> None:
    caps = pyvirt.root / "caps.xml"
    caps.write_text(pyvirt("capabilities").out)
    base = pyvirt.root / "base.xml"
    base.write_text(pyvirt("cpu-baseline", str(caps)).out)
    res = pyvirt("cpu-compare", str(base))
    assert res.out in (
        f"CPU described in {base} is identical to host CPU\n\n",
        f"Host CPU is a superset of CPU described in {base}\n\n",
    )


def guest_xml(image: Any) -> str:
    return f"""<domain type='qemu'>
  <name>cs</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <iothreads>1</iothreads>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{TINY_CMDLINE}</cmdline>
  </os>
  <devices><serial type='pty'><target port='0'/></serial></devices>
</domain>
"""


def domstats(pv: Pyvirt, *args: str) -> dict[str, str]:
    out = pv("domstats", "cs", *args).out
    return dict(line.strip().split("=", 1) for line in out.splitlines() if "=" in line)


def test_cpu_stats_and_domstats_groups_of_a_running_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    xml = pyvirt.root / "cs.xml"
    xml.write_text(guest_xml(tiny_image))
    pyvirt("define", str(xml))
    res = pyvirt("cpu-stats", "cs", check=False)
    assert res.rc == 1 and "not running" in res.err
    pyvirt("start", "cs")
    try:
        time.sleep(1.0)  # the guest boots under TCG: CPU time accrues
        stats = json.loads(pyvirt("cpu-stats", "cs", "--json").out)
        assert stats["total"]["cpu_time"] > 0
        assert stats["total"]["cpu_time"] == (
            stats["total"]["user_time"] + stats["total"]["system_time"]
        )
        per_cpu = stats["cpus"]
        assert len(per_cpu) == os.cpu_count()
        assert sum(c["cpu_time"] for c in per_cpu.values()) > 0
        assert sum(c["vcpu_time"] for c in per_cpu.values()) > 0
        text = pyvirt("cpu-stats", "cs", "--total").out
        assert text.startswith("Total:\n\tcpu_time ") and text.rstrip().endswith("seconds")
        # domstats --iothread / --dirtyrate: what QEMU reports (perf/memory: nothing)
        threads = domstats(pyvirt, "--iothread", "--perf", "--memory")
        assert threads["iothread.count"] == "1" and "iothread.1.poll-max-ns" in threads
        assert not any(k.startswith(("perf.", "memory.")) for k in threads)
        assert domstats(pyvirt, "--dirtyrate")["dirtyrate.calc_status"] == "0"
        res = pyvirt("domdirtyrate-calc", "cs", "--seconds", "1")
        assert res.out == "Start to calculate domain's memory dirty rate successfully.\n"
        deadline = time.monotonic() + 10
        while (rate := domstats(pyvirt, "--dirtyrate"))["dirtyrate.calc_status"] != "2":
            assert time.monotonic() < deadline, rate
            time.sleep(0.3)
        assert rate["dirtyrate.calc_period"] == "1"
        assert int(rate["dirtyrate.megabytes_per_second"]) >= 0
    finally:
        pyvirt("destroy", "cs", check=False)


def test_nodedev_detach_refuses_naming_vfio(pyvirt: Pyvirt) -> None:
    if Path("/sys/bus/pci/drivers/vfio-pci").exists() or Path("/sys/module/vfio_pci").exists():
        pytest.skip("this kernel has VFIO; the refusal is for kernels without it")
    devices = [d for d in pyvirt("nodedev-list", "--cap", "pci").out.split() if d]
    assert devices, "no PCI device in sysfs"
    name = devices[-1]
    addr = name.removeprefix("pci_").replace("_", ":", 2).replace("_", ".")
    link = Path("/sys/bus/pci/devices") / addr / "driver"
    before = os.readlink(link) if link.is_symlink() else None
    res = pyvirt("nodedev-detach", name, check=False)
    assert res.rc == 1 and res.out == ""
    assert res.err.startswith(f"error: cannot detach PCI device {addr}: the kernel has no VFIO")
    assert "hint: load the vfio-pci module" in res.err
    assert (os.readlink(link) if link.is_symlink() else None) == before
    assert pyvirt("nodedev-reattach", name, check=False).rc == 1


def test_the_shell_runs_a_script(pyvirt: Pyvirt, qemu_binary: str) -> None:
    res = pyvirt(input="cpu-models x86_64 ; echo END\nquit\n")
    assert "qemu64\n" in res.out and res.out.endswith("END\n")
