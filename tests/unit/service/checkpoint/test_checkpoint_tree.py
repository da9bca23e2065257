"""The checkpoint store and tree (no QEMU): atomic metadata files, parents, the bitmaps that
make up "changed since X", diskspecs, and the disk plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import AlreadyExistsError, InvalidConfigError, NotFoundError, UnsupportedError
from pyvirt.model.checkpoint import DomainCheckpoint
from pyvirt.model.domain import Domain
from pyvirt.service.checkpoint.bitmaps import build, plan
from pyvirt.service.checkpoint.store import CheckpointStore, CheckpointTree
from pyvirt.state.paths import StatePaths


def cp(name: str, parent: str | None, t: int) -> DomainCheckpoint:
    out = DomainCheckpoint(name=name, creation_time=t)
    if parent:
        out.parent = parent
    out.add_disk(name="vda", checkpoint="bitmap", bitmap=name)
    return out


def tree_of(*cps: DomainCheckpoint) -> CheckpointTree:
    return CheckpointTree({str(c.name): c for c in cps})


def test_chain_since_and_newest() -> None:
    tree = tree_of(cp("c1", None, 1), cp("c2", "c1", 2), cp("c3", "c2", 3))
    assert tree.newest() == "c3"
    assert tree.since("c1") == ["c1", "c2", "c3"]
    assert tree.since("c3") == ["c3"]
    assert tree.ordered() == ["c1", "c2", "c3"]
    assert (tree.roots(), tree.leaves()) == (["c1"], ["c3"])
    assert tree.descendants("c1") == ["c2", "c3"]
    info = tree.info("vm", "c2")
    assert (info.parent, info.children, info.descendants, info.disks) == (
        "c1", 1, 1, {"vda": "c2"},
    )  # fmt: skip


def test_branches_and_orphans() -> None:
    tree = tree_of(cp("a", None, 1), cp("b", "a", 2), cp("c", "a", 3), cp("d", "gone", 4))
    assert tree.roots() == ["a", "d"]  # a lost parent makes a root
    assert tree.children("a") == ["b", "c"]
    assert tree.since("b") == ["b"]  # not on the way to the newest: its own bitmap only
    assert tree.leaves() == ["b", "c", "d"]


def test_store_is_atomic_and_refuses_duplicates(tmp_path: Path) -> None:
    store = CheckpointStore(StatePaths.from_root(tmp_path), "vm")
    assert store.names() == []
    store.write(cp("c1", None, 1), new=True)
    with pytest.raises(AlreadyExistsError):
        store.write(cp("c1", None, 1), new=True)
    assert store.read("c1").bitmaps() == {"vda": "c1"}
    assert [p.name for p in store.dir.iterdir()] == ["c1.xml"]  # no temporary left
    with pytest.raises(NotFoundError, match="has no checkpoint 'nope'"):
        store.read("nope")
    with pytest.raises(NotFoundError):
        store.path("../x")
    store.remove("c1")
    assert not store.exists("c1")
    store.write(cp("c2", None, 2))
    store.drop_all()
    assert not store.dir.exists()


def test_diskspecs() -> None:
    made = build("c1", "desc", ["vda", "vdb,checkpoint=no", "vdc,bitmap=b,,x"])
    assert made.bitmaps() == {"vda": "c1", "vdc": "b,x"}
    assert made.description == "desc"
    for bad in ("checkpoint=no", "vda,checkpoint=internal", "vda,size=1"):
        with pytest.raises(InvalidConfigError):
            build("c", None, [bad])


DOMAIN = """<domain type='kvm'><name>vm</name><memory>131072</memory><devices>
<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/i/a.qcow2'/>
<target dev='vda' bus='virtio'/></disk>
<disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/i/b.img'/>
<target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='cdrom'><source file='/i/c.iso'/><target dev='sda' bus='sata'/></disk>
</devices></domain>"""


def test_plan_needs_qcow2() -> None:
    dom = Domain.from_xml(DOMAIN)
    with pytest.raises(UnsupportedError, match="disk 'vdb' is raw") as err:
        plan(dom, DomainCheckpoint(name="c"))
    assert "--diskspec vdb,checkpoint=no" in (err.value.hint or "")
    made = build("c", None, ["vdb,checkpoint=no"])
    assert [i.target for i in plan(dom, made)] == ["vda"]
    assert made.bitmaps() == {"vda": "c"}
    assert [(d.name, d.checkpoint) for d in made.disks] == [("vda", "bitmap"), ("vdb", "no")]
    with pytest.raises(InvalidConfigError, match="no writable disk 'vdz'"):
        plan(dom, build("c", None, ["vdz"]))
