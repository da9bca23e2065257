"""Snapshot commands through the real CLI without QEMU: recorded (``--redefine``) snapshots
listed as virsh lists them, the tree, current/parent, ``--print-xml``, option rules and
deleting metadata only."""

from __future__ import annotations

import json

from tests.conftest import Pyvirt

GOOD = """<domain type='qemu'><name>vm</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"""


def redefine(pv: Pyvirt, name: str, parent: str | None, t: int, *extra: str) -> None:
    parent_xml = f"<parent><name>{parent}</name></parent>" if parent else ""
    xml = (
        f"<domainsnapshot><name>{name}</name><state>shutoff</state>{parent_xml}"
        f"<creationTime>{t}</creationTime><memory snapshot='no'/>"
        f"<disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>"
    )
    path = pv.root / f"{name}.xml"
    path.write_text(xml)
    out = pv("snapshot-create", "vm", str(path), "--redefine", *extra).out
    assert out == f"Domain snapshot {name} created from '{path}'\n"


def test_redefined_snapshots_list_tree_and_delete(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "vm.xml").write_text(GOOD)
    pyvirt("define", str(pyvirt.root / "vm.xml"))
    redefine(pyvirt, "a", None, 1000)
    redefine(pyvirt, "b", "a", 2000)
    redefine(pyvirt, "c", "b", 3000)
    redefine(pyvirt, "d", "a", 4000, "--current")

    listing = pyvirt("snapshot-list", "vm", "--parent").out.splitlines()
    assert listing[0].split() == ["Name", "Creation", "Time", "State", "Parent"]
    assert listing[1].startswith("-----")
    assert [line.split()[0] for line in listing[2:-1]] == ["a", "b", "c", "d"]
    assert listing[3].split()[-1] == "a" and listing[-1] == ""
    tree = pyvirt("snapshot-list", "vm", "--tree").out
    assert tree == "a\n  |\n  +- b\n  |   |\n  |   +- c\n  |\n  +- d\n\n"
    assert pyvirt("snapshot-list", "vm", "--leaves", "--name").out == "c\nd\n\n"
    assert pyvirt("snapshot-list", "vm", "--roots", "--name").out == "a\n\n"
    assert pyvirt("snapshot-list", "vm", "--from", "b", "--name").out == "c\n\n"
    data = json.loads(pyvirt("snapshot-list", "vm", "--json").out)
    assert [(s["name"], s["parent"], s["current"]) for s in data] == [
        ("a", None, False), ("b", "a", False), ("c", "b", False), ("d", "a", True),
    ]  # fmt: skip

    assert pyvirt("snapshot-current", "vm", "--name").out == "d\n"
    assert pyvirt("snapshot-current", "vm", "b").out == "Snapshot b set as current\n"
    assert pyvirt("snapshot-parent", "vm", "--current").out == "a\n"
    info = pyvirt("snapshot-info", "vm", "a").out
    assert "Name:           a\n" in info and "Children:       2\n" in info
    assert "Descendants:    3\n" in info and "Current:        no\n" in info
    assert "<name>c</name>" in pyvirt("snapshot-dumpxml", "vm", "c").out

    res = pyvirt("snapshot-parent", "vm", "a", check=False)
    assert res.rc == 1 and "snapshot 'a' has no parent" in res.err
    res = pyvirt("snapshot-info", "vm", "zz", check=False)
    assert res.rc == 1 and "has no snapshot 'zz'" in res.err
    res = pyvirt("snapshot-delete", "vm", "a", "--children", "--children-only", check=False)
    assert res.rc == 1 and "exclude each other" in res.err
    res = pyvirt("undefine", "vm", check=False)
    assert res.rc == 1 and "has 4 snapshots" in res.err

    # deleting b (metadata only) re-parents c to a; --children-only takes the rest
    assert pyvirt("snapshot-delete", "vm", "b", "--metadata").out == "Domain snapshot b deleted\n"
    assert pyvirt("snapshot-parent", "vm", "c").out == "a\n"
    assert pyvirt("snapshot-current", "vm", "--name").out == "a\n"
    out = pyvirt("snapshot-delete", "vm", "a", "--children-only", "--metadata").out
    assert out == "Domain snapshot a children deleted\n"
    assert pyvirt("snapshot-list", "vm", "--name").out == "a\n\n"
    pyvirt("undefine", "vm", "--snapshots-metadata")
    assert not (pyvirt.root / "lib" / "qemu" / "snapshot" / "vm").exists()


