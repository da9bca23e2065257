"""Checkpoints and backups through the real CLI on the tiny guest with a qcow2 disk: a full
push backup, then an incremental one holding only the changed clusters (full + incremental
restore the disk); a pull-mode backup read through NBD while the guest keeps writing; a QEMU
killed with -9 (its bitmaps are inconsistent: the next incremental backup is full, with a
warning, and the one after is incremental again); checkpoint-delete merging bitmaps."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import guest, make_image
from tests.integration.test_lifecycle import define, wait_for, wait_marker
from tests.integration.test_snapshots import disk_xml

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


def write(pv: Pyvirt, name: str, seek_mib: int, count_mib: int = 1) -> None:
    """Random data into the guest's vda at *seek_mib* MiB, synced."""
    guest(pv, name, f"dd if=/dev/urandom of=/dev/vda bs=1M seek={seek_mib} count={count_mib} "
          "conv=fsync 2>/dev/null")  # fmt: skip


def allocated(image: Path) -> int:
    """Bytes of *image* holding data (its own clusters, not its backing file's)."""
    out = subprocess.run(["qemu-img", "map", "-U", "--output=json", str(image)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return sum(e["length"] for e in json.loads(out) if e["data"] and e["depth"] == 0)


def same(a: Path, b: Path) -> bool:
    res = subprocess.run(["qemu-img", "compare", "-U", str(a), str(b)], capture_output=True)
    return res.returncode == 0


def push_xml(pv: Pyvirt, target: Path, incremental: str | None = None) -> str:
    inc = f"<incremental>{incremental}</incremental>" if incremental else ""
    path = pv.root / f"{target.name}.backup.xml"
    path.write_text(
        f"<domainbackup mode='push'>{inc}<disks><disk name='vda' backup='yes' type='file'>"
        f"<driver type='qcow2'/><target file='{target}'/></disk></disks></domainbackup>"
    )
    return str(path)


def checkpoint_xml(pv: Pyvirt, name: str) -> str:
    path = pv.root / f"{name}.cp.xml"
    path.write_text(f"<domaincheckpoint><name>{name}</name></domaincheckpoint>")
    return str(path)


def backup(pv: Pyvirt, target: Path, inc: str | None, cp: str | None) -> Any:
    args = ["backup-begin", "b", "--backupxml", push_xml(pv, target, inc), "--wait"]
    if cp:
        args += ["--checkpointxml", checkpoint_xml(pv, cp)]
    res = pv(*args)
    assert res.out == "Backup started\nBackup completed\n"
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def qemu_pid(pv: Pyvirt, name: str) -> int:
    return int(json.loads((pv.root / "run" / "qemu" / name / "runtime.json").read_text())["pid"])


def test_push_pull_lost_bitmap_and_delete(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = make_image(pyvirt.root / "b.qcow2", "qcow2", 32 * MiB)
    define(pyvirt, tiny_image, "b", extra_devices=disk_xml(disk).replace(
        "<source", "<driver name='qemu' type='qcow2'/><source"))  # fmt: skip
    # a checkpoint of the shut-off domain (qemu-img bitmap): stored in the image from the start
    assert pyvirt("checkpoint-create-as", "b", "c0").out == "Domain checkpoint c0 created\n"
    pyvirt("start", "b")
    wait_marker(pyvirt, "b")
    write(pyvirt, "b", 0, 4)

    # full push backup creating checkpoint c1, then a write, then an incremental one (+ c2)
    full, inc = pyvirt.root / "full.qcow2", pyvirt.root / "inc.qcow2"
    backup(pyvirt, full, None, "c1")
    assert same(full, disk)
    write(pyvirt, "b", 16)
    size = pyvirt("checkpoint-dumpxml", "b", "c1", "--size", "--no-domain").out
    assert "size='1048576'" in size, size
    backup(pyvirt, inc, "c1", "c2")
    assert MiB <= allocated(inc) <= MiB + 256 * 1024, allocated(inc)
    subprocess.run(["qemu-img", "rebase", "-u", "-b", str(full), "-F", "qcow2", str(inc)],
                   check=True)  # fmt: skip
    assert same(inc, disk)
    assert pyvirt("checkpoint-list", "b", "--name").out == "c0\nc1\nc2\n\n"
    assert pyvirt("checkpoint-parent", "b", "c2").out == "c1\n"
    assert "Job type:         Completed" in pyvirt("domjobinfo", "b", "--completed").out

    # pull mode: the export keeps the disk as it was at backup-begin, the bitmap shows what
    # changed since c2
    write(pyvirt, "b", 8)
    expected = pyvirt.root / "expected.raw"
    subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(disk), str(expected)],
                   check=True)  # fmt: skip
    pull = pyvirt.root / "pull.xml"
    pull.write_text(
        "<domainbackup mode='pull'><incremental>c2</incremental>"
        "<server transport='unix'/></domainbackup>"
    )
    assert pyvirt("backup-begin", "b", "--backupxml", str(pull)).out == "Backup started\n"
    xml = pyvirt("backup-dumpxml", "b").out
    assert "exportname='vda'" in xml and "exportbitmap='backup-vda'" in xml
    sock = xml.split("socket='")[1].split("'")[0]  # in the domain's directory by default
    assert "Operation:        Backup" in pyvirt("domjobinfo", "b").out
    write(pyvirt, "b", 8)  # the guest goes on writing over what the export shows
    got = pyvirt.root / "got.raw"
    opts = f"driver=nbd,server.type=unix,server.path={sock},export=vda"
    subprocess.run(["qemu-img", "convert", "--image-opts", opts, "-O", "raw", str(got)],
                   check=True)  # fmt: skip
    assert got.read_bytes() == expected.read_bytes()
    out = subprocess.run(["qemu-img", "map", "--output=json", "--image-opts",
                          f"{opts},x-dirty-bitmap=qemu:dirty-bitmap:backup-vda"],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    dirty = [(e["start"], e["length"]) for e in json.loads(out) if not e["data"]]
    assert dirty == [(8 * MiB, MiB)], out
    scratch = list(pyvirt.root.glob("b.qcow2.scratch-*"))
    assert len(scratch) == 1
    assert pyvirt("domjobabort", "b").rc == 0
    assert not scratch[0].exists() and pyvirt("domjobinfo", "b").out.startswith(
        "Job type:         None"
    )

    # a full pull backup on loopback TCP, ended with backup-end
    port = free_port()
    pull.write_text(
        f"<domainbackup mode='pull'><server transport='tcp' name='localhost' port='{port}'/>"
        "</domainbackup>"
    )
    pyvirt("backup-begin", "b", "--backupxml", str(pull))
    copy = pyvirt.root / "copy.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", f"nbd://localhost:{port}/vda",
                    str(copy)], check=True)  # fmt: skip
    assert same(copy, disk)
    assert pyvirt("backup-end", "b").out == "Backup ended\n"

    # QEMU killed: the bitmap it found in the image (c0) is left "in use", those it made (c1,
    # c2) are lost; the next incremental backup is full with a warning, the next incremental
    os.kill(qemu_pid(pyvirt, "b"), signal.SIGKILL)
    wait_for(lambda: pyvirt("domstate", "b").out.startswith("shut off"), 30, "b shut off")
    pyvirt("start", "b")
    wait_marker(pyvirt, "b")
    refull = pyvirt.root / "refull.qcow2"
    res = backup(pyvirt, refull, "c0", "c3")
    assert res.err == (
        "warning: checkpoint c0's bitmap on vda is inconsistent (QEMU did not stop cleanly); "
        "taking a full backup\n"
    )
    assert same(refull, disk)
    write(pyvirt, "b", 20)
    inc2 = pyvirt.root / "inc2.qcow2"
    res = backup(pyvirt, inc2, "c3", None)
    assert res.err == "" and MiB <= allocated(inc2) <= MiB + 256 * 1024

    # deleting the newest checkpoint merges its bitmap into its parent's, which records again
    assert pyvirt("checkpoint-delete", "b", "c3").out == "Domain checkpoint c3 deleted\n"
    write(pyvirt, "b", 24)
    size = pyvirt("checkpoint-dumpxml", "b", "c2", "--size", "--no-domain").out
    assert "size='2097152'" in size, size
    pyvirt("destroy", "b")
    out = subprocess.run(["qemu-img", "info", "--output=json", str(disk)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    info = json.loads(out)
    bitmaps = {b["name"]: b["flags"] for b in info["format-specific"]["data"]["bitmaps"]}
    assert bitmaps == {"c0": [], "c1": [], "c2": ["auto"]}, bitmaps

    # shut off: qemu-img merges c2 into c1
    assert pyvirt("checkpoint-delete", "b", "c2").out == "Domain checkpoint c2 deleted\n"
    res = pyvirt("undefine", "b", check=False)
    assert res.rc == 1 and "has 2 checkpoints" in res.err
    pyvirt("undefine", "b", "--checkpoints-metadata")
