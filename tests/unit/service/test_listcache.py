"""``list_all`` keeps its shut-off rows while their directories are unchanged: whoever changes
a definition, an autostart marker or a run directory (another process's manager here), the
next listing shows it; a directory changed too recently is never trusted (no QEMU)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pyvirt.service.domain import listcache
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.paths import StatePaths
from tests.unit.service.test_definition_txn import U1, U2, xml

U3 = "cccccccc-2222-4333-8444-555555555555"


def settle() -> None:
    """Let the directories' timestamps age past the racy window."""
    time.sleep(listcache.RACY_NS / 1e9 + 0.02)


def rows(mgr: DomainManager, uuids: bool = False) -> list[tuple[str, str, str, bool]]:
    return [(s.name, s.uuid, s.state.value, s.autostart) for s in mgr.list_all(uuids=uuids)]


@pytest.fixture
def two(tmp_path: Path) -> tuple[DomainManager, DomainManager]:
    """The daemon's long-lived manager and another writer's (an embedded CLI)."""
    return DomainManager(StatePaths.from_root(tmp_path)), DomainManager(
        StatePaths.from_root(tmp_path)
    )


def test_cached_rows_are_used_and_follow_every_change(
    two: tuple[DomainManager, DomainManager], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, other = two
    other.define(xml("a", U1))
    other.define(xml("b", U2))
    settle()
    assert rows(daemon) == [("a", "", "shut off", False), ("b", "", "shut off", False)]
    calls: list[int] = []
    names = daemon.store.names
    monkeypatch.setattr(daemon.store, "names", lambda: calls.append(1) or names())
    assert rows(daemon) == [("a", "", "shut off", False), ("b", "", "shut off", False)]
    assert calls == []  # from the cache: no scan
    assert [r[1] for r in rows(daemon, uuids=True)] == [U1, U2]  # UUIDs: a listing of its own
    assert calls == [1]

    other.define(xml("c", U3))
    settle()
    assert [r[0] for r in rows(daemon)] == ["a", "b", "c"]
    other.set_autostart("a", True)
    settle()
    assert rows(daemon)[0] == ("a", "", "shut off", True)
    other.undefine("b")
    settle()
    assert [r[0] for r in rows(daemon)] == ["a", "c"]
    assert [r[1] for r in rows(daemon, uuids=True)] == [U1, U3]


def test_a_directory_changed_just_now_is_listed_afresh(
    two: tuple[DomainManager, DomainManager],
) -> None:
    daemon, other = two
    other.define(xml("a", U1))
    settle()
    assert [r[0] for r in rows(daemon)] == ["a"]
    other.define(xml("b", U2))  # no settling: within the racy window
    cache = daemon._defined_rows
    assert cache.key() is None
    assert [r[0] for r in rows(daemon)] == ["a", "b"]
    other.undefine("b")
    assert [r[0] for r in rows(daemon)] == ["a"]
