"""A libvirt-python program run unchanged against pyvirt through the ``libvirt`` shim: it
defines, starts, lists, inspects, pauses and resumes a real guest, hot-plugs a disk, destroys
and undefines it, and receives the lifecycle events through libvirt's default event loop:
once with pyvirtd running (events from its stream), once embedded (events from the poller)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import pyvirt
from pyvirt.images.tiny import TinyImage
from tests.daemonhelp import pyvirtd
from tests.integration.conftest import TINY_CMDLINE

pytestmark = pytest.mark.qemu

SHIM = Path(pyvirt.__file__).resolve().parent / "libvirt_shim"
SRC = Path(pyvirt.__file__).resolve().parents[1]

# The program: plain libvirt-python, nothing pyvirt-specific (it prints its findings as JSON).
PROGRAM = r'''
import json
import sys
import threading
import time

import libvirt

kernel, initrd, cmdline, image = sys.argv[1:5]
XML = f"""<domain type='qemu'>
  <name>lv1</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <memballoon model='virtio'/>
  </devices>
</domain>"""
DISK = f"""<disk type='file' device='disk'>
  <driver name='qemu' type='raw'/><source file='{image}'/><target dev='vdb' bus='virtio'/>
</disk>"""

events = []


def lifecycle(conn, dom, event, detail, opaque):
    events.append([dom.name(), event, detail, opaque])


def run_loop():
    while True:
        libvirt.virEventRunDefaultImpl()


def wait_event(event, detail):
    deadline = time.time() + 60
    while ["lv1", event, detail, "me"] not in events:
        if time.time() > deadline:
            sys.exit(f"no event {event}/{detail} within 60 s; got {events}")
        time.sleep(0.05)


libvirt.virEventRegisterDefaultImpl()
conn = libvirt.open("qemu:///system")
threading.Thread(target=run_loop, daemon=True).start()
cb = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE, lifecycle, "me")
out = {}

dom = conn.defineXML(XML)
dom.create()
wait_event(libvirt.VIR_DOMAIN_EVENT_STARTED, libvirt.VIR_DOMAIN_EVENT_STARTED_BOOTED)
out["ids"] = conn.listDomainsID()
out["id"] = dom.ID()
out["active"] = [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]
out["inactive"] = [d.name() for d in conn.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_INACTIVE)]
out["state"] = dom.state()
out["is_active"] = dom.isActive()
out["uuid_matches"] = conn.lookupByUUIDString(dom.UUIDString()).name() == "lv1"
out["by_id"] = conn.lookupByID(dom.ID()).name()
time.sleep(1)
out["info"] = dom.info()

dom.suspend()
wait_event(libvirt.VIR_DOMAIN_EVENT_SUSPENDED, libvirt.VIR_DOMAIN_EVENT_SUSPENDED_PAUSED)
out["paused_state"] = dom.state()
dom.resume()
wait_event(libvirt.VIR_DOMAIN_EVENT_RESUMED, libvirt.VIR_DOMAIN_EVENT_RESUMED_UNPAUSED)

dom.attachDeviceFlags(DISK, libvirt.VIR_DOMAIN_AFFECT_LIVE)
out["live_xml_has_disk"] = image in dom.XMLDesc(0)
out["config_xml_has_disk"] = image in dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
out["block_stats"] = list(dom.blockStats("vdb"))
dom.setMemory(131072)
out["memory_after_set"] = dom.info()[2]
out["memory_stats"] = dom.memoryStats()

dom.destroy()
wait_event(libvirt.VIR_DOMAIN_EVENT_STOPPED, libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED)
out["after_destroy"] = dom.state()
try:
    dom.destroy()
except libvirt.libvirtError as e:
    out["destroy_again"] = e.get_error_code()
dom.undefine()
wait_event(libvirt.VIR_DOMAIN_EVENT_UNDEFINED, libvirt.VIR_DOMAIN_EVENT_UNDEFINED_REMOVED)
try:
    conn.lookupByName("lv1")
except libvirt.libvirtError as e:
    out["lookup_after_undefine"] = e.get_error_code()
out["events"] = events
conn.domainEventDeregisterAny(cb)
conn.close()
print(json.dumps(out))
'''


def run_program(root: Path, image: TinyImage, disk: Path) -> dict[str, Any]:
    script = root.parent / f"{root.name}-program.py"
    script.write_text(PROGRAM)
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root), "PYTHONPATH": f"{SHIM}:{SRC}"}
    env.pop("PYVIRT_DEFAULT_URI", None)
    env.pop("LIBVIRT_DEFAULT_URI", None)
    try:
        proc = subprocess.run(
            [sys.executable, str(script), str(image.kernel), str(image.initrd), TINY_CMDLINE,
             str(disk)],
            env=env, capture_output=True, text=True, timeout=240,
        )  # fmt: skip
    finally:
        script.unlink()
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


@pytest.mark.parametrize("mode", ["daemon", "embedded"])
def test_libvirt_python_program_runs_unchanged(
    mode: str, state_root: Path, tiny_image: TinyImage, qemu_binary: str
) -> None:
    disk = state_root.parent / f"{state_root.name}-data.img"
    with open(disk, "wb") as f:
        f.truncate(8 * 1024 * 1024)
    try:
        if mode == "daemon":
            with pyvirtd(state_root):
                out = run_program(state_root, tiny_image, disk)
        else:
            out = run_program(state_root, tiny_image, disk)
    finally:
        disk.unlink()
    running, paused, shutoff = 1, 3, 5
    assert out["ids"] == [out["id"]] and out["id"] > 0
    assert out["active"] == ["lv1"] and out["inactive"] == []
    assert out["state"] == [running, 1]  # running, booted
    assert out["is_active"] == 1 and out["uuid_matches"] and out["by_id"] == "lv1"
    state, max_mem, mem, vcpus, cpu_ns = out["info"]
    assert (state, max_mem, mem, vcpus) == (running, 163840, 163840, 1)
    assert cpu_ns > 0  # QEMU really ran the guest
    assert out["paused_state"] == [paused, 1]  # paused by the user
    assert out["live_xml_has_disk"] and not out["config_xml_has_disk"]
    assert len(out["block_stats"]) == 5
    assert out["memory_after_set"] == 131072  # through the balloon
    assert out["memory_stats"]["actual"] > 0 and out["memory_stats"]["rss"] > 0
    assert out["after_destroy"] == [shutoff, 2]  # shut off, destroyed
    assert out["destroy_again"] == 55  # VIR_ERR_OPERATION_INVALID
    assert out["lookup_after_undefine"] == 42  # VIR_ERR_NO_DOMAIN
    seen = [tuple(e[1:3]) for e in out["events"]]
    # started/booted, suspended/paused, resumed/unpaused, stopped/destroyed, undefined/removed
    for wanted in [(2, 0), (3, 0), (4, 0), (5, 1), (1, 0)]:
        assert wanted in seen, out["events"]
    assert seen.index((2, 0)) < seen.index((3, 0)) < seen.index((5, 1)) < seen.index((1, 0))
    assert all(e[0] == "lv1" and e[3] == "me" for e in out["events"])
