"""Domain lifecycle through the real CLI, booting the tiny guest under TCG."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYVIRT, Pyvirt
from tests.integration.conftest import TINY_CMDLINE

pytestmark = pytest.mark.qemu

MARKER = "PYVIRT-TINY-READY"


def domain_xml(image: Any, name: str = "t1", extra_devices: str = "", **kw: str) -> str:
    on_reboot = kw.get("on_reboot", "restart")
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>160</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{TINY_CMDLINE}</cmdline>
  </os>
  <features><acpi/></features>
  <on_reboot>{on_reboot}</on_reboot>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    {extra_devices}
  </devices>
</domain>
"""


def disk_xml(path: Path) -> str:
    return (
        f"<disk type='file' device='disk'><source file='{path}'/>"
        "<target dev='vda' bus='virtio'/></disk>"
    )


def define(pv: Pyvirt, image: Any, name: str = "t1", **kw: str) -> Path:
    path = pv.root / f"{name}.xml"
    path.write_text(domain_xml(image, name, **kw))
    pv("define", str(path))
    return path


def console_log(pv: Pyvirt, name: str) -> Path:
    return pv.root / "log" / "qemu" / name / "console.log"


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def wait_marker(pv: Pyvirt, name: str, count: int = 1) -> None:
    log = console_log(pv, name)

    def seen() -> bool:
        return log.exists() and log.read_text(errors="replace").count(MARKER) >= count

    wait_for(seen, 60, f"marker #{count} of {name}")


def state(pv: Pyvirt, name: str) -> str:
    return pv("domstate", name, "--reason").out.strip()


