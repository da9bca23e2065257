"""Snapshot rules without QEMU: the tree, the metadata store, ``--diskspec``/``--memspec``
parsing and which disks a snapshot takes how."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import AlreadyExistsError, InvalidConfigError, NotFoundError, UnsupportedError
from pyvirt.model.domain import Domain
from pyvirt.model.snapshot import DomainSnapshot
from pyvirt.service.snapshot import spec
from pyvirt.service.snapshot.create import plan
from pyvirt.service.snapshot.disks import base_of, default_overlay, known_files, needed_files
from pyvirt.service.snapshot.store import SnapshotStore, SnapshotTree, location
from pyvirt.state.paths import StatePaths


def snap(name: str, parent: str | None = None, t: int = 0, **kw: object) -> DomainSnapshot:
    s = DomainSnapshot(name=name, creation_time=t, state="shutoff")
    if parent:
        s.parent = parent
    for key, value in kw.items():
        setattr(s, key, value)
    return s


def domain(*disks: str) -> Domain:
    return Domain.from_xml(
        "<domain type='qemu'><name>vm</name><memory>65536</memory><devices>"
        + "".join(disks)
        + "</devices></domain>"
    )


def disk(target: str, path: str, fmt: str = "qcow2", extra: str = "") -> str:
    return (
        f"<disk type='file' device='disk'><driver name='qemu' type='{fmt}'/>"
        f"<source file='{path}'/><target dev='{target}' bus='virtio'/>{extra}</disk>"
    )


def test_tree_orders_roots_children_and_leaves() -> None:
    snaps = {
        "a": snap("a", t=1),
        "b": snap("b", "a", t=2),
        "c": snap("c", "b", t=3),
        "d": snap("d", "a", t=4),
        "lost": snap("lost", "gone", t=5),  # a parent that no longer exists: a root
    }
    tree = SnapshotTree(snaps)
    assert tree.roots() == ["a", "lost"]
    assert tree.children("a") == ["b", "d"]
    assert tree.descendants("a") == ["b", "c", "d"]
    assert tree.ordered() == ["a", "b", "c", "d", "lost"]
    assert tree.leaves() == ["c", "d", "lost"]
    info = tree.info("vm", "a", current="c")
    assert (info.children, info.descendants, info.current, info.parent) == (2, 3, False, None)
    assert tree.info("vm", "c", current="c").to_json()["current"] is True


def test_store_writes_atomically_and_tracks_current(tmp_path: Path) -> None:
    store = SnapshotStore(StatePaths.from_root(tmp_path), "vm")
    assert store.names() == [] and store.current() is None
    store.write(snap("a"), new=True)
    with pytest.raises(AlreadyExistsError):
        store.write(snap("a"), new=True)
    store.set_current("a")
    assert store.current() == "a" and store.read("a").name == "a"
    assert store.path("a") == tmp_path / "lib" / "qemu" / "snapshot" / "vm" / "a.xml"
    assert not list(store.dir.glob("*.tmp"))
    store.remove("a")
    assert store.current() is None
    with pytest.raises(NotFoundError, match="has no snapshot 'a'"):
        store.read("a")
    for bad in ("../../qemu/vm", ".current", ""):
        assert not store.exists(bad)
        with pytest.raises(NotFoundError):
            store.read(bad)
    store.write(snap("b"))
    store.drop_all()
    assert not store.dir.exists()


def test_store_set_current_skips_an_unchanged_pointer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    store = SnapshotStore(StatePaths.from_root(tmp_path), "vm")
    store.write(snap("a"))
    store.write(snap("b"))
    syncs: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real(fd))[1])
    store.set_current("a")  # the pointer is a symlink: one fsync, of the directory
    store.set_current("a")  # a revert to the current snapshot: nothing to write
    assert store.current() == "a" and len(syncs) == 1
    store.set_current("b")
    assert store.current() == "b" and len(syncs) == 2


def test_store_write_current_is_one_durable_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    store = SnapshotStore(StatePaths.from_root(tmp_path), "vm")
    store.write(snap("a"))
    store.set_current("a")
    syncs: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append(fd), real(fd))[1])
    store.write_current(snap("b", parent="a"))
    assert len(syncs) == 2  # the record's file, then the directory (record and pointer)
    assert store.current() == "b" and store.read("b").parent == "a"
    assert sorted(store.names()) == ["a", "b"]
    assert not [p for p in store.dir.iterdir() if p.name.endswith(".tmp")]


def test_store_reads_a_pointer_file(tmp_path: Path) -> None:
    """A ``.current`` written as a file (before it was a symlink) still names the current
    snapshot, and the next change replaces it by a symlink."""
    store = SnapshotStore(StatePaths.from_root(tmp_path), "vm")
    store.write(snap("a"))
    store.write(snap("b"))
    (store.dir / ".current").write_text("a\n")
    assert store.current() == "a"
    store.set_current("b")
    assert store.current() == "b" and (store.dir / ".current").is_symlink()
    store.remove("b")
    assert store.current() is None and not (store.dir / ".current").exists()


def test_diskspec_and_memspec_build_libvirt_xml() -> None:
    built = spec.build(
        "s1", "desc", diskspecs=["vda,snapshot=external,file=/x/a,,b.qcow2", "vdb,snapshot=no"],
        disk_only=True,
    )  # fmt: skip
    assert built.memory == "no" and built.description == "desc"
    vda = built.disk("vda")
    assert vda is not None and (vda.snapshot, vda.source_file) == ("external", "/x/a,b.qcow2")
    assert built.disk("vdb") is not None and built.disk("vdb").snapshot == "no"  # type: ignore[union-attr]
    file_only = spec.build(None, None, diskspecs=["vda,file=/o"])
    assert file_only.disk("vda").snapshot == "external"  # type: ignore[union-attr]
    mem = spec.build("m", None, memspec="file=/m.save,snapshot=external")
    assert (mem.memory, mem.memory_file) == ("external", "/m.save")
    assert spec.build("m", None, memspec="snapshot=no").memory == "no"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"diskspecs": ["snapshot=external"]}, "must start with the disk's name"),
        ({"diskspecs": ["vda,colour=red"]}, "unknown key 'colour'"),
        ({"diskspecs": ["vda,snapshot=maybe"]}, "is not one of"),
        ({"memspec": "foo=bar"}, "unknown key 'foo'"),
    ],
)
def test_bad_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        spec.build("s", None, **kwargs)  # type: ignore[arg-type]


def test_plan_running_internal_with_memory_skips_readonly_and_cdroms() -> None:
    dom = domain(
        disk("vda", "/img/a.qcow2"),
        disk("vdb", "/img/ro.raw", "raw", "<readonly/>"),
        "<disk type='file' device='cdrom'><source file='/x.iso'/><target dev='hdc'/></disk>",
    )
    s = DomainSnapshot(name="s1")
    plans = plan(dom, s, running=True, disk_only=False)
    assert [(p.target, p.location) for p in plans] == [("vda", "internal")]
    assert s.memory == "internal" and location(s) == "internal"
    assert s.disk("vda").source_file == "/img/a.qcow2"  # type: ignore[union-attr]


def test_plan_external_default_overlay_and_shutoff_memory() -> None:
    dom = domain(disk("vda", "/img/a.qcow2"), disk("vdb", "/img/b.raw", "raw"))
    s = DomainSnapshot(name="s1")
    plans = plan(dom, s, running=False, disk_only=True)
    assert [(p.target, p.overlay) for p in plans] == [("vda", "/img/a.s1"), ("vdb", "/img/b.s1")]
    assert s.memory == "no" and location(s) == "external"


@pytest.mark.parametrize(
    ("running", "disk_only", "diskspecs", "memspec", "error", "message"),
    [
        (True, False, [], None, UnsupportedError, "raw; internal snapshots need qcow2"),
        (False, False, ["vdz,snapshot=internal"], None, InvalidConfigError, "no writable disk"),
        (False, False, ["vdb,snapshot=no"], "file=/m", InvalidConfigError,
         "external memory state needs a running guest"),
        (True, True, ["vdb,snapshot=no"], "file=/m", InvalidConfigError, "no --disk-only"),
        (True, False, ["vdb,snapshot=no"], "file=m", InvalidConfigError, "absolute path"),
        (True, False, ["vdb,snapshot=no"], "file=/a/../m", InvalidConfigError, "without '..'"),
        (True, False, ["vdb,snapshot=no"], "file=/no/such/dir/m", InvalidConfigError,
         "does not exist"),
        (True, False, ["vda,snapshot=internal", "vdb,snapshot=no"], "file=/m", UnsupportedError,
         "cannot go with an external memory state"),
        (True, True, ["vda,snapshot=internal", "vdb,snapshot=no"], None, UnsupportedError,
         "disk-only snapshot of a running guest is external"),
        (False, False, ["vda,snapshot=internal", "vdb,snapshot=external"], None,
         UnsupportedError, "cannot mix internal and external"),
        (True, False, ["vda,snapshot=external", "vdb,snapshot=no"], None, UnsupportedError,
         "cannot go with an internal memory state"),
        (False, False, ["vda,snapshot=no", "vdb,snapshot=no"], None, InvalidConfigError,
         "no disk to snapshot"),
    ],
)  # fmt: skip
def test_plan_refusals(
    running: bool,
    disk_only: bool,
    diskspecs: list[str],
    memspec: str | None,
    error: type[Exception],
    message: str,
) -> None:
    dom = domain(disk("vda", "/img/a.qcow2"), disk("vdb", "/img/b.raw", "raw"))
    s = spec.build("s", None, diskspecs=diskspecs, memspec=memspec, disk_only=disk_only)
    with pytest.raises(error, match=message):
        plan(dom, s, running=running, disk_only=disk_only)


def test_plan_external_memory_takes_every_disk_external(tmp_path: Path) -> None:
    dom = domain(disk("vda", str(tmp_path / "a.qcow2")), disk("vdb", "/img/b.raw", "raw"))
    s = spec.build("s1", None, memspec=f"file={tmp_path}/s1.mem")
    plans = plan(dom, s, running=True, disk_only=False)
    assert [(p.target, p.location) for p in plans] == [("vda", "external"), ("vdb", "external")]
    assert (s.memory, s.memory_file) == ("external", f"{tmp_path}/s1.mem")
    (tmp_path / "s1.mem").write_bytes(b"")
    with pytest.raises(InvalidConfigError, match="exists already"):
        plan(dom, spec.build("s2", None, memspec=f"file={tmp_path}/s1.mem"), running=True,
             disk_only=False)  # fmt: skip


def test_plan_refuses_an_existing_overlay(tmp_path: Path) -> None:
    (tmp_path / "a.s1").write_bytes(b"")
    dom = domain(disk("vda", str(tmp_path / "a.qcow2")))
    with pytest.raises(InvalidConfigError, match="exists already"):
        plan(dom, DomainSnapshot(name="s1"), running=False, disk_only=True)


def test_default_overlay_names() -> None:
    assert default_overlay("/img/vm.qcow2", "s1") == "/img/vm.s1"
    assert default_overlay("/img/vm", "s1") == "/img/vm.s1"
    assert default_overlay("/img.d/vm", "s1") == "/img.d/vm.s1"


def test_needed_and_known_files_follow_the_chain() -> None:
    ext = snap("x", disks=[])
    ext.add_disk(name="vda", snapshot="external", source_file="/img/a.x")
    ext.domain_xml = domain(disk("vda", "/img/a.qcow2")).to_xml()
    internal = snap("i")
    internal.add_disk(name="vda", snapshot="internal", source_file="/img/a.x")
    snaps = {"x": ext, "i": internal}
    assert base_of(ext, "vda") == ("/img/a.qcow2", "qcow2")
    assert needed_files(snaps) == {"/img/a.qcow2", "/img/a.x"}
    assert needed_files(snaps, but="i") == {"/img/a.qcow2"}
    assert known_files(snaps) == {"/img/a.qcow2", "/img/a.x"}
    with pytest.raises(InvalidConfigError, match="has no <domain>"):
        base_of(snap("bare"), "vda")
