"""``<filesystem>`` shares on a real guest: the guest mounts a host directory over 9p and reads
a file from it; through a ``mapped`` share it writes a file the host then reads; a
``<readonly/>`` share refuses writes; over virtiofs (a virtiofsd pyvirt runs, stopped with the
domain) it reads and writes too. A 9p share the QEMU user cannot reach is refused at start,
naming the user; pyvirt changes no owner or mode of a shared directory."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import domain_xml, state, wait_for, wait_marker

pytestmark = pytest.mark.qemu


@pytest.fixture
def shares() -> Iterator[Path]:
    """A directory under /tmp (which every user may search): pytest's own is 0700."""
    top = Path(tempfile.mkdtemp(prefix="pyvirt-9p-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        yield top
    finally:
        shutil.rmtree(top, ignore_errors=True)


def fs(accessmode: str, src: Path, tag: str, readonly: bool = False, driver: str = "path") -> str:
    ro = "<readonly/>" if readonly else ""
    return (f"<filesystem type='mount' accessmode='{accessmode}'><driver type='{driver}'/>"
            f"<source dir='{src}'/><target dir='{tag}'/>{ro}</filesystem>")  # fmt: skip


def virtiofsd_pids(sock_dir: Path) -> list[int]:
    """The virtiofsd processes serving a socket in ``sock_dir``."""
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"virtiofsd" in cmd and f"--socket-path={sock_dir}/".encode() in cmd:
                pids.append(int(proc.name))
    return pids


def test_a_guest_reads_and_writes_host_directories(
    pyvirt: Pyvirt, tiny_image: Any, shares: Path
) -> None:
    ro, rw, vfs = shares / "ro", shares / "rw", shares / "vfs"
    for d in (ro, rw, vfs):
        d.mkdir(mode=0o700)
    (ro / "hello.txt").write_text("hello from the host\n")
    os.chmod(ro / "hello.txt", 0o644)
    (vfs / "v.txt").write_text("hello over virtiofs\n")
    devices = (fs("passthrough", ro, "hostro", readonly=True) + fs("mapped", rw, "hostrw")
               + fs("passthrough", vfs, "hostvfs", driver="virtiofs"))  # fmt: skip
    xml = domain_xml(tiny_image, "fs1", extra_devices=devices).replace(
        "<vcpu>", "<memoryBacking><access mode='shared'/></memoryBacking><vcpu>"
    )
    path = pyvirt.root / "fs.xml"
    path.write_text(xml)
    pyvirt("define", str(path))
    assert "<filesystem type='mount' accessmode='mapped'>" in pyvirt("dumpxml", "fs1").out

    qemu_user = None if os.geteuid() else pwd.getpwnam("pyvirt-qemu")
    if qemu_user is not None:  # as root QEMU runs as pyvirt-qemu: 0700 root dirs are out of reach
        res = pyvirt("start", "fs1", check=False)
        assert res.rc == 1, res.err
        assert "share 'hostro': the QEMU user 'pyvirt-qemu' may not search and read" in res.err
        assert state(pyvirt, "fs1").startswith("shut off")
        assert ro.stat().st_mode & 0o777 == 0o700  # nothing was chmod-ed
        assert not virtiofsd_pids(pyvirt.root / "run")
        os.chmod(ro, 0o755)
        os.chown(rw, qemu_user.pw_uid, qemu_user.pw_gid)

    pyvirt("start", "fs1")
    try:
        wait_marker(pyvirt, "fs1")
        out = guest(pyvirt, "fs1", "mkdir -p /mnt/ro /mnt/rw && "
                    "mount -t 9p -o trans=virtio,version=9p2000.L hostro /mnt/ro && "
                    "mount -t 9p -o trans=virtio,version=9p2000.L hostrw /mnt/rw && "
                    "cat /mnt/ro/hello.txt")  # fmt: skip
        assert "hello from the host" in out, out
        guest(pyvirt, "fs1", "echo written-by-the-guest > /mnt/rw/guest.txt && sync")
        assert (rw / "guest.txt").read_text() == "written-by-the-guest\n"
        out = guest(pyvirt, "fs1", "echo x > /mnt/ro/new.txt 2>&1; echo WRITE-RC=$?")
        assert "WRITE-RC=0" not in out and "Read-only file system" in out, out
        assert not (ro / "new.txt").exists()
        assert virtiofsd_pids(pyvirt.root / "run" / "qemu" / "fs1")
        out = guest(pyvirt, "fs1", "mkdir -p /mnt/vfs && mount -t virtiofs hostvfs /mnt/vfs && "
                    "cat /mnt/vfs/v.txt && echo via-virtiofs > /mnt/vfs/g.txt")  # fmt: skip
        assert "hello over virtiofs" in out, out
        assert (vfs / "g.txt").read_text() == "via-virtiofs\n"
    finally:
        pyvirt("destroy", "fs1")
    wait_for(lambda: not virtiofsd_pids(pyvirt.root / "run"), 10, "virtiofsd to stop")
