"""Placement (issue 16): the up host with room, least loaded; every refusal says why."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidStateError
from pyvirt.service.cluster.membership import HostStatus
from pyvirt.service.cluster.placement import RESERVE_KIB, place
from pyvirt.service.cluster.records import HostRecord, Liveness

GIB = 1024 * 1024


def host(name: str, free_gib: float, load: float = 0.0, *, up: bool = True) -> HostStatus:
    record = HostRecord(name, name, "", 0.0, "1", "x86_64", "cpu", (), 4, 16 * GIB, 1)
    live = Liveness(1, 0.0, 1, free_kib=int(free_gib * GIB), load=load) if up else None
    return HostStatus(record, "up" if up else "down", live)


def test_the_host_left_with_most_room_wins() -> None:
    p = place([host("a", 4), host("b", 8), host("c", 6)], 2 * GIB)
    assert p.host == "b"
    assert [c.host for c in p.candidates] == ["a", "b", "c"]


def test_load_per_cpu_counts_against_free_memory() -> None:
    # b has more memory free but its 4 CPUs run at load 4: a wins
    assert place([host("a", 6, 0.2), host("b", 8, 4.0)], GIB).host == "a"


def test_down_full_and_avoided_hosts_are_skipped_with_reasons() -> None:
    hosts = [host("a", 0.5), host("b", 8, up=False), host("c", 8), host("d", 4)]
    p = place(hosts, GIB, avoid=["c"])
    assert p.host == "d"
    why = {c.host: c.why for c in p.candidates}
    assert why == {"a": "512 MiB free", "b": "down", "c": "avoided", "d": ""}


def test_the_reserve_is_kept() -> None:
    need = 4 * GIB - RESERVE_KIB
    assert place([host("a", 4)], need).host == "a"
    with pytest.raises(InvalidStateError, match=r"take 3840 MiB \(a: 4096 MiB free\)"):
        place([host("a", 4)], need + 1)


def test_a_preferred_host_wins_when_it_fits() -> None:
    assert place([host("a", 4), host("b", 8)], GIB, prefer="a").host == "a"
    assert place([host("a", 0.1), host("b", 8)], GIB, prefer="a").host == "b"


def test_no_hosts_at_all() -> None:
    with pytest.raises(InvalidStateError, match="no hosts"):
        place([], GIB)