def test_print_xml_and_refusals(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "vm.xml").write_text(GOOD)
    pyvirt("define", str(pyvirt.root / "vm.xml"))
    out = pyvirt("snapshot-create-as", "vm", "s1", "hello", "--disk-only", "--diskspec",
                 "vda,snapshot=external,file=/tmp/o.qcow2", "--print-xml").out  # fmt: skip
    assert "<name>s1</name>" in out and "<description>hello</description>" in out
    assert "<memory snapshot='no'/>" in out and "file='/tmp/o.qcow2'" in out
    res = pyvirt("snapshot-create-as", "vm", "s1", check=False)
    assert res.rc == 1 and "has no disk to snapshot" in res.err
    res = pyvirt("snapshot-create-as", "vm", "s1", "--quiesce", check=False)
    assert res.rc == 1 and "--quiesce needs --disk-only" in res.err
    res = pyvirt("snapshot-current", "vm", check=False)
    assert res.rc == 1 and "has no current snapshot" in res.err
    res = pyvirt("snapshot-revert", "vm", "--running", "--paused", check=False)
    assert res.rc == 1 and "exclude each other" in res.err
    assert pyvirt("snapshot-list", "vm").out.splitlines()[0].split() == [
        "Name", "Creation", "Time", "State",
    ]  # fmt: skip


def test_edit_rename_external_snapshot(pyvirt: Pyvirt) -> None:
    (pyvirt.root / "vm.xml").write_text(GOOD)
    pyvirt("define", str(pyvirt.root / "vm.xml"))
    for name, parent, t in (("x", None, 1000), ("y", "x", 2000)):
        parent_xml = f"<parent><name>{parent}</name></parent>" if parent else ""
        path = pyvirt.root / f"{name}.xml"
        path.write_text(
            f"<domainsnapshot><name>{name}</name><state>disk-snapshot</state>{parent_xml}"
            f"<creationTime>{t}</creationTime><memory snapshot='no'/><disks>"
            f"<disk name='vda' snapshot='external'><source file='/srv/{name}.qcow2'/></disk>"
            "</disks></domainsnapshot>"
        )
        pyvirt("snapshot-create", "vm", str(path), "--redefine", "--current")
    redefine(pyvirt, "i", "y", 3000)  # an internal one
    pyvirt("snapshot-current", "vm", "x")
    pyvirt.env["EDITOR"] = "sed -i -e s,<name>x<,<name>z<,"
    res = pyvirt("snapshot-edit", "vm", "x", check=False)
    assert res.rc == 1 and "must not rename 'x' to 'z'" in res.err
    out = pyvirt("snapshot-edit", "vm", "x", "--rename").out
    assert out == "Snapshot 'z' XML configuration edited.\n\n"
    assert pyvirt("snapshot-list", "vm", "--tree").out == "z\n  |\n  +- y\n      |\n      +- i\n\n"
    assert pyvirt("snapshot-current", "vm", "--name").out == "z\n"
    pyvirt.env["EDITOR"] = "sed -i -e s,<name>i<,<name>j<,"
    res = pyvirt("snapshot-edit", "vm", "i", "--rename", check=False)
    assert res.rc == 1 and "snapshot 'i' is internal" in res.err
    res = pyvirt("snapshot-edit", "vm", "y", "--clone", check=False)
    assert res.rc == 1 and "--clone is not supported" in res.err
    assert pyvirt("snapshot-list", "vm", "--name").out == "z\ny\ni\n\n"
