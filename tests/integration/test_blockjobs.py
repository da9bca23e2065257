"""Block jobs through the real CLI on the tiny guest and a qcow2 chain: active commit with a
pivot, pull, copy with a pivot, and a throttled copy aborted halfway."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import guest, make_image
from tests.integration.test_lifecycle import define, wait_marker

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024


def write_host(image: Path, offset: int, data: bytes) -> None:
    """Write ``data`` at ``offset`` of a qcow2 image (not in use) with qemu-io."""
    raw = image.with_suffix(".marker")
    raw.write_bytes(data)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -s {raw} {offset} {len(data)}",
                    str(image)], check=True, capture_output=True)  # fmt: skip


def read_host(image: Path, offset: int, length: int, tmp: Path) -> bytes:
    """Bytes of an image as a guest sees them (through its whole chain)."""
    out = tmp / "read.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(image), str(out)], check=True)
    with open(out, "rb") as f:
        f.seek(offset)
        return f.read(length)


def backing_of(image: Path) -> str | None:
    argv = ["qemu-img", "info", "-U", "--output=json", str(image)]
    info = json.loads(subprocess.run(argv, check=True, capture_output=True, text=True).stdout)
    value = info.get("backing-filename")
    return str(value) if value else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def disk_dev(path: Path, target: str = "vda") -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/><target dev='{target}' bus='virtio'/></disk>")  # fmt: skip


def guest_write(pv: Pyvirt, name: str, seek: int, text: str, dev: str = "vda") -> None:
    guest(pv, name, f"echo {text} | dd of=/dev/{dev} bs=512 seek={seek} conv=fsync 2>/dev/null")


def guest_read(pv: Pyvirt, name: str, skip: int, dev: str = "vda") -> str:
    return guest(pv, name, f"dd if=/dev/{dev} bs=512 skip={skip} count=1 2>/dev/null | head -c 16")


def test_commit_pull_copy_on_a_running_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    root = pyvirt.root
    base = make_image(root / "base.qcow2", "qcow2", 32 * MiB)
    write_host(base, 0, b"MARKER-A")
    mid = make_image(root / "mid.qcow2", "qcow2", 32 * MiB, backing=base)
    write_host(mid, 1536, b"MARKER-M")
    top = make_image(root / "top.qcow2", "qcow2", 32 * MiB, backing=mid)
    base2 = make_image(root / "base2.qcow2", "qcow2", 8 * MiB)
    write_host(base2, 0, b"MARKER-P")
    over2 = make_image(root / "over2.qcow2", "qcow2", 8 * MiB, backing=base2)
    define(pyvirt, tiny_image, "bj", extra_devices=disk_dev(top) + disk_dev(over2, "vdb"))
    pyvirt("start", "bj")
    wait_marker(pyvirt, "bj")
    guest_write(pyvirt, "bj", 1, "MARKER-B")
    assert "MARKER-A" in guest_read(pyvirt, "bj", 0)

    # blockpull flattens vdb: the overlay holds the base's data and backs onto nothing
    res = pyvirt("blockpull", "bj", "vdb", "--wait", "--verbose")
    assert res.out.strip() == "Pull complete" and "Block Pull: [100 %]" in res.err
    assert backing_of(over2) is None
    base2.unlink()  # the guest no longer needs it
    assert "MARKER-P" in guest_read(pyvirt, "bj", 0, "vdb")

    # the intermediate image into the base (not the active layer), deleted after; the
    # image above names its new backing image relative to its own directory
    res = pyvirt("blockcommit", "bj", "vda", "--top", str(mid), "--wait", "--delete",
                 "--keep-relative")  # fmt: skip
    assert res.out.strip() == "Commit complete"
    assert backing_of(top) == os.path.relpath(base, top.parent) and not mid.exists()
    live = pyvirt("dumpxml", "bj").out
    assert f"<source file='{base}'/>" in live and str(mid) not in live
    assert "MARKER-M" in guest_read(pyvirt, "bj", 3)

    # the active layer: refused without --active; then committed with a pivot
    bad = pyvirt("blockcommit", "bj", "vda", check=False)
    assert bad.rc == 1 and "requires --active" in bad.err
    res = pyvirt("blockcommit", "bj", "vda", "--active", "--pivot", "--verbose")
    assert res.out.strip() == "Successfully pivoted", res.out
    assert "Active Block Commit: [100 %]" in res.err
    live = pyvirt("dumpxml", "bj").out
    assert f"<source file='{base}'/>" in live and str(top) not in live
    assert "<backingStore" not in live.split("vdb")[0].split("<source file='" + str(base))[1]
    assert f"<source file='{base}'/>" in pyvirt("dumpxml", "bj", "--inactive").out
    assert "No current block job for vda" in pyvirt("blockjob", "bj", "vda", "--info").out
    guest_write(pyvirt, "bj", 2, "MARKER-C")  # now written into the base itself

    # a full copy with a pivot, then a throttled copy aborted halfway
    full = root / "full.qcow2"
    res = pyvirt("blockcopy", "bj", "vda", str(full), "--wait", "--pivot")
    assert res.out.strip() == "Successfully pivoted"
    assert f"<source file='{full}'/>" in pyvirt("dumpxml", "bj").out
    for seek, text in ((0, "MARKER-A"), (1, "MARKER-B"), (2, "MARKER-C"), (3, "MARKER-M")):
        assert text in guest_read(pyvirt, "bj", seek)
    guest(
        pyvirt, "bj", "dd if=/dev/urandom of=/dev/vda bs=1M seek=4 count=8 conv=fsync 2>/dev/null"
    )
    pyvirt("suspend", "bj")  # nothing writes while the source is compared
    before = sha256(full)
    slow = root / "slow.qcow2"
    res = pyvirt("blockcopy", "bj", "vda", str(slow), "--bandwidth", "1")
    assert res.out.strip() == "Block Copy started"
    info = pyvirt("blockjob", "bj", "vda").out
    assert info.startswith("Block Copy: [") and "[100 %]" not in info
    assert "Bandwidth limit: 1048576 bytes/s (1.000 MiB/s)" in info
    assert slow.exists()
    pyvirt("blockjob", "bj", "vda", "--abort")
    assert not slow.exists()
    assert sha256(full) == before
    assert "No current block job" in pyvirt("blockjob", "bj", "vda").out
    pyvirt("resume", "bj")
    assert "MARKER-C" in guest_read(pyvirt, "bj", 2)
    pyvirt("destroy", "bj")
    assert read_host(full, 512, 8, root) == b"MARKER-B"
    assert read_host(base, 512, 8, root) == b"MARKER-B"  # the base kept the commit


def test_offline_commit_and_pull(pyvirt: Pyvirt, tiny_image: Any) -> None:
    root = pyvirt.root
    base = make_image(root / "b.qcow2", "qcow2", 8 * MiB)
    write_host(base, 0, b"MARKER-A")
    mid = make_image(root / "m.qcow2", "qcow2", 8 * MiB, backing=base)
    write_host(mid, 512, b"MARKER-M")
    top = make_image(root / "t.qcow2", "qcow2", 8 * MiB, backing=mid)
    write_host(top, 1024, b"MARKER-T")
    define(pyvirt, tiny_image, "off", extra_devices=disk_dev(top))
    # the intermediate image into the base; top now backs onto the base
    res = pyvirt("blockcommit", "off", "vda", "--top", str(mid), "--wait", "--delete")
    assert res.out.strip() == "Commit complete"
    assert backing_of(top) == str(base) and not mid.exists()
    assert read_host(top, 0, 1032, root)[512:520] == b"MARKER-M"
    bad = pyvirt("blockcopy", "off", "vda", str(root / "x.qcow2"), check=False)
    assert bad.rc == 1 and "is not running" in bad.err
    res = pyvirt("blockpull", "off", "vda", "--wait")
    assert res.out.strip() == "Pull complete" and backing_of(top) is None
    data = read_host(top, 0, 1032, root)
    assert data[:8] == b"MARKER-A" and data[1024:1032] == b"MARKER-T"


def test_synchronized_phase_then_pivot_finish_and_timeout(pyvirt: Pyvirt, tiny_image: Any) -> None:
    root = pyvirt.root
    base = make_image(root / "base.qcow2", "qcow2", 16 * MiB)
    top = make_image(root / "top.qcow2", "qcow2", 16 * MiB, backing=base)
    define(pyvirt, tiny_image, "ph", extra_devices=disk_dev(top))
    pyvirt("start", "ph")
    wait_marker(pyvirt, "ph")
    guest_write(pyvirt, "ph", 1, "MARKER-B")
    # an active commit left in its synchronized phase; blockjob pivots it later
    res = pyvirt("blockcommit", "ph", "vda", "--active", "--wait")
    assert res.out.strip() == "Now in synchronized phase"
    assert pyvirt("blockjob", "ph", "vda", "--info").out.strip() == "Active Block Commit: [100 %]"
    busy = pyvirt("blockpull", "ph", "vda", check=False)
    assert busy.rc == 1 and "already has an active block job" in busy.err
    pyvirt("blockjob", "ph", "vda", "--pivot")
    assert f"<source file='{base}'/>" in pyvirt("dumpxml", "ph", "--inactive").out
    assert "No current block job" in pyvirt("blockjob", "ph", "vda").out
    # --finish: a full copy, the guest stays on the source
    done = root / "done.qcow2"
    assert pyvirt("blockcopy", "ph", "vda", str(done), "--finish").out.strip() == (
        "Successfully copied"
    )
    assert done.exists() and f"<source file='{base}'/>" in pyvirt("dumpxml", "ph").out
    assert read_host(done, 512, 8, root) == b"MARKER-B"
    # the destination as <disk> XML, with QEMU's mirror tuning (granularity, buf-size)
    raw = root / "raw.img"
    xml = root / "dest.xml"
    xml.write_text(f"<disk type='file'><driver name='qemu' type='raw'/><source file='{raw}'/>"
                   "</disk>")  # fmt: skip
    out = pyvirt("blockcopy", "ph", "vda", "--xml", str(xml), "--granularity", "65536",
                 "--buf-size", "1048576", "--finish").out  # fmt: skip
    assert out.strip() == "Successfully copied"
    assert read_host(raw, 512, 8, root) == b"MARKER-B"
    res = pyvirt("blockcopy", "ph", "vda", "--xml", str(xml), "--granularity", "1000",
                 check=False)  # fmt: skip
    assert res.rc == 1 and "power of two" in res.err
    # --timeout aborts a throttled copy and removes its partial target
    guest(pyvirt, "ph", "dd if=/dev/urandom of=/dev/vda bs=1M seek=2 count=4 2>/dev/null; sync")
    slow = root / "slow.qcow2"
    res = pyvirt("blockcopy", "ph", "vda", str(slow), "--timeout", "1", "--bytes",
                 "--bandwidth", "65536", check=False)  # fmt: skip
    assert res.rc == 1 and res.out.strip() == "Copy aborted" and not slow.exists()
    exists = pyvirt("blockcopy", "ph", "vda", str(done), check=False)
    assert exists.rc == 1 and "already exists" in exists.err


def test_daemon_runs_block_jobs_as_jobs(pyvirt: Pyvirt, tiny_image: Any) -> None:
    """Through pyvirtd: a throttled copy is the domain's job (domjobinfo); cancelling it
    aborts QEMU's job and removes the target; a commit job pivots."""
    from tests.daemonhelp import pyvirtd

    root = pyvirt.root
    base = make_image(root / "base.qcow2", "qcow2", 16 * MiB)
    top = make_image(root / "top.qcow2", "qcow2", 16 * MiB, backing=base)
    define(pyvirt, tiny_image, "dj", extra_devices=disk_dev(top))
    pyvirt("start", "dj")
    wait_marker(pyvirt, "dj")
    guest(pyvirt, "dj", "dd if=/dev/urandom of=/dev/vda bs=1M seek=2 count=4 2>/dev/null; sync")
    slow = root / "slow.qcow2"
    disk = "/api/v1/domains/dj/disks/vda"
    with pyvirtd(root) as d:
        r = d.request("POST", f"{disk}/copy", {"dest": str(slow), "bandwidth": 65536})
        assert r.status == 202, r.body
        job = r.json()["job"]
        assert job["kind"] == "block-copy" and job["object"] == "domain/dj"
        assert d.request("GET", "/api/v1/domains/dj/job").json()["job"]["id"] == job["id"]
        deadline = time.monotonic() + 20
        while not (d.request("GET", f"{disk}/blockjob").json()["job"] or {}).get("done"):
            assert time.monotonic() < deadline, "the copy did not start"
            time.sleep(0.1)
        assert slow.exists()
        assert d.request("DELETE", f"/api/v1/jobs/{job['id']}").status == 200
        done = d.request("GET", f"/api/v1/jobs/{job['id']}?wait=20").json()
        assert done["state"] == "cancelled", done
        assert not slow.exists() and d.request("GET", f"{disk}/blockjob").json() == {"job": None}
        r = d.request("POST", f"{disk}/commit", {"active": True, "delete": True})
        assert r.status == 202, r.body
        done = d.request("GET", f"/api/v1/jobs/{r.json()['job']['id']}?wait=30").json()
        assert done["state"] == "completed", done
        assert done["result"]["outcome"] == "pivoted" and done["result"]["source"] == str(base)
    assert not top.exists()
    assert f"<source file='{base}'/>" in pyvirt("dumpxml", "dj").out
