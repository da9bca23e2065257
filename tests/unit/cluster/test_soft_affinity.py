"""Soft (preferred) affinity (issue 16): a domain defined ``--soft`` takes its affinity groups
as preferences — a host breaking one loses score but is never refused for it, so the domain
still runs when only such a host fits; hard groups keep refusing."""

from __future__ import annotations

import json
from typing import cast

import pytest

from pyvirt.drivers.etcd import Etcd
from pyvirt.errors import InvalidStateError
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.domains import ClusterDomain, DomainPlacementInfo
from pyvirt.service.cluster.placement import domain_checks, domain_preferences, place
from pyvirt.service.cluster.rules import SOFT_PENALTY, group_rules
from tests.unit.cluster.test_fenced import FakeEtcd
from tests.unit.cluster.test_placement import GIB, host

#: web1 on host a, web2 on host b (both in anti-affinity group "web" and affinity group "db")
GROUPS = {"web1": ("db", "web"), "web2": ("db", "web")}
OWNERS = {"web1": "a", "web2": "b"}


def test_soft_anti_affinity_is_a_penalty_not_a_refusal() -> None:
    hard = group_rules("web3", "", "web", GROUPS, OWNERS)
    soft = group_rules("web3", "", "web", GROUPS, OWNERS, soft=True)
    assert hard.why_not("a") == "anti-affinity group 'web': web1 there"
    assert hard.penalty("a") == 0.0
    assert soft.why_not("a") == "" and soft.penalty("a") == SOFT_PENALTY
    assert soft.broken("a") == "anti-affinity group 'web': web1 there"
    assert soft.penalty("c") == 0.0


def test_soft_affinity_prefers_the_groups_host() -> None:
    soft = group_rules("db3", "db", "", GROUPS, OWNERS, soft=True)
    assert soft.penalty("a") == 0.0 and soft.penalty("b") == 0.0  # members on a and b
    assert soft.penalty("c") == SOFT_PENALTY
    assert group_rules("x", "db", "", {}, {}, soft=True).penalty("c") == 0.0  # nobody placed


def _prefer(rule_host: dict[str, float]) -> list[object]:
    return [lambda h: (rule_host.get(h.name, 0.0), "soft rule") if h.name in rule_host
            else (0.0, "")]  # fmt: skip


def test_a_preference_outweighs_free_memory_but_not_fit() -> None:
    hosts = [host("a", 12), host("b", 3)]
    # a has far more room, but holds an anti-affinity peer: b wins
    p = place(hosts, GIB, preferences=_prefer({"a": SOFT_PENALTY}))  # type: ignore[arg-type]
    assert p.host == "b"
    a = next(c for c in p.candidates if c.host == "a")
    assert a.fits and a.why == "soft rule" and a.score < 0
    # when only a fits, the domain still goes there (a hard rule would refuse it)
    p = place([host("a", 12), host("b", 0.5)], GIB,
              preferences=_prefer({"a": SOFT_PENALTY}))  # type: ignore[arg-type]  # fmt: skip
    assert p.host == "a"


def _etcd_with_group(soft: bool) -> tuple[FakeEtcd, ClusterDomain]:
    etcd = FakeEtcd()
    for name, owner in OWNERS.items():
        etcd.kv[keys.group_member("anti-affinity", "web", name)] = ("", 0)
        etcd.kv[keys.owner(name)] = (json.dumps({"host": owner}), 1)
    record = ClusterDomain("web3", "u", "<domain type='kvm'><name>web3</name>"
                           "<memory>1024</memory></domain>", False, 1024, 1, 0.0,
                           "", "web", soft)  # fmt: skip
    etcd.kv[keys.group_member("anti-affinity", "web", "web3")] = ("", 0)
    return etcd, record


def test_a_soft_domain_reads_its_groups_as_preferences() -> None:
    etcd, record = _etcd_with_group(soft=True)
    assert domain_checks(cast(Etcd, etcd), record) == []
    prefs = domain_preferences(cast(Etcd, etcd), record)
    hosts = [host("a", 8), host("b", 8), host("c", 2)]
    p = place(hosts, GIB, preferences=prefs)
    assert p.host == "c"
    why = {c.host: c.why for c in p.candidates}
    assert why == {"a": "soft anti-affinity group 'web': web1 there",
                   "b": "soft anti-affinity group 'web': web2 there", "c": ""}  # fmt: skip
    # c down: a and b still fit (the hard group would refuse both)
    p = place(hosts[:2], GIB, preferences=prefs)
    assert p.host in ("a", "b")


def test_a_hard_domain_still_refuses() -> None:
    etcd, record = _etcd_with_group(soft=False)
    assert domain_preferences(cast(Etcd, etcd), record) == []
    checks = domain_checks(cast(Etcd, etcd), record)
    with pytest.raises(InvalidStateError, match="anti-affinity group 'web'"):
        place([host("a", 8), host("b", 8)], GIB, checks=checks)


def test_soft_survives_the_record_and_the_listing() -> None:
    record = ClusterDomain("d", "u", "<domain/>", True, 1, 1, 0.0, "g", "", True)
    assert ClusterDomain.decode(record.encode()).soft
    old = json.loads(record.encode())
    del old["soft"]  # a record written before soft affinity
    assert ClusterDomain.decode(json.dumps(old)).soft is False
    info = DomainPlacementInfo(record, "a").to_json()
    assert info["soft"] is True and DomainPlacementInfo.from_json(info).domain.soft
    assert "soft" not in DomainPlacementInfo(ClusterDomain("e", "u", "", False, 1, 1, 0.0),
                                             "").to_json()  # fmt: skip
