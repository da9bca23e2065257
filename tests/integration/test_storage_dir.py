"""dir pools through the real CLI: lifecycle, the default pool, thin/thick, bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import Pyvirt

MIB = 1 << 20


def test_default_pool_on_first_use(pyvirt: Pyvirt) -> None:
    pools = json.loads(pyvirt("pool-list", "--all", "--json").out)
    assert [(p["name"], p["state"], p["autostart"], p["type"]) for p in pools] == [
        ("default", "running", True, "dir")
    ]
    assert pools[0]["target"] == str(pyvirt.root / "lib" / "images")
    assert (pyvirt.root / "lib" / "images").is_dir()
    # undefining it is final: it is not recreated on the next call
    pyvirt("pool-destroy", "default")
    pyvirt("pool-undefine", "default")
    assert json.loads(pyvirt("pool-list", "--all", "--json").out) == []


def test_dir_pool_lifecycle(pyvirt: Pyvirt, tmp_path: Path) -> None:
    target = tmp_path / "p1"
    out = pyvirt("pool-define-as", "p1", "dir", "--target", str(target)).out
    assert "Pool p1 defined" in out
    assert "p1" in pyvirt("pool-list", "--inactive").out
    pyvirt("pool-build", "p1")
    assert target.is_dir()
    pyvirt("pool-start", "p1")
    assert pyvirt("pool-autostart", "p1").out.startswith("Pool p1 marked as autostarted")
    info = pyvirt("pool-info", "p1").out
    assert "State:" in info and "running" in info and "Autostart:  yes" in info
    details = pyvirt("pool-list", "--all", "--details").out
    assert "p1" in details and "Available" in details
    uuid = pyvirt("pool-uuid", "p1").out.strip()
    assert pyvirt("pool-name", uuid).out.strip() == "p1"
    assert f"<path>{target}</path>" in pyvirt("pool-dumpxml", "p1").out
    assert "<available unit=" in pyvirt("pool-dumpxml", "p1").out
    assert "<available" not in pyvirt("pool-dumpxml", "--inactive", "p1").out
    # a volume created behind pyvirt's back shows up
    (target / "outside.img").write_bytes(b"\0" * 4096)
    pyvirt("pool-refresh", "p1")
    vols = json.loads(pyvirt("vol-list", "p1", "--json").out)
    assert [v["name"] for v in vols] == ["outside.img"]
    # delete refuses a non-empty directory, destroy/undefine keep the data
    pyvirt("pool-destroy", "p1")
    bad = pyvirt("pool-delete", "p1", check=False)
    assert bad.rc == 1 and "not empty" in bad.err
    (target / "outside.img").unlink()
    pyvirt("pool-delete", "p1")
    assert not target.exists()
    pyvirt("pool-undefine", "p1")
    gone = pyvirt("pool-info", "p1", check=False)
    assert gone.rc == 1 and "storage pool 'p1' not found" in gone.err


def test_transient_pool_and_define_from_xml(pyvirt: Pyvirt, tmp_path: Path) -> None:
    xml = tmp_path / "t.xml"
    xml.write_text(
        f"<pool type='dir'><name>t</name><target><path>{tmp_path / 't'}</path>"
        "</target><extra/></pool>"
    )
    res = pyvirt("pool-create", str(xml), "--build")
    assert "Pool t created from" in res.out
    st = {p["name"]: p for p in json.loads(pyvirt("pool-list", "--json").out)}
    assert st["t"]["persistent"] is False
    pyvirt("pool-destroy", "t")
    assert "t" not in pyvirt("pool-list", "--all", "--name").out.split()
    res = pyvirt("pool-define", str(xml))
    assert "<extra>: not understood by pyvirt; kept as is" in res.err
    assert "<extra/>" in pyvirt("pool-dumpxml", "t").out


def test_seed_examples_define_as_written(pyvirt: Pyvirt) -> None:
    pyvirt(
        "pool-define-as", "nfs1", "--type", "netfs", "--source-host", "nfs.example.com",
        "--source-path", "/export/vms", "--target", "/var/lib/pyvirt/nfs1",
    )  # fmt: skip
    xml = pyvirt("pool-dumpxml", "nfs1").out
    assert "<host name='nfs.example.com'/>" in xml and "<dir path='/export/vms'/>" in xml
    assert "<path>/var/lib/pyvirt/nfs1</path>" in xml and "type='netfs'" in xml
    pyvirt(
        "pool-define-as", "iscsi1", "--type", "iscsi", "--source-host", "192.0.2.10",
        "--source-dev", "iqn.2024-01.com.example:storage", "--target", "/dev/disk/by-path",
    )  # fmt: skip
    xml = pyvirt("pool-dumpxml", "iscsi1").out
    assert "<device path='iqn.2024-01.com.example:storage'/>" in xml
    pyvirt("pool-define-as", "p2", "dir", "-", "-", "-", "-", "/tmp/pv-seed-p2")
    assert "<path>/tmp/pv-seed-p2</path>" in pyvirt("pool-dumpxml", "p2").out
    xml = pyvirt(
        "pool-define-as", "n2", "netfs", "--source-host", "h.example", "--source-path", "/e",
        "--target", "/mnt/n2", "--print-xml",
    ).out  # fmt: skip
    assert "<host name='h.example'/>" in xml and "<dir path='/e'/>" in xml


def test_thin_and_thick_allocation(pyvirt: Pyvirt) -> None:
    pyvirt("vol-create-as", "default", "thin.img", "256M", "--allocation", "0")
    pyvirt("vol-create-as", "default", "thick.img", "256M")
    pyvirt("vol-create-as", "default", "thin.qcow2", "256M", "--format", "qcow2")
    pyvirt(
        "vol-create-as", "default", "thick.qcow2", "256M", "--format", "qcow2",
        "--allocation", "256M",
    )  # fmt: skip
    pyvirt("vol-create-as", "default", "meta.qcow2", "256M", "--format", "qcow2",
           "--prealloc-metadata")  # fmt: skip
    images = pyvirt.root / "lib" / "images"
    used = {p.name: os.stat(p).st_blocks * 512 for p in images.iterdir()}
    assert used["thin.img"] == 0 and used["thick.img"] >= 256 * MIB
    assert used["thin.qcow2"] < MIB and used["thick.qcow2"] >= 256 * MIB
    assert MIB // 4 > 0 and used["meta.qcow2"] < 256 * MIB
    info = pyvirt("vol-info", "--pool", "default", "--bytes", "thin.img").out
    assert f"Capacity:   {256 * MIB}" in info and "Allocation: 0" in info
    vols = {v["name"]: v for v in json.loads(pyvirt("vol-list", "default", "--json").out)}
    assert vols["thick.img"]["allocation"] == used["thick.img"]
    assert vols["thick.qcow2"]["capacity"] == 256 * MIB


def test_bad_input_is_one_clear_error(pyvirt: Pyvirt, tmp_path: Path) -> None:
    def fails(*args: str, words: str) -> None:
        before = pyvirt.snapshot()
        files = sorted(os.listdir(pyvirt.root / "lib" / "images"))
        res = pyvirt(*args, check=False)
        assert res.rc == 1 and res.err.startswith("error: ") and words in res.err, res.err
        assert "Traceback" not in res.err
        assert pyvirt.snapshot() == before
        assert sorted(os.listdir(pyvirt.root / "lib" / "images")) == files

    pyvirt("pool-list")
    fails("vol-create-as", "default", "a/b", "1M", words="must not contain '/'")
    fails("vol-create-as", "default", "..", "1M", words="must not contain '/'")
    fails("vol-create-as", "default", "zero", "0", words="capacity must be greater than 0")
    fails("vol-create-as", "default", "big", "100P", words="is larger than pool 'default'")
    fails("vol-create-as", "default", "fat", "200G", words="free; volume 'fat' needs")
    fails("vol-create-as", "default", "f", "1M", "--format", "vmdk", words="'vmdk' is not supp")
    fails("vol-create-as", "default", "f", "1M", "--format", "nope", words="'nope' is not supp")
    fails("vol-create-as", "default", "f", "1X", words="unit 'X'")
    fails("vol-create-as", "nopool", "f", "1M", words="storage pool 'nopool' not found")
    fails("vol-delete", "nothere", "--pool", "default", words="'nothere' not found in pool")
    afile = tmp_path / "afile"
    afile.write_text("x")
    fails("pool-define-as", "pf", "dir", "--target", str(afile), words="is a file")
    fails(
        "pool-define-as", "dup", "dir", "--target", str(pyvirt.root / "lib" / "images"),
        words="pool 'default' already uses target path",
    )  # fmt: skip
    fails("pool-define-as", "x/y", "dir", "--target", "/tmp/xy", words="must not contain '/'")
    fails("pool-define-as", "fsx", "fs", "--target", "/tmp/fsx", words="needs <source><device")
    fails("pool-define-as", "zz", "zfsx", "--target", "/tmp/zz", words="type 'zfsx'")
    pyvirt("vol-create-as", "default", "v", "1M")
    fails("vol-create-as", "default", "v", "1M", words="already exists in pool 'default'")
    fails("pool-start", "default", words="already active")
