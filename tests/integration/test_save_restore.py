"""save / restore / managedsave through the real CLI on the tiny guest: the guest continues
where it was (no second boot, its uptime keeps counting, a shell variable survives)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.progress import CancelledError, CancelToken
from tests.conftest import PYVIRT, Pyvirt
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import (
    MARKER,
    console_log,
    define,
    state,
    wait_for,
    wait_marker,
)

pytestmark = pytest.mark.qemu


def uptime(pv: Pyvirt, name: str) -> float:
    """The guest's uptime in seconds, read over its serial console."""
    return float(guest(pv, name, "cat /proc/uptime").split()[0])


def boots(pv: Pyvirt, name: str) -> int:
    return console_log(pv, name).read_text(errors="replace").count(MARKER)


def test_save_restore_continues(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = pyvirt.root / "d.img"
    disk.write_bytes(b"\0" * (1 << 20))
    define(pyvirt, tiny_image, extra_devices=_disk(disk))
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    guest(pyvirt, "t1", "export KEEP=remembered-$((6*7))")
    before = uptime(pyvirt, "t1")
    file = pyvirt.root / "t1.save"

    out = pyvirt("save", "t1", str(file), "--verbose")
    assert out.out == f"\nDomain 't1' saved to {file}\n\n"
    assert out.err.endswith("Save: [100 %]\n")
    assert state(pyvirt, "t1") == "shut off (saved)"
    assert file.stat().st_mode & 0o777 == 0o600
    assert not [p for p in file.parent.iterdir() if p.name.endswith(".tmp")]
    xml = pyvirt("save-image-dumpxml", str(file)).out
    assert "<name>t1</name>" in xml

    out = pyvirt("restore", str(file))
    assert out.out == f"Domain restored from {file}\n\n"
    assert state(pyvirt, "t1") == "running (restored)"
    assert guest(pyvirt, "t1", "echo $KEEP").strip() == "remembered-42"
    assert uptime(pyvirt, "t1") >= before
    assert boots(pyvirt, "t1") == 1  # no second boot
    # a corrupt image: one clear error line, and the running guest is not touched
    pyvirt("destroy", "t1")
    bad = pyvirt.root / "bad.save"
    data = bytearray(file.read_bytes())
    data[30] ^= 0xFF  # inside the header: checksum mismatch
    bad.write_bytes(bytes(data))
    res = pyvirt("restore", str(bad), check=False)
    assert res.rc == 1 and res.err.splitlines()[0].startswith("error: save image ")
    assert "corrupt" in res.err
    junk = pyvirt.root / "junk.save"
    junk.write_bytes(b"hello" * 100)
    res = pyvirt("restore", str(junk), check=False)
    assert res.rc == 1 and res.err.splitlines()[0] == f"error: '{junk}' is not a pyvirt save image"
    # a damaged migration stream: QEMU refuses it; the domain stays shut off
    stream = bytearray(file.read_bytes())
    offset = int.from_bytes(stream[32:40], "little")  # where QEMU's stream starts
    stream[offset : offset + 64] = b"\x00" * 64
    bad.write_bytes(bytes(stream))
    res = pyvirt("restore", str(bad), check=False)
    assert res.rc == 1
    assert res.err.startswith("error: cannot restore domain 't1' from")
    assert "QEMU could not load the saved state" in res.err
    assert state(pyvirt, "t1").startswith("shut off")
    # the disk changed while the state was saved: restoring would corrupt it
    pyvirt("restore", str(file))
    pyvirt("save", "t1", str(file))
    with open(disk, "r+b") as f:
        f.write(b"changed")
    os.utime(disk, ns=(1, 1))
    res = pyvirt("restore", str(file), check=False)
    assert res.rc == 1
    assert res.err.splitlines()[0] == (
        f"error: cannot restore domain 't1' from '{file}': disk 'vda' ({disk}) was modified "
        "after the state was saved"
    )
    assert state(pyvirt, "t1") == "shut off (saved)"


def test_killed_save_leaves_guest_running(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    file = pyvirt.root / "t1.save"
    proc = subprocess.Popen([*PYVIRT, "save", "t1", str(file)], env=pyvirt.env)
    try:
        deadline = time.monotonic() + 30
        while not _streaming(pyvirt) and time.monotonic() < deadline:
            time.sleep(0.001)  # the stream takes ~0.3 s: kill in the middle of it
        assert _streaming(pyvirt), "the save finished before it could be killed"
    finally:
        proc.kill()
        proc.wait()
    assert not file.exists()
    assert state(pyvirt, "t1").startswith("running")
    wait_for(lambda: _qemu_running(pyvirt), 10, "QEMU resumed the guest")
    before = uptime(pyvirt, "t1")
    assert uptime(pyvirt, "t1") >= before
    # a cancelled save (the daemon's jobs cancel this way): the guest runs on, no file
    conn = pyvirt_api.open(f"pyvirt:///embed?root={pyvirt.root}")
    token = CancelToken()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        token.cancel()

    with pytest.raises(CancelledError, match="saving domain 't1' cancelled; it runs on"):
        conn.domains.get("t1").save(file, progress=progress, cancel=token)
    assert seen and seen[0][1] > 0
    # no file; the killed saver's temp file was swept too
    assert not file.exists() and not list(pyvirt.root.glob(".t1.save.*.tmp"))
    wait_for(lambda: _qemu_running(pyvirt), 10, "QEMU resumed the guest after the cancel")
    assert uptime(pyvirt, "t1") >= before
    pyvirt("save", "t1", str(file))  # works again
    assert state(pyvirt, "t1") == "shut off (saved)"


def _streaming(pv: Pyvirt) -> bool:
    """Whether a save's temp file holds part of QEMU's stream (past the 68 KiB header)."""
    for path in pv.root.glob(".t1.save.*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            if path.stat().st_size > 1 << 20:
                return True
    return False


def _qemu_running(pv: Pyvirt) -> bool:
    from pyvirt.service.connection import open_connection
    from pyvirt.service.domain.lifecycle import qemu_status

    mgr = open_connection(f"pyvirt:///embed?root={pv.root}").domains
    return qemu_status(mgr, "t1") == ("running", True)


def _disk(path: Path) -> str:
    return (
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
    )


def test_managedsave_start_resumes(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    guest(pyvirt, "t1", "export KEEP=managed")
    out = pyvirt("managedsave", "t1")
    assert out.out == "\nDomain 't1' state saved by pyvirt\n\n"
    assert state(pyvirt, "t1") == "shut off (saved)"
    image = pyvirt.root / "lib" / "qemu" / "save" / "t1.save"
    assert image.stat().st_mode & 0o777 == 0o600
    assert "saved" in pyvirt("list", "--all", "--managed-save").out.split()
    assert "Managed save:   yes" in pyvirt("dominfo", "t1").out

    assert pyvirt("start", "t1").out == "Domain 't1' started\n\n"
    assert state(pyvirt, "t1") == "running (restored)"
    assert guest(pyvirt, "t1", "echo $KEEP").strip() == "managed"
    assert boots(pyvirt, "t1") == 1
    assert not image.exists()

    pyvirt("managedsave", "t1", "--paused")
    pyvirt("start", "t1")
    assert state(pyvirt, "t1") == "paused (user)"
    pyvirt("resume", "t1")
    assert guest(pyvirt, "t1", "echo $KEEP").strip() == "managed"
    pyvirt("managedsave", "t1")
    res = pyvirt("undefine", "t1", check=False)
    assert res.rc == 1 and "has a managed save image" in res.err
    out = pyvirt("managedsave-remove", "t1").out
    assert out == "Removed managedsave image for domain 't1'\n\n"
    out = pyvirt("managedsave-remove", "t1").out
    assert out == "Domain 't1' has no manage save image; removal skipped\n\n"
    assert state(pyvirt, "t1") == "shut off (saved)"
    pyvirt("undefine", "t1", "--managed-save")
    assert not image.exists()
