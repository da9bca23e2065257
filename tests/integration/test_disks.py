"""Disk hotplug through the real CLI on the tiny guest: the guest sees each disk with its exact
size, writes a pattern, and after detach the host reads the pattern back from the image."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu import console
from tests.conftest import Pyvirt
from tests.consolehelp import serial_path
from tests.integration.test_lifecycle import define, wait_for, wait_marker

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024
_seq = itertools.count()


def serial_socket(pv: Pyvirt, name: str) -> Path:
    return serial_path(pv.root, name)


def guest(pv: Pyvirt, name: str, command: str, timeout: float = 30.0) -> str:
    """Run a shell command on the guest's serial console; return its output (rc must be 0)."""
    n = next(_seq)
    send = f"\recho BEGIN-{n}; {command}; echo END-{n} rc=$?\r".encode()
    out = console.read_until(
        serial_socket(pv, name), re.compile(rf"END-{n} rc=(\d+)".encode()), timeout, send=send
    ).decode(errors="replace")
    body = out.split(f"BEGIN-{n}\r\n", 1)[-1]
    text, _, rc = body.rpartition(f"END-{n} rc=")
    assert rc == "0", f"guest command {command!r} failed (rc={rc}): {text}"
    return text.replace("\r", "")


def guest_disks(pv: Pyvirt, name: str) -> dict[str, int]:
    """Block devices of the guest and their sizes in bytes."""
    out = guest(pv, name, "for d in /sys/block/[vsh]d*; do echo DISK ${d##*/} $(cat $d/size); done")
    disks = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "DISK" and parts[2].isdigit():
            disks[parts[1]] = int(parts[2]) * 512
    return disks


def wait_new_disk(pv: Pyvirt, name: str, before: dict[str, int], size: int) -> str:
    """Wait until the guest shows a new block device of exactly ``size`` bytes."""
    found: list[str] = []

    def seen() -> bool:
        now = guest_disks(pv, name)
        found[:] = [d for d, s in now.items() if d not in before and s == size]
        return bool(found)

    wait_for(seen, 40, f"a new {size}-byte disk in guest {name}")
    return found[0]


def write_pattern(pv: Pyvirt, name: str, dev: str, pattern: str) -> None:
    guest(pv, name, f"echo {pattern} | dd of=/dev/{dev} bs=512 seek=8 conv=fsync 2>/dev/null")


