"""``<disk type='volume'>`` in a dir pool, and raw byte ranges: the tiny guest boots with them
and sees the exact sizes; a volume is hot-plugged by POOL/VOLUME; the live XML keeps
``type='volume'``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import (
    MiB,
    guest_disks,
    read_back,
    wait_new_disk,
    write_pattern,
)
from tests.integration.test_lifecycle import domain_xml, wait_marker

pytestmark = pytest.mark.qemu


def _pool(pv: Pyvirt) -> Path:
    target = pv.root / "pool"
    pv("pool-define-as", "vp", "dir", "--target", str(target))
    pv("pool-build", "vp")
    pv("pool-start", "vp")
    return target


def _boot_log(pv: Pyvirt, name: str) -> str:
    return (pv.root / "log" / "qemu" / name / "console.log").read_text(errors="replace")


def test_volume_disk_boots_and_hotplugs(pyvirt: Pyvirt, tiny_image: Any) -> None:
    target = _pool(pyvirt)
    pyvirt("vol-create-as", "vp", "v1", "10M", "--format", "qcow2")
    pyvirt("vol-create-as", "vp", "v2", "6M", "--format", "raw")
    disk = (
        "<disk type='volume' device='disk'><driver name='qemu' type='qcow2'/>"
        "<source pool='vp' volume='v1'/><target dev='vda' bus='virtio'/></disk>"
    )
    (pyvirt.root / "v.xml").write_text(domain_xml(tiny_image, "v", extra_devices=disk))
    pyvirt("define", str(pyvirt.root / "v.xml"))
    pyvirt("start", "v")
    wait_marker(pyvirt, "v")
    assert f"PYVIRT-DISKS vda {10 * MiB}" in _boot_log(pyvirt, "v")
    live = pyvirt("dumpxml", "v").out
    assert re.search(r"<disk type=.volume.", live) and 'pool="vp"' in live.replace("'", '"')
    assert "Capacity:       10485760" in pyvirt("domblkinfo", "v", "vda").out
    assert "v1" in pyvirt("domblklist", "v").out

    before = guest_disks(pyvirt, "v")
    pyvirt("attach-disk", "v", "vp/v2", "vdb", "--sourcetype", "volume")
    dev = wait_new_disk(pyvirt, "v", before, 6 * MiB)
    write_pattern(pyvirt, "v", dev, "VOLUME-PATTERN")
    res = pyvirt("vol-delete", "v2", "--pool", "vp", check=False)
    assert res.rc == 1 and "'v'" in res.err  # in use by the running domain
    listing = pyvirt("domblklist", "v", "--details").out
    assert re.search(r"volume\s+disk\s+vdb\s+v2", listing), listing
    pyvirt("detach-disk", "v", "vdb")
    assert read_back(target / "v2", "raw", pyvirt.root).startswith(b"VOLUME-PATTERN\n")

    # the pool decides at start: an inactive pool is a clear refusal
    pyvirt("destroy", "v")
    pyvirt("pool-destroy", "vp")
    res = pyvirt("start", "v", check=False)
    assert res.rc == 1 and "'vp'" in res.err and "Traceback" not in res.err


def test_raw_ranges_boot(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """Raw ranges (partitions without device nodes): two of one file at once, and a qcow2
    image inside a range of another file (QEMU's locking would refuse a qcow2 range next to
    another open range of the same file: qcow2 needs the resize permission)."""
    img = pyvirt.root / "whole.img"
    with open(img, "wb") as f:
        f.truncate(32 * MiB)
    inner = pyvirt.root / "inner.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(inner), "5M"], check=True)
    holder = pyvirt.root / "holder.img"
    with open(holder, "wb") as f:
        f.truncate(24 * MiB)
        f.seek(16 * MiB)
        f.write(inner.read_bytes())

    def ranged(path: Path, fmt: str, offset: int, size: int, dev: str) -> str:
        return (
            f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
            f"<source file='{path}'><slices><slice type='storage' offset='{offset}' "
            f"size='{size}'/></slices></source><target dev='{dev}' bus='virtio'/></disk>"
        )

    disks = (
        ranged(img, "raw", MiB, 3 * MiB, "vda")
        + ranged(img, "raw", 8 * MiB, 4 * MiB, "vdb")
        + ranged(holder, "qcow2", 16 * MiB, 8 * MiB, "vdc")
    )
    (pyvirt.root / "r.xml").write_text(domain_xml(tiny_image, "r", extra_devices=disks))
    pyvirt("define", str(pyvirt.root / "r.xml"))
    pyvirt("start", "r")
    wait_marker(pyvirt, "r")
    log = _boot_log(pyvirt, "r")
    for dev, size in (("vda", 3 * MiB), ("vdb", 4 * MiB), ("vdc", 5 * MiB)):
        assert f"PYVIRT-DISKS {dev} {size}" in log, log
    write_pattern(pyvirt, "r", "vda", "RANGE-PATTERN")
    pyvirt("destroy", "r")
    with open(img, "rb") as f:
        f.seek(MiB + 4096)
        assert f.read(14) == b"RANGE-PATTERN\n"
        f.seek(4096)
        assert f.read(14) == bytes(14)  # nothing outside the range
