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


def grouped(name: str, gib: float, *, aff: str = "", anti: str = "", soft: bool = False
            ) -> ClusterDomain:  # fmt: skip
    return ClusterDomain(name, "u-" + name, "<domain/>", False, int(gib * GIB), 1, 0.0,
                         affinity=aff, anti_affinity=anti, soft=soft)  # fmt: skip


def test_the_plan_keeps_hard_anti_affinity_and_refuses_naming_the_rule() -> None:
    hosts = [host("src", 8), host("b", 8), host("c", 4)]
    groups = {"w1": ("", "web"), "w2": ("", "web"), "w3": ("", "web")}
    # w1 on src; w2 on b (the roomiest host): w1 must go to c
    moves = plan(hosts, [grouped("w1", 1, anti="web")], "src", groups=groups,
                 owners={"w1": "src", "w2": "b"})  # fmt: skip
    assert [(d.name, t) for d, t, _ in moves] == [("w1", "c")]
    # w3 on c too: no host satisfies the rule; refused, the rule and the member named
    moves = plan(hosts, [grouped("w1", 1, anti="web")], "src", groups=groups,
                 owners={"w1": "src", "w2": "b", "w3": "c"})  # fmt: skip
    [(_, target, why)] = moves
    assert target == ""
    assert "b: anti-affinity group 'web': w2 there" in why, why
    assert "c: anti-affinity group 'web': w3 there" in why, why


def test_two_anti_affine_domains_evacuated_together_go_apart() -> None:
    hosts = [host("src", 8), host("b", 8), host("c", 6)]
    groups = {"w1": ("", "web"), "w2": ("", "web")}
    # (a hard rule never lets them share src; a soft one may, and the plan parts them)
    for soft in (False, True):
        doms = [grouped("w1", 1, anti="web", soft=soft), grouped("w2", 1, anti="web", soft=soft)]
        moves = plan(hosts, doms, "src", groups=groups, owners={"w1": "src", "w2": "src"})
        assert sorted(t for _, t, _ in moves) == ["b", "c"], moves
    # without the rules (the old plan) both went to b, the roomiest
    assert {t for _, t, _ in plan(hosts, doms, "src")} == {"b"}


def test_affinity_members_move_together_and_follow_members_elsewhere() -> None:
    hosts = [host("src", 8), host("b", 8), host("c", 6)]
    groups = {"a1": ("db", ""), "a2": ("db", ""), "a3": ("db", "")}
    doms = [grouped("a1", 2, aff="db"), grouped("a2", 1, aff="db")]
    # both on src: the first goes to the best host, the second follows it
    moves = plan(hosts, doms, "src", groups=groups, owners={"a1": "src", "a2": "src"})
    assert [(d.name, t) for d, t, _ in moves] == [("a1", "b"), ("a2", "b")]
    # a3 runs on c: they join it there although b has more room
    moves = plan(hosts, doms, "src", groups=groups,
                 owners={"a1": "src", "a2": "src", "a3": "c"})  # fmt: skip
    assert [(d.name, t) for d, t, _ in moves] == [("a1", "c"), ("a2", "c")]
    # c has no room for a1: refused with the rule named (a hard rule is never broken)
    small = [host("src", 8), host("b", 8), host("c", 1)]
    moves = plan(small, doms[:1], "src", groups=groups, owners={"a1": "src", "a3": "c"})
    [(_, target, why)] = moves
    assert target == "" and "b: affinity group 'db': a3 is on c" in why, why


def test_soft_rules_are_preferences_in_the_plan() -> None:
    hosts = [host("src", 8), host("b", 8), host("c", 1.5)]
    groups = {"a1": ("db", ""), "a3": ("db", "")}
    soft = grouped("a1", 1, aff="db", soft=True)
    # a3 on c, which has room: a1 prefers it over the roomier b
    moves = plan(hosts, [soft], "src", groups=groups, owners={"a1": "src", "a3": "c"})
    assert [t for _, t, _ in moves] == ["c"]
    # c full: the soft rule is broken rather than leaving a1 nowhere
    full = [host("src", 8), host("b", 8), host("c", 0.5)]
    moves = plan(full, [soft], "src", groups=groups, owners={"a1": "src", "a3": "c"})
    assert [(t, why) for _, t, why in moves] == [("b", "")]


def test_more_checks_per_domain_refuse_hosts() -> None:
    hosts = [host("src", 8), host("b", 8), host("c", 4)]
    checks = {"n1": [lambda h: "network 'lan' missing" if h.name == "b" else ""]}
    moves = plan(hosts, [dom("n1", 1)], "src", checks=checks)
    assert [t for _, t, _ in moves] == ["c"]
