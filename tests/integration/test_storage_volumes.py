"""Volume round trips through the CLI: upload/download (sparse), clone, convert, resize, wipe,
and a dir-pool volume given to the tiny guest."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_lifecycle import console_log, domain_xml, wait_for

MIB = 1 << 20


def images(pv: Pyvirt) -> Path:
    return pv.root / "lib" / "images"


def holey_file(path: Path, size: int = 64 * MIB) -> bytes:
    """``size`` bytes: random data in 1 MiB islands every 8 MiB, holes between."""
    with open(path, "wb") as f:
        f.truncate(size)
        for off in range(0, size, 8 * MIB):
            f.seek(off)
            f.write(os.urandom(MIB))
    return path.read_bytes()


def used(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def vol(pv: Pyvirt, name: str) -> dict[str, Any]:
    vols = {v["name"]: v for v in json.loads(pv("vol-list", "default", "--json").out)}
    return vols[name]


def test_upload_download_sparse_round_trip(pyvirt: Pyvirt, tmp_path: Path) -> None:
    src = tmp_path / "src.img"
    data = holey_file(src)
    pyvirt("vol-create-as", "default", "up.img", "64M", "--allocation", "0")
    pyvirt("vol-upload", "--pool", "default", "up.img", str(src), "--sparse")
    vpath = images(pyvirt) / "up.img"
    assert vpath.read_bytes() == data
    assert used(vpath) <= 10 * MIB  # 8 islands of 1 MiB, holes stayed holes
    out = tmp_path / "out.img"
    res = pyvirt("vol-download", "--pool", "default", "up.img", str(out), "--sparse")
    assert res.err == ""  # no progress bar without a terminal
    assert out.read_bytes() == data and used(out) <= 10 * MIB
    # --offset/--length both ways
    part = tmp_path / "part"
    pyvirt("vol-download", str(vpath), str(part), "--offset", "8M", "--length", "2M")
    assert part.read_bytes() == data[8 * MIB : 10 * MIB]
    patch = tmp_path / "patch"
    patch.write_bytes(b"\xab" * 4096)
    pyvirt("vol-upload", str(vpath), str(patch), "--offset", "4M")
    assert vpath.read_bytes()[4 * MIB : 4 * MIB + 4096] == b"\xab" * 4096
    # too big for the volume: refused, volume unchanged
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(65 * MIB)
    before = vpath.read_bytes()
    res = pyvirt("vol-upload", str(vpath), str(big), check=False)
    assert res.rc == 1 and "cannot upload" in res.err and "vol-resize" in res.err
    assert vpath.read_bytes() == before


def test_clone_and_convert(pyvirt: Pyvirt, tmp_path: Path) -> None:
    src = tmp_path / "src.img"
    data = holey_file(src, 32 * MIB)
    pyvirt("vol-create-as", "default", "base.img", "32M", "--allocation", "0")
    pyvirt("vol-upload", "base.img", str(src), "--pool", "default", "--sparse")
    assert (
        "Vol copy.img cloned from base.img"
        in pyvirt("vol-clone", "base.img", "copy.img", "--pool", "default").out
    )
    assert (images(pyvirt) / "copy.img").read_bytes() == data
    assert used(images(pyvirt) / "copy.img") <= 6 * MIB
    qxml = tmp_path / "q.xml"
    qxml.write_text(
        "<volume><name>conv.qcow2</name><capacity>0</capacity>"
        "<target><format type='qcow2'/></target></volume>"
    )
    pyvirt("vol-create-from", "default", str(qxml), "base.img", "--inputpool", "default")
    conv = vol(pyvirt, "conv.qcow2")
    assert conv["format"] == "qcow2" and conv["capacity"] == 32 * MIB
    rxml = tmp_path / "r.xml"
    rxml.write_text(
        "<volume><name>back.raw</name><capacity>0</capacity>"
        "<target><format type='raw'/></target></volume>"
    )
    pyvirt("vol-create-from", "default", str(rxml), "conv.qcow2", "--inputpool", "default")
    assert (images(pyvirt) / "back.raw").read_bytes() == data
    # a qcow2 clone, and a linked clone on top of it
    pyvirt("vol-clone", str(images(pyvirt) / "conv.qcow2"), "conv2.qcow2")
    same = subprocess.run(
        ["qemu-img", "compare", "-q", str(images(pyvirt) / "conv2.qcow2"), str(src)]
    )
    assert same.returncode == 0
    pyvirt(
        "vol-create-as", "default", "linked.qcow2", "32M", "--format", "qcow2",
        "--backing-vol", "conv2.qcow2", "--backing-vol-format", "qcow2",
    )  # fmt: skip
    linked = vol(pyvirt, "linked.qcow2")
    assert linked["backing_path"] == str(images(pyvirt) / "conv2.qcow2")
    res = pyvirt("vol-delete", "conv2.qcow2", "--pool", "default", check=False)
    assert res.rc == 1 and "backing file of volume 'linked.qcow2'" in res.err


def test_resize_rules(pyvirt: Pyvirt, tmp_path: Path) -> None:
    pyvirt("vol-create-as", "default", "r.img", "16M", "--allocation", "0")
    path = images(pyvirt) / "r.img"
    with open(path, "r+b") as f:
        f.seek(9 * MIB)
        f.write(b"data")
    pyvirt("vol-resize", "r.img", "32M", "--pool", "default")
    assert vol(pyvirt, "r.img")["capacity"] == 32 * MIB
    res = pyvirt("vol-resize", "r.img", "12M", "--pool", "default", check=False)
    assert res.rc == 1 and "--shrink" in res.err and path.stat().st_size == 32 * MIB
    res = pyvirt("vol-resize", "r.img", "8M", "--pool", "default", "--shrink", check=False)
    assert res.rc == 1 and "holds data up to" in res.err and path.stat().st_size == 32 * MIB
    pyvirt("vol-resize", "r.img", "10M", "--pool", "default", "--shrink")
    assert path.stat().st_size == 10 * MIB
    pyvirt("vol-resize", "r.img", "--delta", "2M", "--pool", "default", "--allocate")
    assert path.stat().st_size == 12 * MIB
    pyvirt("vol-create-as", "default", "q.qcow2", "16M", "--format", "qcow2")
    pyvirt("vol-resize", "q.qcow2", "1G", "--pool", "default")
    assert vol(pyvirt, "q.qcow2")["capacity"] == 1 << 30
    pyvirt("vol-resize", "q.qcow2", "64M", "--pool", "default", "--shrink")
    assert vol(pyvirt, "q.qcow2")["capacity"] == 64 * MIB


def test_wipe_zero_verified(pyvirt: Pyvirt) -> None:
    pyvirt("vol-create-as", "default", "w.img", "8M")
    path = images(pyvirt) / "w.img"
    path.write_bytes(os.urandom(8 * MIB))
    assert "Vol w.img wiped" in pyvirt("vol-wipe", "w.img", "--pool", "default").out
    assert path.read_bytes() == bytes(8 * MIB) and used(path) >= 8 * MIB
    pyvirt("vol-create-as", "default", "w.qcow2", "8M", "--format", "qcow2")
    qemu_io = [
        "qemu-io",
        "-f",
        "qcow2",
        "-c",
        "write -P 0x55 0 1M",
        str(images(pyvirt) / "w.qcow2"),
    ]
    subprocess.run(qemu_io, check=True, capture_output=True)
    pyvirt("vol-wipe", "w.qcow2", "--pool", "default")
    res = subprocess.run(["qemu-img", "compare", "-q", str(images(pyvirt) / "w.qcow2"), str(path)])
    assert res.returncode == 0 and vol(pyvirt, "w.qcow2")["capacity"] == 8 * MIB
    res = pyvirt("vol-wipe", "w.img", "--pool", "default", "--algorithm", "dod", check=False)
    assert res.rc == 1 and "'dod' is not supported" in res.err


@pytest.mark.qemu
def test_volume_in_running_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    pyvirt("vol-create-as", "default", "g.img", "48M", "--allocation", "0")
    path = pyvirt("vol-path", "--pool", "default", "g.img").out.strip()
    assert path == str(images(pyvirt) / "g.img")
    assert pyvirt("vol-pool", path).out.strip() == "default"
    assert pyvirt("vol-name", path).out.strip() == "g.img"
    assert pyvirt("vol-key", "--pool", "default", "g.img").out.strip() == path
    disk = (
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>"
    )
    xml = pyvirt.root / "g.xml"
    xml.write_text(domain_xml(tiny_image, "g", extra_devices=disk))
    pyvirt("define", str(xml))
    pyvirt("start", "g")
    log = console_log(pyvirt, "g")

    def disks_seen() -> bool:
        return log.exists() and "PYVIRT-DISKS vda" in log.read_text(errors="replace")

    wait_for(disks_seen, 90, "the guest's disk list")
    assert f"PYVIRT-DISKS vda {48 * MIB}" in log.read_text(errors="replace")
    for args, verb in (
        (("vol-delete", "g.img", "--pool", "default"), "delete"),
        (("vol-wipe", path), "wipe"),
        (("vol-resize", path, "64M"), "resize"),
    ):
        res = pyvirt(*args, check=False)
        assert res.rc == 1 and f"cannot {verb} volume 'g.img'" in res.err, res.err
        assert "in use by running domain 'g'" in res.err
    res = pyvirt("pool-destroy", "default", check=False)
    assert res.rc == 1 and "in use by domain 'g'" in res.err
    assert os.path.exists(path)
    pyvirt("destroy", "g")
    pyvirt("vol-delete", "g.img", "--pool", "default")
    assert not os.path.exists(path)
