"""Snapshots through the real CLI on the tiny guest with a qcow2 disk: an internal snapshot
with memory state of a running guest (the disk and the uptime go back), internal snapshots
of a shut-off domain, and an external disk-only snapshot (overlay, revert, merge on delete)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import guest, make_image, read_back
from tests.integration.test_lifecycle import define, state, wait_marker

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


def disk_xml(path: Path) -> str:
    return (
        f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
    )


def write_marker(pv: Pyvirt, name: str, text: str) -> None:
    guest(pv, name, f"echo {text} | dd of=/dev/vda bs=512 seek=8 conv=fsync 2>/dev/null")


def read_marker(pv: Pyvirt, name: str) -> str:
    out = guest(
        pv, name, "echo 3 > /proc/sys/vm/drop_caches; dd if=/dev/vda bs=512 skip=8 count=1 "
        "2>/dev/null | head -n 1"
    )  # fmt: skip
    return out.strip().replace("\x00", "")


def uptime(pv: Pyvirt, name: str) -> float:
    return float(guest(pv, name, "cat /proc/uptime").split()[0])


def host_write(image: Path, byte: int) -> None:
    """Write 512 bytes of *byte* at offset 4096 of a shut-off qcow2 image (and its chain)."""
    subprocess.run(
        ["qemu-io", "-f", "qcow2", "-c", f"write -P {byte:#x} 4096 512", str(image)],
        check=True,
        capture_output=True,
    )


def image_tags(image: Path) -> list[str]:
    out = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(image)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return [str(t["name"]) for t in json.loads(out).get("snapshots", [])]


def source_of(pv: Pyvirt, name: str) -> str:
    listing = json.loads(pv("domblklist", name, "--inactive", "--json").out)
    return str(next(d["source"] for d in listing if d["target"] == "vda"))


def test_internal_snapshot_with_memory_and_shutoff(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = make_image(pyvirt.root / "d.qcow2", "qcow2", 16 * MiB)
    define(pyvirt, tiny_image, "s", extra_devices=disk_xml(disk))
    pyvirt("start", "s")
    wait_marker(pyvirt, "s")
    # under TCG the TSC follows the host's clock; the HPET follows QEMU's virtual clock,
    # which the snapshot saves, so the uptime read through it goes back on revert
    guest(pyvirt, "s", "echo hpet > /sys/devices/system/clocksource/clocksource0/"
          "current_clocksource")  # fmt: skip
    write_marker(pyvirt, "s", "MARK1")
    up1 = uptime(pyvirt, "s")
    out = pyvirt("snapshot-create-as", "s", "s1", "first marker").out
    assert out == "Domain snapshot s1 created\n"
    assert state(pyvirt, "s").startswith("running")
    write_marker(pyvirt, "s", "MARK2")
    assert read_marker(pyvirt, "s") == "MARK2"
    guest(pyvirt, "s", "sleep 4")  # so that the uptime after the revert is visibly lower
    up2 = uptime(pyvirt, "s")
    assert up2 > up1

    pyvirt("snapshot-revert", "s", "s1")
    assert state(pyvirt, "s").startswith("running")
    assert read_marker(pyvirt, "s") == "MARK1"
    up3 = uptime(pyvirt, "s")
    assert up1 <= up3 < up2, (up1, up2, up3)
    info = pyvirt("snapshot-info", "s", "--current").out
    assert "Name:           s1" in info and "State:          running" in info
    assert "Location:       internal" in info

    # an internal snapshot deleted while the guest runs (QMP snapshot-delete)
    pyvirt("snapshot-create-as", "s", "tmp")
    assert "tmp" in image_tags(disk)
    assert pyvirt("snapshot-delete", "s", "tmp").out == "Domain snapshot tmp deleted\n"
    assert image_tags(disk) == ["s1"]

    # shut off: a disk-only internal snapshot, applied and deleted with qemu-img
    pyvirt("destroy", "s")
    pyvirt("snapshot-create-as", "s", "s2")
    host_write(disk, 0x5A)
    assert read_back(disk, "qcow2", pyvirt.root).startswith(b"Z" * 16)
    pyvirt("snapshot-revert", "s", "s2")
    assert read_back(disk, "qcow2", pyvirt.root).startswith(b"MARK1\n")
    assert state(pyvirt, "s").startswith("shut off")
    assert pyvirt("snapshot-parent", "s", "s2").out == "s1\n"
    assert pyvirt("snapshot-list", "s", "--tree").out == "s1\n  |\n  +- s2\n\n"
    listing = json.loads(pyvirt("snapshot-list", "s", "--json").out)
    assert [(s["name"], s["state"]) for s in listing] == [("s1", "running"), ("s2", "shutoff")]
    pyvirt("snapshot-delete", "s", "s2")
    assert image_tags(disk) == ["s1"]
    assert pyvirt("snapshot-current", "s", "--name").out == "s1\n"

    # a memory snapshot on a shut-off domain: QEMU starts paused and loads it
    pyvirt("snapshot-revert", "s", "s1", "--paused")
    assert state(pyvirt, "s").startswith("paused")
    pyvirt("resume", "s")
    assert read_marker(pyvirt, "s") == "MARK1"
    pyvirt("destroy", "s")

    # the metadata survives, and undefine wants --snapshots-metadata
    res = pyvirt("undefine", "s", check=False)
    assert res.rc == 1 and "has 1 snapshot" in res.err and "--snapshots-metadata" in res.err
    pyvirt("undefine", "s", "--snapshots-metadata")
    assert not (pyvirt.root / "lib" / "qemu" / "snapshot" / "s").exists() or not any(
        (pyvirt.root / "lib" / "qemu" / "snapshot" / "s").iterdir()
    )


def test_external_disk_only_snapshot(pyvirt: Pyvirt, tiny_image: Any) -> None:
    base = make_image(pyvirt.root / "e.qcow2", "qcow2", 16 * MiB)
    host_write(base, 0x41)
    define(pyvirt, tiny_image, "e", extra_devices=disk_xml(base))
    pyvirt("start", "e")
    wait_marker(pyvirt, "e")
    pyvirt("snapshot-create-as", "e", "x1", "--disk-only", "--atomic")
    overlay = pyvirt.root / "e.x1"
    assert overlay.is_file() and source_of(pyvirt, "e") == str(overlay)
    res = pyvirt("snapshot-create-as", "e", "x1", "--disk-only", check=False)
    assert res.rc == 1 and "already exists" in res.err
    write_marker(pyvirt, "e", "EXTW")
    pyvirt("destroy", "e")
    assert read_back(base, "qcow2", pyvirt.root).startswith(b"A" * 16)  # base frozen
    assert read_back(overlay, "qcow2", pyvirt.root).startswith(b"EXTW\n")
    info = pyvirt("snapshot-info", "e", "x1").out
    assert "State:          disk-snapshot" in info and "Location:       external" in info

    # revert: a fresh overlay on the frozen base; taken running, so it runs again
    pyvirt("snapshot-revert", "e", "x1")
    assert state(pyvirt, "e").startswith("running")
    pyvirt("destroy", "e")
    assert source_of(pyvirt, "e") == str(overlay)
    assert read_back(overlay, "qcow2", pyvirt.root).startswith(b"A" * 16)

    # delete of the shut-off snapshot merges the overlay into the base
    host_write(overlay, 0x42)
    out = pyvirt("snapshot-delete", "e", "x1").out
    assert out == "Domain snapshot x1 deleted\n"
    assert not overlay.exists() and source_of(pyvirt, "e") == str(base)
    assert read_back(base, "qcow2", pyvirt.root).startswith(b"B" * 16)
    assert pyvirt("snapshot-list", "e", "--name").out == "\n"

    # a shut-off external snapshot, then undefine --remove-all-storage takes the overlay too
    pyvirt("snapshot-create-as", "e", "x2", "--diskspec", f"vda,snapshot=external,file={overlay}")
    assert source_of(pyvirt, "e") == str(overlay)
    out = pyvirt("undefine", "e", "--remove-all-storage", "--snapshots-metadata").out
    assert not overlay.exists() and not base.exists(), out
    assert not os.path.exists(pyvirt.root / "lib" / "qemu" / "snapshot" / "e")


def test_external_tree_with_branches(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """Shut off (qemu-img only): x1 -> x2, revert to x1 makes a branch; merging x1 would
    corrupt it and is refused; x2 merges; an internal snapshot below an overlay is refused."""
    base = make_image(pyvirt.root / "b.qcow2", "qcow2", 16 * MiB)
    host_write(base, 0x41)
    define(pyvirt, tiny_image, "t", extra_devices=disk_xml(base))
    pyvirt("snapshot-create-as", "t", "i0")  # internal, in the base
    pyvirt("snapshot-create-as", "t", "x1", "--disk-only")
    o1 = pyvirt.root / "b.x1"
    host_write(o1, 0x42)
    pyvirt("snapshot-create-as", "t", "x2", "--disk-only")
    o2 = pyvirt.root / "b.x2"
    assert source_of(pyvirt, "t") == str(o2)
    host_write(o2, 0x43)
    res = pyvirt("snapshot-revert", "t", "i0", check=False)
    assert res.rc == 1 and "an external snapshot came after it" in res.err

    pyvirt("snapshot-revert", "t", "x1")  # x2 builds on b.x1: a new overlay b.x1-r1
    top = pyvirt.root / "b.x1-r1"
    assert source_of(pyvirt, "t") == str(top) and not o2.exists()
    assert read_back(top, "qcow2", pyvirt.root).startswith(b"A" * 16)
    assert read_back(o1, "qcow2", pyvirt.root).startswith(b"B" * 16)
    res = pyvirt("snapshot-delete", "t", "x1", check=False)
    assert res.rc == 1 and "also the base of" in res.err and "hint:" in res.err

    pyvirt("snapshot-revert", "t", "x2")  # back on the other branch: b.x2 re-created
    assert source_of(pyvirt, "t") == str(o2)
    assert read_back(o2, "qcow2", pyvirt.root).startswith(b"B" * 16)
    tree = pyvirt("snapshot-list", "t", "--tree").out
    assert tree == "i0\n  |\n  +- x1\n      |\n      +- x2\n\n"
    pyvirt("snapshot-delete", "t", "x2")  # merges b.x2 into b.x1
    assert source_of(pyvirt, "t") == str(o1) and not o2.exists()
    out = pyvirt("undefine", "t", "--remove-all-storage", "--snapshots-metadata").out
    assert not base.exists() and not o1.exists() and not top.exists(), out


def test_external_snapshot_deleted_while_running(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """Deleting an external snapshot of a running guest merges its overlay into the base with
    a live block commit: the guest keeps its data, its disk is the base again, the overlay
    is gone."""
    base = make_image(pyvirt.root / "r.qcow2", "qcow2", 16 * MiB)
    define(pyvirt, tiny_image, "r", extra_devices=disk_xml(base))
    pyvirt("start", "r")
    wait_marker(pyvirt, "r")
    write_marker(pyvirt, "r", "BEFORE")
    pyvirt("snapshot-create-as", "r", "x1", "--disk-only", "--atomic")
    overlay = pyvirt.root / "r.x1"
    write_marker(pyvirt, "r", "AFTER")
    pyvirt("snapshot-delete", "r", "x1")
    assert not overlay.exists()
    assert source_of(pyvirt, "r") == str(base)
    live = pyvirt("dumpxml", "r").out
    assert str(overlay) not in live and str(base) in live
    assert read_marker(pyvirt, "r") == "AFTER"  # the guest still sees its latest write
    assert pyvirt("snapshot-list", "r", "--name").out.strip() == ""
    pyvirt("destroy", "r")
    assert read_back(base, "qcow2", pyvirt.root).startswith(b"AFTER\n")


def test_external_snapshot_with_memory(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """--memspec: the guest's state goes to a file and the disk to an overlay; reverting
    resumes the guest from that file (no boot: its uptime goes back) on a fresh overlay."""
    base = make_image(pyvirt.root / "m.qcow2", "qcow2", 16 * MiB)
    define(pyvirt, tiny_image, "m", extra_devices=disk_xml(base))
    pyvirt("start", "m")
    wait_marker(pyvirt, "m")
    guest(pyvirt, "m", "echo hpet > /sys/devices/system/clocksource/clocksource0/"
          "current_clocksource")  # fmt: skip
    write_marker(pyvirt, "m", "MEM1")
    up1 = uptime(pyvirt, "m")
    mem = pyvirt.root / "m1.mem"
    out = pyvirt("snapshot-create-as", "m", "m1", "--memspec", f"file={mem}", "--live").out
    assert out == "Domain snapshot m1 created\n"
    overlay = pyvirt.root / "m.m1"
    assert mem.is_file() and overlay.is_file() and source_of(pyvirt, "m") == str(overlay)
    assert state(pyvirt, "m").startswith("running")
    write_marker(pyvirt, "m", "MEM2")
    guest(pyvirt, "m", "sleep 4")
    up2 = uptime(pyvirt, "m")
    info = pyvirt("snapshot-info", "m", "m1").out
    assert "State:          running" in info and "Location:       external" in info
    dumped = pyvirt("snapshot-dumpxml", "m", "m1").out
    memory = next(line for line in dumped.splitlines() if "<memory " in line)
    assert "snapshot='external'" in memory and f"file='{mem}'" in memory

    pyvirt("snapshot-revert", "m", "m1")
    assert state(pyvirt, "m").startswith("running")
    assert read_marker(pyvirt, "m") == "MEM1"
    up3 = uptime(pyvirt, "m")
    assert up1 <= up3 < up2, (up1, up2, up3)

    pyvirt("snapshot-delete", "m", "m1")  # a live merge; the memory file goes too
    assert not mem.exists() and not overlay.exists() and source_of(pyvirt, "m") == str(base)
    pyvirt("destroy", "m")
    res = pyvirt("snapshot-create-as", "m", "m2", "--memspec", f"file={mem}", check=False)
    assert res.rc == 1 and "needs a running guest" in res.err and not mem.exists()
