"""The Debian image boots to a serial login prompt and its guest agent answers pyvirt's agent
commands (guestinfo, domfsinfo, domifaddr --source agent, domfsfreeze/thaw, domtime,
set-user-password, shutdown --mode agent). One boot is shared by the whole module; it runs in
a private network namespace (user-mode NIC, loopback only), so nothing leaves the machine.

The error paths use the tiny guest (no qemu-guest-agent inside: a real silent agent).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYVIRT, Pyvirt
from tests.consolehelp import connect_serial
from tests.integration.test_debian_image import default_test_image
from tests.integration.test_lifecycle import domain_xml as tiny_xml
from tests.integration.test_lifecycle import wait_for, wait_marker

pytestmark = [pytest.mark.qemu, pytest.mark.timeout(1800)]

BOOT_TIMEOUT = 400.0  # a systemd Debian under TCG on a busy 2-core host: ~40-90 s
NAME = "deb"
MAC = "52:54:00:a2:00:01"


@pytest.fixture(scope="module")
def netns() -> Iterator[str]:
    """A private network namespace with only loopback, removed afterwards."""
    name = f"pvga{os.getpid()}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


@pytest.fixture(scope="module")
def guest(netns: str) -> Iterator[tuple[Pyvirt, float]]:
    """The Debian guest booted to its login prompt: the CLI runner and the boot time."""
    image = default_test_image()
    root = Path(tempfile.mkdtemp(prefix="pv", dir="/tmp"))
    pv = Pyvirt(root)
    xml = image.domain_xml.read_text().replace("<name>debian</name>", f"<name>{NAME}</name>")
    # a user-mode NIC (DHCP from QEMU itself) instead of the 'default' network
    xml = re.sub(
        r"<interface type='network'>\s*<source network='default'/>",
        f"<interface type='user'><mac address='{MAC}'/>",
        xml,
    )
    (root / "deb.xml").write_text(xml)
    pv("define", str(root / "deb.xml"))
    start = time.monotonic()
    proc = subprocess.run(
        ["ip", "netns", "exec", netns, *PYVIRT, "start", NAME],
        env=pv.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    log = root / "log" / "qemu" / NAME / "console.log"
    try:
        wait_for(
            lambda: log.exists() and "login:" in log.read_text(errors="replace"),
            BOOT_TIMEOUT,
            "the Debian login prompt",
        )
        boot = time.monotonic() - start
        print(f"Debian guest: boot to login prompt in {boot:.1f} s")
        yield pv, boot
    finally:
        pv("destroy", NAME, check=False)
        subprocess.run(["rm", "-rf", str(root)], check=False)


def agent_ready(pv: Pyvirt) -> None:
    """Wait until qemu-guest-agent answers (it starts with the virtio port, around login)."""

    def pings() -> bool:
        return pv("qemu-agent-command", NAME, '{"execute":"guest-ping"}', check=False).rc == 0

    wait_for(pings, 120, "the guest agent")


def pairs(out: str) -> dict[str, str]:
    result = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            result[key.strip()] = value.strip()
    return result


def test_boots_to_serial_login_prompt(guest: tuple[Pyvirt, float]) -> None:
    pv, boot = guest
    text = (pv.root / "log" / "qemu" / NAME / "console.log").read_text(errors="replace")
    assert "pyvirt-debian login:" in text
    assert "Debian GNU/Linux 12" in text
    assert boot < BOOT_TIMEOUT


def test_guestinfo(guest: tuple[Pyvirt, float]) -> None:
    pv, _ = guest
    agent_ready(pv)
    out = pv("guestinfo", NAME).out
    info = pairs(out)
    assert info["hostname"] == "pyvirt-debian"
    assert info["os.id"] == "debian" and info["os.version-id"] == "12"
    assert info["os.machine"] == "x86_64"
    assert info["fs.0.mountpoint"] == "/" and info["fs.0.fstype"] == "ext4"
    assert info["fs.0.disk.0.alias"] == "vda"
    assert int(info["fs.0.total-bytes"]) > 3 * 1024**3  # the 4G image
    assert re.search(r"^hostname            : pyvirt-debian$", out, re.M)  # virsh's layout
    only = pairs(pv("guestinfo", NAME, "--hostname").out)
    assert only == {"hostname": "pyvirt-debian"}


def test_domfsinfo_lists_root(guest: tuple[Pyvirt, float]) -> None:
    pv, _ = guest
    agent_ready(pv)
    lines = pv("domfsinfo", NAME).out.splitlines()
    assert lines[0].split() == ["Mountpoint", "Name", "Type", "Target"]
    assert ["/", "vda", "ext4", "vda"] in [line.split() for line in lines[2:]]


def test_domifaddr_source_agent(guest: tuple[Pyvirt, float]) -> None:
    pv, _ = guest
    agent_ready(pv)
    rows: list[list[str]] = []

    def has_lease() -> bool:  # networkd's DHCP from QEMU's user-mode stack
        nonlocal rows
        rows = [r.split() for r in pv("domifaddr", NAME, "--source", "agent").out.splitlines()]
        return any(r[1:] == [MAC, "ipv4", "10.0.2.15/24"] for r in rows if len(r) == 4)

    wait_for(has_lease, 90, "the guest's DHCP address")
    assert ["lo", "00:00:00:00:00:00", "ipv4", "127.0.0.1/8"] in rows


def test_freeze_thaw_round_trip(guest: tuple[Pyvirt, float]) -> None:
    pv, _ = guest
    agent_ready(pv)
    status = '{"execute":"guest-fsfreeze-status"}'
    assert pv("domfsfreeze", NAME).out.strip() == "Froze 1 filesystem(s)"
    try:
        assert pv("qemu-agent-command", NAME, status).out.strip() == '{"return":"frozen"}'
    finally:
        assert pv("domfsthaw", NAME).out.strip() == "Thawed 1 filesystem(s)"
    assert pv("qemu-agent-command", NAME, status).out.strip() == '{"return":"thawed"}'


def test_domtime(guest: tuple[Pyvirt, float]) -> None:
    pv, _ = guest
    agent_ready(pv)
    guest_now = int(pv("domtime", NAME).out.split()[1])
    assert abs(guest_now - time.time()) < 600


class Serial:
    """The guest's serial console (its pty, bridged to a socket)."""

    def __init__(self, root: Path, name: str) -> None:
        self.sock = connect_serial(root, name)
        self.sock.settimeout(0.5)
        self.seen = b""

    def expect(self, text: bytes, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            assert time.monotonic() < deadline, f"no {text!r} on the console: {self.seen[-300:]!r}"
            with contextlib.suppress(TimeoutError):
                self.seen += self.sock.recv(4096)

    def send(self, line: str) -> None:
        self.seen = b""
        self.sock.sendall(line.encode() + b"\r")


def test_set_user_password_then_console_login(guest: tuple[Pyvirt, float]) -> None:
    pv, _ = guest
    agent_ready(pv)
    res = pv("set-user-password", NAME, "root", "Pyv1rt-secret")
    assert res.out.strip() == f"Password set successfully for root in {NAME}"
    console = Serial(pv.root, NAME)
    try:
        console.send("")
        console.expect(b"login:")
        console.send("root")
        console.expect(b"Password:")
        console.send("Pyv1rt-secret")
        console.expect(b"root@pyvirt-debian:~# ", 90)
        console.send("echo sum=$((40+2)); exit")
        console.expect(b"sum=42")
    finally:
        console.sock.close()


def test_stale_replies_and_partial_input_are_dropped(guest: tuple[Pyvirt, float]) -> None:
    """A client that left unread replies and half a command does not confuse the next one."""
    pv, _ = guest
    agent_ready(pv)
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(str(pv.root / "run" / "qemu" / NAME / "org.qemu.guest_agent.0"))
    raw.sendall(b'{"execute":"guest-info"}\n{"execute":"guest-get-osinfo"}\n{"execute":"guest-')
    time.sleep(1)
    raw.close()
    assert pairs(pv("guestinfo", NAME, "--hostname").out) == {"hostname": "pyvirt-debian"}
    assert pv("domfsinfo", NAME).out.splitlines()[2].split()[0] == "/"


def agent_exec(pv: Pyvirt, path: str, *args: str) -> str:
    """Run a program in the guest through the agent (guest-exec); its standard output."""
    cmd = {"execute": "guest-exec",
           "arguments": {"path": path, "arg": list(args), "capture-output": True}}  # fmt: skip
    pid = json.loads(pv("qemu-agent-command", NAME, json.dumps(cmd)).out)["return"]["pid"]
    status = json.dumps({"execute": "guest-exec-status", "arguments": {"pid": pid}})
    done: dict[str, Any] = {}

    def exited() -> bool:
        done.update(json.loads(pv("qemu-agent-command", NAME, status).out)["return"])
        return bool(done.get("exited"))

    wait_for(exited, 30, f"{path} in the guest")
    assert done.get("exitcode") == 0, done
    return base64.b64decode(done.get("out-data", "")).decode(errors="replace")


def freezes_logged(pv: Pyvirt) -> int:
    """How many freezes qemu-guest-agent logged ("guest-fsfreeze called", in the journal)."""
    log = agent_exec(pv, "journalctl", "-u", "qemu-guest-agent", "--no-pager", "-o", "cat")
    return log.count("guest-fsfreeze called")


def test_quiesced_disk_only_snapshot(guest: tuple[Pyvirt, float]) -> None:
    """snapshot-create-as --disk-only --quiesce: the agent freezes the file systems while
    the overlay is taken and thaws them after (its log and its status say so)."""
    pv, _ = guest
    agent_ready(pv)
    status = '{"execute":"guest-fsfreeze-status"}'
    assert pv("qemu-agent-command", NAME, status).out.strip() == '{"return":"thawed"}'
    before = freezes_logged(pv)
    overlay = pv.root / "deb-q1.qcow2"  # not next to the cached image
    out = pv("snapshot-create-as", NAME, "q1", "--disk-only", "--quiesce", "--atomic",
             "--diskspec", f"vda,file={overlay}")  # fmt: skip
    assert out.out == "Domain snapshot q1 created\n"
    assert overlay.is_file()
    assert pv("qemu-agent-command", NAME, status).out.strip() == '{"return":"thawed"}'
    assert freezes_logged(pv) == before + 1
    # thawed for real: the guest writes to its root file system (now on the overlay)
    agent_exec(pv, "sh", "-c", "echo after-q1 > /root/q1 && sync")
    info = pv("snapshot-info", NAME, "q1").out
    assert "State:          disk-snapshot" in info and "Location:       external" in info
    assert f"file='{overlay}'" in pv("dumpxml", NAME).out.replace('"', "'")


def test_shutdown_mode_agent(guest: tuple[Pyvirt, float]) -> None:
    """Last in the module: the agent powers the shared guest off."""
    pv, _ = guest
    agent_ready(pv)
    assert (
        pv("shutdown", NAME, "--mode", "agent").out.strip() == f"Domain '{NAME}' is being shutdown"
    )
    wait_for(
        lambda: pv("domstate", NAME, "--reason").out.strip() == "shut off (shutdown)",
        180,
        "the guest to power off",
    )


# -- error paths with the tiny guest (it runs no guest agent) ---------------------------------
AGENT_CHANNEL = (
    "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
)


def test_agent_errors_on_the_tiny_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = pyvirt.root / "qa.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    disk_xml = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>")  # fmt: skip
    (pyvirt.root / "a.xml").write_text(
        tiny_xml(tiny_image, "a", extra_devices=AGENT_CHANNEL + disk_xml)
    )
    (pyvirt.root / "b.xml").write_text(tiny_xml(tiny_image, "b"))
    pyvirt("define", str(pyvirt.root / "a.xml"))
    pyvirt("define", str(pyvirt.root / "b.xml"))
    res = pyvirt("guestinfo", "a", check=False)
    assert res.rc == 1 and res.err.splitlines()[0] == "error: domain 'a' is not running"
    pyvirt("start", "a")
    pyvirt("start", "b")
    wait_marker(pyvirt, "a")
    # the channel got a socket in the run dir, shown in the live definition
    sock = pyvirt.root / "run" / "qemu" / "a" / "org.qemu.guest_agent.0"
    assert f"path='{sock}'" in pyvirt("dumpxml", "a").out
    assert sock.is_socket()
    start = time.monotonic()
    res = pyvirt("domfsinfo", "a", "--timeout", "2", check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == (
        "error: the guest agent of domain 'a' did not answer 'guest-sync-delimited' within 2 s"
    )
    assert "hint: check that the guest has booted and runs qemu-guest-agent" in res.err
    assert time.monotonic() - start < 30
    # --quiesce without an agent: one clear error, no overlay left, no snapshot recorded
    files = sorted(pyvirt.root.iterdir())
    res = pyvirt("snapshot-create-as", "a", "q1", "--disk-only", "--quiesce", check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == (
        "error: the guest agent of domain 'a' did not answer 'guest-sync-delimited' within 10 s"
    ), res.err
    assert len(res.err.splitlines()) <= 2 and "Traceback" not in res.err
    assert sorted(pyvirt.root.iterdir()) == files
    assert pyvirt("snapshot-list", "a", "--name").out.strip() == ""
    assert f"file='{disk}'" in pyvirt("dumpxml", "a").out.replace('"', "'")
    res = pyvirt("shutdown", "b", "--mode", "agent", check=False)
    assert res.rc == 1 and res.err.startswith("error: domain 'b' has no guest agent channel")
    assert "org.qemu.guest_agent.0" in res.err  # the hint shows the XML to add
    res = pyvirt("shutdown", "b", "--mode", "initctl", check=False)
    assert res.err.startswith("error: shutdown mode 'initctl' is not supported")
    # agent first, ACPI as the fallback: the tiny guest powers off on the power button
    pyvirt("shutdown", "b", "--mode", "agent,acpi")
    wait_for(lambda: pyvirt("domstate", "b").out.strip() == "shut off", 60, "b to power off")
    res = pyvirt("qemu-agent-command", "a", "not json", check=False)
    assert res.rc == 1 and res.err.startswith("error: the agent command is not valid JSON")
