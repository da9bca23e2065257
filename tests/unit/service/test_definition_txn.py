"""Definitions that survive kills and races: the UUID index checked and repaired, renames
finished by the next command, revision checks on every read-modify-write (no QEMU)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyvirt.errors import AlreadyExistsError, InvalidStateError
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.domains import INDEX_STAMP, revision_of
from pyvirt.state.paths import StatePaths

U1 = "11111111-2222-4333-8444-555555555555"
U2 = "aaaaaaaa-2222-4333-8444-555555555555"


def xml(name: str, uuid: str, mem: int = 131072) -> str:
    return (
        f"<domain type='qemu'><name>{name}</name><uuid>{uuid}</uuid>"
        f"<memory unit='KiB'>{mem}</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )


@pytest.fixture
def mgr(tmp_path: Path) -> DomainManager:
    return DomainManager(StatePaths.from_root(tmp_path))


def test_define_writes_the_index_before_the_definition(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    assert mgr.store.name_for_uuid(U1) == "a"
    assert mgr.store.index_complete()
    assert mgr.resolve(U1) == "a"


def test_temporary_files_of_the_index_are_never_read_as_uuids(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    (mgr.paths.uuid_index_dir / f".{U2}.x1y2.tmp").write_text("a")
    assert mgr.store.uuids() == {"a": U1}
    assert [s.uuid for s in mgr.list_all()] == [U1]


def test_a_stale_index_does_not_let_a_second_domain_take_a_uuid(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    # a crash of an older pyvirt: the definition written, its index entry not
    (mgr.paths.uuid_index_dir / U1).unlink()
    (mgr.paths.uuid_index_dir / INDEX_STAMP).unlink()
    assert mgr.resolve(U1) == "a"  # found by a scan, entry repaired
    (mgr.paths.uuid_index_dir / U1).unlink()
    with pytest.raises(AlreadyExistsError, match="uuid"):
        mgr.define(xml("b", U1))
    assert mgr.store.index_complete()  # rebuilt under the namespace lock


def test_an_index_entry_naming_another_domain_is_not_believed(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    mgr.define(xml("b", U2))
    (mgr.paths.uuid_index_dir / U1).write_text("b")  # wrong
    assert mgr.store.name_for_uuid(U1) == "a"  # found by a scan, entry repaired
    assert (mgr.paths.uuid_index_dir / U1).read_text() == "a"
    assert mgr.store.name_for_uuid(U2) == "b"
    statuses = {s.name: s.uuid for s in mgr.list_all()}
    assert statuses == {"a": U1, "b": U2}


def test_rename_killed_midway_is_finished_by_the_next_command(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    mgr.set_autostart("a", True)
    # the state a rename killed after writing the new definition leaves
    new_xml = xml("b", U1)
    mgr.store.write_intent(
        {"op": "rename", "old": "a", "new": "b", "uuid": U1, "xml": new_xml, "autostart": True}
    )
    mgr.store.write("b", new_xml)
    rows = mgr.list_all()
    assert [(s.name, s.uuid, s.autostart) for s in rows] == [("b", U1, True)]
    assert not mgr.store.has_intent()
    assert mgr.resolve(U1) == "b"


def test_rename_intent_before_the_first_step_rolls_forward(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    mgr.store.write_intent(
        {"op": "rename", "old": "a", "new": "b", "uuid": U1, "xml": xml("b", U1)}
    )
    assert mgr.resolve("b") == "b"
    assert mgr.store.names() == ["b"]


def test_rename(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    mgr.rename("a", "c")
    assert mgr.store.names() == ["c"]
    assert mgr.resolve(U1) == "c"
    assert not mgr.store.has_intent()


def test_revision_changes_with_the_definition(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    rev = mgr.revision("a")
    assert rev == revision_of(mgr.paths.domain_xml("a").read_bytes())
    mgr.define(xml("a", U1, mem=262144), expect_revision=rev)
    assert mgr.revision("a") != rev


def test_define_with_a_stale_revision_is_refused(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    rev = mgr.revision("a")
    mgr.define(xml("a", U1, mem=262144))
    with pytest.raises(InvalidStateError, match="changed underneath this command; retry"):
        mgr.define(xml("a", U1, mem=524288), expect_revision=rev)
    assert "262144" in mgr.dumpxml("a")


def test_define_expecting_no_domain_is_refused_when_one_exists(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    with pytest.raises(InvalidStateError, match="changed underneath"):
        mgr.define(xml("a", U1), expect_revision=None)


def test_a_define_during_an_edit_makes_the_edit_fail(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    with pytest.raises(InvalidStateError, match="changed underneath"), mgr.locked("a"):
        dom, rev = mgr.read_config("a")
        # another writer that did not take the lock (an older pyvirt, a hand edit)
        mgr.store.write("a", xml("a", U1, mem=262144))
        dom.title = "lost"
        mgr.write_config("a", dom, rev)
    assert "262144" in mgr.dumpxml("a")


def test_edit_config_writes_back(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    rev = mgr.revision("a")
    with mgr.edit_config("a") as dom:
        dom.title = "edited"
    assert mgr.revision("a") != rev
    assert "edited" in mgr.dumpxml("a")


def test_define_waits_for_the_domain_lock(mgr: DomainManager) -> None:
    mgr.define(xml("a", U1))
    pid = os.fork()
    if pid == 0:  # holds the domain lock for a moment, like a --config editor
        try:
            with mgr.locked("a"):
                import time

                time.sleep(0.5)
        finally:
            os._exit(0)
    import time

    time.sleep(0.15)
    t0 = time.monotonic()
    mgr.define(xml("a", U1, mem=262144))
    assert time.monotonic() - t0 > 0.2
    os.waitpid(pid, 0)
