"""Checkpoint commands through the real CLI on a shut-off domain (``qemu-img bitmap``, no
QEMU): create, list, tree, info, parent, dumpxml, delete merging bitmaps, option rules, and
backup verbs refused on a shut-off domain."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Pyvirt

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="no qemu-img")


def domain(pv: Pyvirt, *disks: tuple[str, str]) -> None:
    devs = "".join(
        f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
        f"<source file='{pv.root / name}'/><target dev='vd{chr(97 + i)}' bus='virtio'/></disk>"
        for i, (name, fmt) in enumerate(disks)
    )
    for name, fmt in disks:
        subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(pv.root / name), "1M"],
                       check=True)  # fmt: skip
    (pv.root / "vm.xml").write_text(
        f"<domain type='qemu'><name>vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        f"<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>{devs}</devices></domain>"
    )
    pv("define", str(pv.root / "vm.xml"))


def bitmaps(image: Path) -> dict[str, list[str]]:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(image)],
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    data = json.loads(out)["format-specific"]["data"].get("bitmaps", [])
    return {b["name"]: b["flags"] for b in data}


def test_shutoff_checkpoints(pyvirt: Pyvirt) -> None:
    domain(pyvirt, ("a.qcow2", "qcow2"), ("b.img", "raw"))
    res = pyvirt("checkpoint-create-as", "vm", "c1", check=False)
    assert res.rc == 1 and "disk 'vdb' is raw" in res.err
    assert "--diskspec vdb,checkpoint=no" in res.err
    spec = ("--diskspec", "vdb,checkpoint=no")
    xml = pyvirt("checkpoint-create-as", "vm", "c1", "first", *spec, "--print-xml").out
    assert "<disk name='vdb' checkpoint='no'/>" in xml and "<description>first" in xml
    for name in ("c1", "c2", "c3"):
        out = pyvirt("checkpoint-create-as", "vm", name, *spec).out
        assert out == f"Domain checkpoint {name} created\n"
    image = pyvirt.root / "a.qcow2"
    assert bitmaps(image) == {"c1": [], "c2": [], "c3": ["auto"]}  # only the newest records

    assert pyvirt("checkpoint-list", "vm", "--name").out == "c1\nc2\nc3\n\n"
    assert pyvirt("checkpoint-list", "vm", "--tree").out == (
        "c1\n  |\n  +- c2\n      |\n      +- c3\n\n"
    )
    listing = pyvirt("checkpoint-list", "vm", "--parent").out.splitlines()
    assert listing[0].split() == ["Name", "Creation", "Time", "Parent"]
    assert listing[4].split()[-1] == "c2"
    assert pyvirt("checkpoint-list", "vm", "--from", "c1", "--name").out == "c2\n\n"
    data = json.loads(pyvirt("checkpoint-list", "vm", "--json").out)
    assert [(c["name"], c["parent"], c["disks"]) for c in data] == [
        ("c1", None, {"vda": "c1"}), ("c2", "c1", {"vda": "c2"}), ("c3", "c2", {"vda": "c3"}),
    ]  # fmt: skip
    info = pyvirt("checkpoint-info", "vm", "c2").out
    assert info == (
        "Name:           c2\nDomain:         vm\nParent:         c1\n"
        "Children:       1\nDescendants:    1\n"
    )
    assert pyvirt("checkpoint-parent", "vm", "c3").out == "c2\n"
    pyvirt.env["EDITOR"] = "sed -i -e s,</name>,</name><description>edited</description>,"
    assert pyvirt("checkpoint-edit", "vm", "c2").out == (
        "Checkpoint 'c2' XML configuration edited.\n\n"
    )
    assert "<description>edited</description>" in pyvirt("checkpoint-dumpxml", "vm", "c2").out
    pyvirt.env["EDITOR"] = "sed -i -e s,<name>c2<,<name>c9<,"
    res = pyvirt("checkpoint-edit", "vm", "c2", check=False)
    assert res.rc == 1 and "must not rename 'c2' to 'c9'" in res.err
    del pyvirt.env["EDITOR"]
    assert pyvirt("checkpoint-list", "vm", "--name").out == "c1\nc2\nc3\n\n"
    dump = pyvirt("checkpoint-dumpxml", "vm", "c2").out
    assert "<parent>" in dump and "<domain" in dump.replace("<domaincheckpoint", "")
    res = pyvirt("checkpoint-dumpxml", "vm", "c2", "--size", check=False)
    assert res.rc == 1 and "not running" in res.err
    res = pyvirt("backup-begin", "vm", check=False)
    assert res.rc == 1 and "domain 'vm' is not running" in res.err
    res = pyvirt("checkpoint-delete", "vm", "c1", "--children", "--children-only", check=False)
    assert res.rc == 1 and "exclude each other" in res.err

    # the newest goes: merged into c2, which records again; a middle one: merged into c1
    assert pyvirt("checkpoint-delete", "vm", "c3").out == "Domain checkpoint c3 deleted\n"
    assert bitmaps(image) == {"c1": [], "c2": ["auto"]}
    pyvirt("checkpoint-create-as", "vm", "c4", *spec)
    assert pyvirt("checkpoint-delete", "vm", "c2").out == "Domain checkpoint c2 deleted\n"
    assert bitmaps(image) == {"c1": [], "c4": ["auto"]}
    assert pyvirt("checkpoint-parent", "vm", "c4").out == "c1\n"
    res = pyvirt("undefine", "vm", check=False)
    assert res.rc == 1 and "has 2 checkpoints" in res.err and "--checkpoints-metadata" in res.err

    # --metadata keeps the bitmaps; --children-only deletes the rest below c1
    out = pyvirt("checkpoint-delete", "vm", "c1", "--children-only", "--metadata").out
    assert out == "Domain checkpoint c1 children deleted\n"
    assert bitmaps(image) == {"c1": [], "c4": ["auto"]}
    assert pyvirt("checkpoint-list", "vm", "--name").out == "c1\n\n"
    out = pyvirt("undefine", "vm", "--checkpoints-metadata").out
    assert "Domain 'vm' has been undefined" in out
    assert not (pyvirt.root / "lib" / "qemu" / "checkpoint" / "vm").exists()
