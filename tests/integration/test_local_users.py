"""Local users: what an unprivileged user of the host can reach of root's pyvirt (issue 10).

Under umask 022 and 000, a throw-away unprivileged user cannot read the VNC password (live
XML, plans, runtime, hook data), cannot connect to the QMP, serial or VNC sockets, cannot read
the guest's console log, and cannot plant a definition root's pyvirt lists or starts. The
guest's QEMU runs as ``pyvirt-qemu`` with no capabilities, owns its writable image while it
runs, and the image's owner is restored when it stops.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.conftest import TINY_CMDLINE
from tests.integration.test_install import wait_console

pytestmark = pytest.mark.qemu

SECRET = "s3cr3tVNC"
QEMU_USER = "pyvirt-qemu"
PROBE = r"""
import socket, sys
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(path)
        print("CONNECTED", path)
    except OSError as err:
        print("REFUSED", path, err.errno)
    finally:
        s.close()
"""


@pytest.fixture
def stranger() -> Iterator[pwd.struct_passwd]:
    """A throw-away unprivileged user, removed afterwards."""
    name = f"pvt{uuid.uuid4().hex[:8]}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        check=True,
    )
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False)


def as_user(user: pwd.struct_passwd, *argv: str) -> subprocess.CompletedProcess[str]:
    cmd = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    return subprocess.run([*cmd, *argv], capture_output=True, text=True, timeout=60)


def domain_xml(image: Any, name: str, disk: Path) -> str:
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
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
    <serial type='pty'><target port='0'/></serial>
    <graphics type='vnc' port='-1' autoport='yes' listen='127.0.0.1' passwd='{SECRET}'/>
    <video><model type='vga'/></video>
  </devices>
</domain>
"""


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    """pyvirt (and so QEMU) run under this umask."""
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_local_user_reaches_nothing(
    pyvirt: Pyvirt, tiny_image: Any, stranger: pwd.struct_passwd, umask: int, tmp_path: Path
) -> None:
    try:
        qemu = pwd.getpwnam(QEMU_USER)
    except KeyError:
        pytest.skip(f"user {QEMU_USER} does not exist (scripts/setup.sh creates it)")
    images = Path(f"/tmp/pv-images-{uuid.uuid4().hex[:8]}")
    images.mkdir(mode=0o755)
    os.chmod(images, 0o755)
    try:
        disk = images / "lu.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
        os.chmod(disk, 0o640)
        xml = tmp_path / "lu.xml"
        xml.write_text(domain_xml(tiny_image, "lu", disk))
        pyvirt("define", str(xml))
        pyvirt("start", "lu")
        wait_console(pyvirt, "lu", "PYVIRT-TINY-READY", 120)
        root = pyvirt.root
        run = root / "run" / "qemu" / "lu"

        # QEMU: pyvirt-qemu, no capabilities; it owns the writable image while it runs
        pid = int((run / "qemu.pid").read_text())
        status = dict(
            line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        assert status["Uid"].split()[:2] == [str(qemu.pw_uid)] * 2
        assert status["Gid"].split()[0] == str(qemu.pw_gid)
        assert status["CapEff"].strip() == "0000000000000000"
        assert status["NoNewPrivs"].strip() == "1" and status["Seccomp"].strip() == "2"
        assert disk.stat().st_uid == qemu.pw_uid

        # secrets: nowhere the stranger can read; dumpxml hides them without --security-info
        files = [p for p in root.rglob("*") if p.is_file() or p.is_socket()]
        assert any(SECRET.encode() in p.read_bytes() for p in files if p.is_file())
        readable = as_user(stranger, "find", str(root), "-readable", "-type", "f")
        assert readable.stdout == "", readable.stdout
        grep = as_user(stranger, "grep", "-rl", SECRET, str(root))
        assert grep.stdout == "" and grep.returncode != 0
        for name in ("domain.xml", "runtime.json", "hooks.json"):
            res = as_user(stranger, "cat", str(run / name))
            assert res.returncode != 0 and "Permission denied" in res.stderr, res
        plan = root / "cache" / "plans" / "lu.json"
        for path in (plan, root / "log" / "qemu" / "lu" / "console.log"):
            res = as_user(stranger, "cat", str(path))
            assert res.returncode != 0 and "Permission denied" in res.stderr, res
        assert f"passwd='{SECRET}'" not in pyvirt("dumpxml", "lu").out
        assert "passwd=" not in pyvirt("dumpxml", "lu", "--inactive").out
        assert f"passwd='{SECRET}'" in pyvirt("dumpxml", "lu", "--security-info").out

        # sockets: QMP, serial, events; root still reaches them
        sockets = sorted(str(p) for p in run.iterdir() if p.is_socket())
        assert str(run / "qmp.sock") in sockets
        probe = as_user(stranger, "/usr/bin/python3", "-c", PROBE, *sockets)
        assert "CONNECTED" not in probe.stdout and probe.stdout.count("REFUSED") == len(sockets)
        # nor can another domain's QEMU (pyvirt-qemu may traverse run dirs, sockets are 0700)
        probe = as_user(qemu, "/usr/bin/python3", "-c", PROBE, *sockets)
        assert "CONNECTED" not in probe.stdout and probe.stdout.count("REFUSED") == len(sockets)
        assert pyvirt("domstate", "lu").out.strip() == "running"

        # planting a definition: the stranger cannot write the store, and a file that is not
        # root's (or is writable by others) is neither listed nor started
        target = root / "lib" / "qemu" / "evil.xml"
        res = as_user(stranger, "cp", str(xml), str(target))
        assert res.returncode != 0 and not target.exists()
        evil = domain_xml(tiny_image, "evil", Path("/etc/shadow"))
        target.write_text(evil)
        os.chown(target, stranger.pw_uid, stranger.pw_gid)
        assert "evil" not in pyvirt("list", "--all", "--name").out
        res = pyvirt("start", "evil", check=False)
        assert res.rc != 0 and "Traceback" not in res.err
        os.chown(target, 0, 0)
        os.chmod(target, 0o666)
        assert "evil" not in pyvirt("list", "--all", "--name").out
        res = pyvirt("start", "evil", check=False)
        assert res.rc != 0 and "Traceback" not in res.err
        target.unlink()

        # modes whatever the umask
        for path, mode in (
            (root / "lib" / "qemu", 0o700),
            (root / "cache", 0o700),
            (root / "log", 0o700),
            (root / "run" / "locks", 0o700),
            (run, 0o710),
            (root / "lib" / "qemu" / "lu.xml", 0o600),
            (run / "domain.xml", 0o600),
            (run / "runtime.json", 0o600),
            (run / "qmp.sock", 0o750),  # QEMU's daemon umask 027; connecting needs write
            (root / "log" / "qemu" / "lu" / "console.log", 0o640),
            (root / "log" / "qemu" / "lu" / "qemu.log", 0o640),
        ):
            assert path.stat().st_mode & 0o7777 == mode, (path, oct(path.stat().st_mode))

        # a disk hot-plugged from a directory only root may enter: pyvirt passes QEMU the fds
        # and hands the image over while attached
        hidden = tmp_path / "hidden"
        hidden.mkdir(mode=0o700)
        extra = hidden / "extra.raw"
        extra.write_bytes(b"\0" * 1048576)
        os.chmod(extra, 0o600)
        pyvirt("attach-disk", "lu", str(extra), "vdb", "--live")
        assert extra.stat().st_uid == qemu.pw_uid
        assert "vdb" in pyvirt("domblklist", "lu").out
        pyvirt("detach-disk", "lu", "vdb", "--live")
        assert extra.stat().st_uid == 0 and extra.stat().st_mode & 0o777 == 0o600

        # the image's owner is back once QEMU is gone
        pyvirt("destroy", "lu")
        assert disk.stat().st_uid == 0 and disk.stat().st_mode & 0o777 == 0o640
    finally:
        pyvirt("destroy", "lu", check=False)
        subprocess.run(["rm", "-rf", str(images)], check=False)


def test_loopback_vnc_without_password_warns(
    pyvirt: Pyvirt, tiny_image: Any, tmp_path: Path
) -> None:
    xml = tmp_path / "w.xml"
    text = domain_xml(tiny_image, "w", tmp_path / "none.qcow2").replace(f" passwd='{SECRET}'", "")
    xml.write_text(text)
    res = pyvirt("define", str(xml))
    assert "listens on 127.0.0.1 without a password: any local user" in res.err


def test_root_qemu_is_explicit_and_warned(pyvirt: Pyvirt, tiny_image: Any, tmp_path: Path) -> None:
    pyvirt.env["PYVIRT_QEMU_USER"] = "root"
    xml = tmp_path / "r.xml"
    text = domain_xml(tiny_image, "r", tmp_path / "none.qcow2")
    xml.write_text(text.split("<disk ")[0] + "<serial " + text.split("<serial ", 1)[1])
    pyvirt("define", str(xml))
    res = pyvirt("start", "r")
    assert "QEMU runs as root (configured): a QEMU escape is host root" in res.err
    pid = int((pyvirt.root / "run" / "qemu" / "r" / "qemu.pid").read_text())
    status = Path(f"/proc/{pid}/status").read_text()
    assert "\nUid:\t0\t" in status
    pyvirt("destroy", "r")
    pyvirt.env["PYVIRT_QEMU_USER"] = "no-such-user-pv"
    res = pyvirt("start", "r", check=False)
    assert res.rc == 1 and "the QEMU user 'no-such-user-pv' does not exist" in res.err
    assert "Traceback" not in res.err