def test_define_start_marker_shutdown(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    assert "t1" in pyvirt("list", "--all").out
    assert state(pyvirt, "t1") == "shut off (unknown)"
    out = pyvirt("start", "t1").out
    assert "Domain 't1' started" in out
    wait_marker(pyvirt, "t1")
    assert state(pyvirt, "t1") == "running (booted)"
    listing = json.loads(pyvirt("list", "--json").out)
    assert [d["name"] for d in listing] == ["t1"] and listing[0]["id"] == 1
    assert pyvirt("domid", "t1").out.strip() == "1"
    info = pyvirt("dominfo", "t1").out
    assert "State:          running" in info and "Max memory:     163840 KiB" in info
    pyvirt("shutdown", "t1")
    wait_for(lambda: state(pyvirt, "t1") == "shut off (shutdown)", 30, "ACPI shutdown")
    assert pyvirt("list", "--name").out.strip() == ""
    assert pyvirt("list", "--inactive", "--name").out.split() == ["t1"]


def test_console_shows_marker_and_accepts_input(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    # pyvirt console from a second "terminal": a pty, as a user would have
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        os.execvpe(PYVIRT[0], [*PYVIRT, "console", "t1"], pyvirt.env)
    buf = b""
    try:
        deadline = time.monotonic() + 30
        while b"Escape character" not in buf and time.monotonic() < deadline:
            buf += os.read(fd, 4096)
        os.write(fd, b"echo hello-$((6*7))\r")
        while b"hello-42" not in buf and time.monotonic() < deadline:
            buf += os.read(fd, 4096)
        assert b"hello-42" in buf
        os.write(fd, b"\x1d")  # ^] leaves the console
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        os.close(fd)
    assert state(pyvirt, "t1").startswith("running")


def test_destroy_suspend_resume_reset(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    pyvirt("suspend", "t1")
    assert state(pyvirt, "t1") == "paused (user)"
    from pyvirt.service.connection import open_connection
    from pyvirt.service.domain.lifecycle import qemu_status

    mgr = open_connection(f"pyvirt:///embed?root={pyvirt.root}").domains
    assert qemu_status(mgr, "t1") == ("paused", False)
    pyvirt("resume", "t1")
    assert state(pyvirt, "t1") == "running (unpaused)"
    assert qemu_status(mgr, "t1") == ("running", True)
    pyvirt("reset", "t1")
    wait_marker(pyvirt, "t1", count=2)
    pyvirt("reboot", "t1")
    wait_marker(pyvirt, "t1", count=3)
    t0 = time.monotonic()
    pyvirt("destroy", "t1")
    assert time.monotonic() - t0 < 5
    assert state(pyvirt, "t1") == "shut off (destroyed)"
    res = pyvirt("destroy", "t1", check=False)
    assert res.rc == 1 and res.err.startswith("error: domain 't1' is not running")


def test_sigkill_is_crashed_and_domain_outlives_cli(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")  # the CLI process has exited by now
    wait_marker(pyvirt, "t1")
    rec = json.loads((pyvirt.root / "run" / "qemu" / "t1" / "runtime.json").read_text())
    pid = rec["pid"]
    assert Path(f"/proc/{pid}").exists()
    assert state(pyvirt, "t1") == "running (booted)"
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: state(pyvirt, "t1") == "shut off (crashed)", 10, "crash detection")


def test_racing_starts_one_wins(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    procs = [
        subprocess.Popen(
            [*PYVIRT, "start", "t1"],
            env=pyvirt.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]  # type: ignore[union-attr]
    rcs = sorted(r[0] for r in results)
    assert rcs == [0, 1], results
    loser = next(r for r in results if r[0] == 1)
    assert loser[2].startswith("error: domain 't1' is already running")
    assert len(json.loads(pyvirt("list", "--json").out)) == 1


def test_on_reboot_destroy_stops_on_guest_reboot(pyvirt: Pyvirt, tiny_image: Any) -> None:
    path = pyvirt.root / "t1.xml"
    xml = domain_xml(tiny_image, on_reboot="destroy").replace(
        "quiet panic=-1",
        "quiet pyvirt.run=cmVib290IC1m",  # base64("reboot -f")
    )
    path.write_text(xml)
    pyvirt("define", str(path))
    pyvirt("start", "t1")
    wait_for(lambda: state(pyvirt, "t1").startswith("shut off"), 60, "guest reboot -> stop")
    assert state(pyvirt, "t1") == "shut off (shutdown)"


def test_transient_create_disappears(pyvirt: Pyvirt, tiny_image: Any) -> None:
    path = pyvirt.root / "tr.xml"
    path.write_text(domain_xml(tiny_image, "tr"))
    assert "Domain 'tr' created from" in pyvirt("create", str(path)).out
    listing = json.loads(pyvirt("list", "--all", "--json").out)
    assert listing[0]["name"] == "tr" and listing[0]["persistent"] is False
    pyvirt("destroy", "tr")
    assert pyvirt("list", "--all", "--name").out.strip() == ""


def test_undefine_running_becomes_transient(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    pyvirt("undefine", "t1")
    assert json.loads(pyvirt("list", "--json").out)[0]["persistent"] is False
    pyvirt("destroy", "t1")
    res = pyvirt("domstate", "t1", check=False)
    assert res.rc == 1 and "domain 't1' not found" in res.err


def test_seed_rename_workflow(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """virsh shutdown vm-1; dumpxml > vm-2.xml; edit name; undefine; define; start; list."""
    define(pyvirt, tiny_image, name="vm-1")
    pyvirt("start", "vm-1")
    wait_marker(pyvirt, "vm-1")
    uuid = pyvirt("domuuid", "vm-1").out.strip()
    pyvirt("shutdown", "vm-1")
    wait_for(lambda: state(pyvirt, "vm-1").startswith("shut off"), 30, "shutdown")
    xml = pyvirt("dumpxml", "vm-1").out
    path = pyvirt.root / "vm-2.xml"
    path.write_text(xml.replace("<name>vm-1</name>", "<name>vm-2</name>"))
    pyvirt("undefined", "vm-1")  # the seed's spelling
    pyvirt("define", str(path))
    pyvirt("start", "vm-2")
    out = pyvirt("list").out
    assert "vm-2" in out and "running" in out and "vm-1" not in out
    assert pyvirt("domuuid", "vm-2").out.strip() == uuid


def test_seed_delete_workflow(pyvirt: Pyvirt, tiny_image: Any, tmp_path: Path) -> None:
    """virsh destroy; list –all; undefine; remove the files; list –all."""
    disk = tmp_path / "10.47.181.1.raw"
    disk.write_bytes(b"\0" * 1024 * 1024)
    path = pyvirt.root / "d.xml"
    dev = disk_xml(disk)
    path.write_text(domain_xml(tiny_image, "10.47.181.1", extra_devices=dev))
    pyvirt("define", str(path))
    pyvirt("start", "10.47.181.1")
    pyvirt("destroy", "10.47.181.1")
    assert "shut off" in pyvirt("list", "\u2013all").out  # the seed's en dash
    # find the image as admins do with virsh: dumpxml | grep "source file=" | cut on quotes
    script = f'{" ".join(PYVIRT)} dumpxml 10.47.181.1 | grep "source file=" | cut -d"\'" -f2'
    found = subprocess.run(["sh", "-c", script], env=pyvirt.env, capture_output=True, text=True)
    assert found.stdout.strip() == str(disk), found.stderr
    pyvirt("undefine", "10.47.181.1")
    Path(found.stdout.strip()).unlink()
    assert "10.47.181.1" not in pyvirt("list", "--all").out
    assert not (pyvirt.root / "lib" / "qemu" / "10.47.181.1.xml").exists()


def test_kvm_domain_refused_before_qemu_on_emulated_kvm(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """<domain type='kvm'> on a host whose KVM probe says it is emulated: one line, no QEMU."""
    from pyvirt.host import kvm

    if kvm.kvm_status(cache_path=kvm.probe_cache(pyvirt.root / "probe")).fast:
        pytest.skip("KVM runs guests on this host")
    path = pyvirt.root / "k.xml"
    path.write_text(domain_xml(tiny_image, "k1").replace("type='qemu'", "type='kvm'", 1))
    pyvirt("define", str(path))
    for _ in range(2):  # the first start builds the plan, the second would reuse one
        started = time.monotonic()
        res = pyvirt("start", "k1", check=False)
        assert res.rc == 1 and res.out == ""
        assert len(res.err.splitlines()) == 1, res.err
        assert res.err.startswith(
            "error: domain 'k1' is <domain type='kvm'> but KVM cannot run guests on this host ("
        )
        assert "<domain type='qemu'>" in res.err
        assert time.monotonic() - started < 5
    assert pyvirt("domstate", "k1").out.strip() == "shut off"
    assert not (pyvirt.root / "log" / "qemu" / "k1" / "qemu.log").exists()
    assert not (pyvirt.root / "run" / "qemu" / "k1" / "runtime.json").exists()
    # the same domain as type='qemu' starts
    pyvirt("undefine", "k1")
    path.write_text(domain_xml(tiny_image, "k1"))
    pyvirt("define", str(path))
    pyvirt("start", "k1")
    assert pyvirt("domstate", "k1").out.strip() == "running"


def test_remove_all_storage(pyvirt: Pyvirt, tiny_image: Any, tmp_path: Path) -> None:
    disk = tmp_path / "a.raw"
    disk.write_bytes(b"\0" * 4096)
    dev = disk_xml(disk)
    path = pyvirt.root / "s.xml"
    path.write_text(domain_xml(tiny_image, "s", extra_devices=dev))
    pyvirt("define", str(path))
    out = pyvirt("undefine", "s", "--remove-all-storage").out
    assert str(disk) in out and not disk.exists()


def test_vnc_autoport_display(pyvirt: Pyvirt, tiny_image: Any) -> None:
    import socket

    vnc = (
        "<graphics type='vnc' autoport='yes' listen='127.0.0.1' keymap='en-us'/>"
        "<video><model type='vga'/></video>"
    )
    path = pyvirt.root / "v.xml"
    path.write_text(domain_xml(tiny_image, "v", extra_devices=vnc))
    pyvirt("define", str(path))
    pyvirt("start", "v")
    host, display = pyvirt("vncdisplay", "v").out.strip().rsplit(":", 1)
    assert host == "127.0.0.1"
    assert pyvirt("domdisplay", "v").out.strip() == f"vnc://localhost:{display}"
    live = pyvirt("dumpxml", "v").out
    assert f"port='{5900 + int(display)}'" in live
    assert " port=" not in pyvirt("dumpxml", "v", "--inactive").out.split("<graphics")[1]
    with socket.create_connection(("127.0.0.1", 5900 + int(display)), timeout=5) as s:
        assert s.recv(12).startswith(b"RFB 003.")


def test_on_poweroff_restart_reboots_instead(pyvirt: Pyvirt, tiny_image: Any) -> None:
    path = pyvirt.root / "r.xml"
    xml = domain_xml(tiny_image, "r").replace(
        "<on_reboot>restart</on_reboot>", "<on_poweroff>restart</on_poweroff>"
    )
    path.write_text(xml)
    pyvirt("define", str(path))
    pyvirt("start", "r")
    wait_marker(pyvirt, "r")
    pyvirt("shutdown", "r")  # the guest powers off; the policy restarts it
    wait_marker(pyvirt, "r", count=2)
    assert state(pyvirt, "r").startswith("running")


def test_start_paused_then_resume(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1", "--paused")
    assert state(pyvirt, "t1") == "paused (user)"
    time.sleep(1)
    assert not console_log(pyvirt, "t1").exists() or MARKER not in console_log(
        pyvirt, "t1"
    ).read_text(errors="replace")
    pyvirt("resume", "t1")
    wait_marker(pyvirt, "t1")
