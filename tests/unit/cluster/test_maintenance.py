"""Maintenance mode's pure parts (issue 16): placement skips a host in maintenance, the
evacuation plan spreads domains by the memory left, and an evacuation with nowhere to go is
refused before anything is marked."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidStateError, NotFoundError
from pyvirt.service.cluster.domains import ClusterDomain
from pyvirt.service.cluster.maintenance import (
    Evacuated,
    EvacuationReport,
    check_room,
    plan,
    require_host,
)
from pyvirt.service.cluster.membership import HostStatus
from pyvirt.service.cluster.placement import place
from pyvirt.service.cluster.records import HostRecord, Liveness

GIB = 1024 * 1024


def host(name: str, free_gib: float, *, up: bool = True, maint: float = 0.0) -> HostStatus:
    record = HostRecord(name, name, "", 0.0, "1", "x86_64", "cpu", (), 4, 16 * GIB, 1)
    live = Liveness(1, 0.0, 1, free_kib=int(free_gib * GIB)) if up else None
    return HostStatus(record, "up" if up else "down", live, maint)


def dom(name: str, gib: float) -> ClusterDomain:
    return ClusterDomain(name, "u-" + name, "<domain/>", False, int(gib * GIB), 1, 0.0)


def test_placement_never_chooses_a_host_in_maintenance() -> None:
    p = place([host("a", 12, maint=1.0), host("b", 4)], GIB)
    assert p.host == "b"
    assert {c.host: c.why for c in p.candidates} == {"a": "maintenance", "b": ""}
    with pytest.raises(InvalidStateError, match="a: maintenance"):
        place([host("a", 12, maint=1.0)], GIB)


def test_the_plan_spreads_domains_by_the_memory_each_move_takes() -> None:
    hosts = [host("src", 1), host("b", 6), host("c", 5)]
    moves = plan(hosts, [dom("small", 1), dom("big", 4), dom("mid", 2)], "src")
    # largest first: big → b (6 GiB free, 2 left), mid → c (5 → 3), small → c (3 → 2)
    assert [(d.name, t, why) for d, t, why in moves] == [
        ("big", "b", ""),
        ("mid", "c", ""),
        ("small", "c", ""),
    ]


def test_a_domain_nothing_can_take_is_planned_as_failed_with_the_reason() -> None:
    moves = plan([host("src", 8), host("b", 2)], [dom("huge", 8), dom("ok", 1)], "src")
    got = {d.name: (t, why) for d, t, why in moves}
    assert got["ok"] == ("b", "")
    target, why = got["huge"]
    assert target == "" and "src: avoided" in why and "b: 2048 MiB free" in why


def test_nowhere_to_go_is_refused_naming_each_host() -> None:
    hosts = [host("a", 8), host("b", 8, up=False), host("c", 8, maint=5.0)]
    with pytest.raises(InvalidStateError, match=r"host 'a'.*\(w1\): b: down, c: maintenance"):
        check_room(hosts, "a", ["w1"])
    with pytest.raises(InvalidStateError, match="it is the only host"):
        check_room([host("a", 8)], "a", ["w1"])
    check_room([host("a", 8)], "a", [])  # nothing to move: maintenance alone is fine
    check_room([host("a", 8), host("b", 1)], "a", ["w1"])


def test_unknown_host() -> None:
    with pytest.raises(NotFoundError, match="no host named 'x'"):
        require_host([host("a", 1)], "x")
    assert require_host([host("a", 1)], "a").name == "a"


def test_report_json_round_trip_and_wording() -> None:
    report = EvacuationReport(
        "a",
        (
            Evacuated("w1", "moved", "b"),
            Evacuated("w2", "owner moved", "c"),
            Evacuated("w3", "failed", "b", "no room"),
        ),
    )
    assert EvacuationReport.from_json(report.to_json()) == report
    assert [d.describe() for d in report.domains] == [
        "moved to b",
        "owner moved to c",
        "failed: no room",
    ]
    assert [d.name for d in report.failed] == ["w3"]


def test_host_status_json_carries_maintenance() -> None:
    h = host("a", 4, maint=1234.5)
    data = h.to_json()
    assert data["maintenance"] is True and data["maintenance_since"] == 1234.5
    assert HostStatus.from_json(data).maintenance == 1234.5
    plain = host("b", 4).to_json()
    assert plain["maintenance"] is False and "maintenance_since" not in plain
    assert HostStatus.from_json(plain).maintenance == 0.0