def read_back(image: Path, fmt: str, tmp: Path) -> bytes:
    """Bytes 4096..4160 of an image as the guest sees them (qcow2 converted by qemu-img)."""
    path = image
    if fmt == "qcow2":
        path = tmp / (image.name + ".raw")
        subprocess.run(
            ["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(image), str(path)], check=True
        )
    with open(path, "rb") as f:
        f.seek(4096)
        return f.read(64)


def make_image(path: Path, fmt: str, size: int, backing: Path | None = None) -> Path:
    args = ["qemu-img", "create", "-q", "-f", fmt]
    if backing is not None:
        args += ["-b", str(backing), "-F", "qcow2"]
    subprocess.run([*args, str(path), str(size)], check=True)
    return path


def booted(pv: Pyvirt, tiny_image: Any, name: str = "d1", **kw: str) -> None:
    define(pv, tiny_image, name, **kw)
    pv("start", name)
    wait_marker(pv, name)


def test_hotplug_virtio_and_scsi_qcow2_and_raw(pyvirt: Pyvirt, tiny_image: Any) -> None:
    booted(pyvirt, tiny_image)
    before = guest_disks(pyvirt, "d1")
    cases = [  # target, bus, format, size, cache
        ("vdb", "virtio", "qcow2", 10 * MiB, "writeback"),
        ("vdc", "virtio", "raw", 11 * MiB, "none"),
        ("sdb", "scsi", "qcow2", 12 * MiB, "writethrough"),
        ("sdc", "scsi", "raw", 13 * MiB, "directsync"),
    ]
    seen: dict[str, str] = {}
    for target, bus, fmt, size, cache in cases:
        img = make_image(pyvirt.root / f"{target}.{fmt}", fmt, size)
        pyvirt("attach-disk", "d1", str(img), target, "--targetbus", bus,
               "--subdriver", fmt, "--cache", cache, "--live")  # fmt: skip
        seen[target] = wait_new_disk(
            pyvirt, "d1", {**before, **{v: 0 for v in seen.values()}}, size
        )
        write_pattern(pyvirt, "d1", seen[target], f"PATTERN-{target}")

    listing = json.loads(pyvirt("domblklist", "d1", "--json").out)
    assert {e["target"]: e["bus"] for e in listing} == {c[0]: c[1] for c in cases}
    infos = {i["target"]: i for i in json.loads(pyvirt("domblkinfo", "d1", "--all", "--json").out)}
    assert {t: infos[t]["capacity"] for t in infos} == {c[0]: c[3] for c in cases}
    stats = json.loads(pyvirt("domblkstat", "d1", "--json").out)
    for target, *_ in cases:
        assert stats[target]["wr_req"] >= 1 and stats[target]["wr_bytes"] >= 512
    assert "sdc wr_req " in pyvirt("domblkstat", "d1", "sdc").out

    pyvirt("blockresize", "d1", "vdb", "20M")
    wait_for(lambda: guest_disks(pyvirt, "d1").get(seen["vdb"]) == 20 * MiB, 20, "new size")
    assert "Capacity:       20971520" in pyvirt("domblkinfo", "d1", "vdb").out

    live = pyvirt("dumpxml", "d1").out
    assert "<alias name='virtio-disk1'/>" in live and "model='virtio-scsi'" in live
    for target, _bus, _fmt, _size, _cache in cases:
        pyvirt("detach-disk", "d1", target, "--live")
    assert set(guest_disks(pyvirt, "d1")) == set(before)
    assert pyvirt("domblklist", "d1").out.count("\n") == 3  # header, rule, blank line
    for target, _bus, fmt, _size, _cache in cases:
        data = read_back(pyvirt.root / f"{target}.{fmt}", fmt, pyvirt.root)
        assert data.startswith(f"PATTERN-{target}\n".encode()), (target, data)
    assert "vdb" not in pyvirt("dumpxml", "d1", "--inactive").out  # live only


def test_config_attach_all_buses_boot(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """--config on a shut-off domain: ide, sata, virtio, scsi, every cache and io mode, raw
    and a qcow2 linked clone; the guest lists each disk with its size after start."""
    define(pyvirt, tiny_image, "d2")
    base = make_image(pyvirt.root / "base.qcow2", "qcow2", 15 * MiB)
    clone = make_image(pyvirt.root / "clone.qcow2", "qcow2", 15 * MiB, backing=base)
    cases = [  # target, bus, image, format, cache, io
        ("hda", "ide", make_image(pyvirt.root / "h.raw", "raw", 5 * MiB), "raw", "unsafe",
         "threads"),
        ("sda", "sata", make_image(pyvirt.root / "s.raw", "raw", 6 * MiB), "raw", "writeback",
         "io_uring"),
        ("vda", "virtio", clone, "qcow2", "none", "native"),
        ("sdb", "scsi", make_image(pyvirt.root / "c.raw", "raw", 7 * MiB), "raw", "directsync",
         "native"),
        ("vdb", "virtio", make_image(pyvirt.root / "w.raw", "raw", 8 * MiB), "raw",
         "writethrough", "threads"),
    ]  # fmt: skip
    for target, bus, img, fmt, cache, io in cases:
        pyvirt("attach-disk", "d2", str(img), target, "--targetbus", bus, "--subdriver", fmt,
               "--cache", cache, "--io", io)  # fmt: skip
    inactive = pyvirt("domblklist", "d2", "--inactive", "--details").out
    assert all(t in inactive for t, *_ in cases)
    pyvirt("start", "d2")
    wait_marker(pyvirt, "d2")
    log = (pyvirt.root / "log" / "qemu" / "d2" / "console.log").read_text(errors="replace")
    sizes = sorted(int(m) for m in re.findall(r"PYVIRT-DISKS \w+ (\d+)", log))
    assert sizes == [5 * MiB, 6 * MiB, 7 * MiB, 8 * MiB, 15 * MiB]
    infos = json.loads(pyvirt("domblkinfo", "d2", "--all", "--json").out)
    assert {i["target"]: i["capacity"] for i in infos}["vda"] == 15 * MiB
    # a disk added live with --persistent stays after a restart
    img = make_image(pyvirt.root / "p.raw", "raw", 9 * MiB)
    pyvirt("attach-disk", "d2", str(img), "vdc", "--persistent")
    pyvirt("destroy", "d2")
    pyvirt("start", "d2")
    wait_marker(pyvirt, "d2", count=2)
    log = (pyvirt.root / "log" / "qemu" / "d2" / "console.log").read_text(errors="replace")
    assert f"PYVIRT-DISKS vdc {9 * MiB}" in log.split("PYVIRT-TINY-READY")[-2]
    bad = pyvirt("attach-disk", "d2", str(img), "sdc", "--targetbus", "sata", "--live",
                 check=False)  # fmt: skip
    assert bad.rc == 1 and "bus 'sata' does not support hotplug" in bad.err


def test_image_locking(pyvirt: Pyvirt, tiny_image: Any) -> None:
    shared = make_image(pyvirt.root / "shared.raw", "raw", 4 * MiB)
    booted(pyvirt, tiny_image, "la")
    booted(pyvirt, tiny_image, "lb")
    pyvirt("attach-disk", "la", str(shared), "vdb")
    res = pyvirt("attach-disk", "lb", str(shared), "vdb", check=False)
    assert res.rc == 1
    assert "is in use by running domain 'la' (disk 'vdb', read-write)" in res.err
    assert "hint:" in res.err
    res = pyvirt("attach-disk", "lb", str(shared), "vdb", "--mode", "readonly", check=False)
    assert res.rc == 1 and "'la'" in res.err  # la writes: a reader is refused too
    pyvirt("detach-disk", "la", "vdb")
    pyvirt("attach-disk", "la", str(shared), "vdb", "--mode", "shareable")
    pyvirt("attach-disk", "lb", str(shared), "vdb", "--mode", "shareable")
    pyvirt("detach-disk", "lb", "vdb")
    # at start: a definition using la's disk is refused, naming la
    xml = (
        (pyvirt.root / "lb.xml")
        .read_text()
        .replace(
            "</devices>",
            f"<disk type='file' device='disk'><source file='{shared}'/>"
            "<target dev='vdc' bus='virtio'/></disk></devices>",
        )
    )
    (pyvirt.root / "lc.xml").write_text(xml.replace("<name>lb</name>", "<name>lc</name>"))
    pyvirt("define", str(pyvirt.root / "lc.xml"))
    res = pyvirt("start", "lc", check=False)
    assert res.rc == 1 and "in use by running domain 'la'" in res.err
    # QEMU's own lock is the backstop for processes pyvirt does not manage
    other = make_image(pyvirt.root / "other.raw", "raw", 4 * MiB)
    holder = subprocess.Popen(
        ["qemu-io", "-f", "raw", "-c", "sleep 60000", str(other)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        res = pyvirt("attach-disk", "la", str(other), "vdc", check=False)
        assert res.rc == 1 and "is locked by another process" in res.err, res.err
        assert "Traceback" not in res.err
    finally:
        holder.kill()
        holder.wait()


def test_attach_errors(pyvirt: Pyvirt, tiny_image: Any) -> None:
    define(pyvirt, tiny_image, "e1")
    qcow = make_image(pyvirt.root / "q.qcow2", "qcow2", MiB)
    checks = [
        (["e1", "/nonexistent.img", "vdb"], "disk source '/nonexistent.img' does not exist"),
        (["e1", str(qcow), "vdb"], "is a qcow2 image but would be attached as raw"),
        (["e1", str(qcow), "xyz"], "disk target 'xyz' is not a disk name"),
        (["e1", str(qcow), "vdb", "--subdriver", "qcow2", "--io", "native"],
         "io mode 'native' needs a direct cache mode"),
        (["e1", str(qcow), "vdb", "--subdriver", "qcow2", "--live"], "domain 'e1' is not running"),
        (["e1", str(qcow), "vdb", "--cache", "bogus"], "cache mode 'bogus' is not one of"),
        (["e1", "pool-only", "vdb", "--sourcetype", "volume"], "is not POOL/VOLUME"),
    ]  # fmt: skip
    before = pyvirt.snapshot()
    for args, message in checks:
        res = pyvirt("attach-disk", *args, check=False)
        assert res.rc == 1 and message in res.err, (args, res.err)
    assert pyvirt.snapshot() == before
    res = pyvirt("detach-disk", "e1", "vdz", check=False)
    assert res.rc == 1 and "domain 'e1' has no disk 'vdz' in its definition" in res.err
