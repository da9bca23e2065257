"""pyvirt.api.stats without QEMU: virsh's flat names and order, state codes, the JSON form,
``domstats`` output, and the collector on shut-off domains of a temporary state root."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import pyvirt.api
from pyvirt.api.domains import DomainStatus, Reason, State
from pyvirt.api.stats import (
    ALL_GROUPS,
    BalloonStats,
    BlockStats,
    CpuStats,
    DomainStats,
    NetStats,
    StatsGroup,
    VcpuStats,
    params,
    reason_code,
    state_code,
)
from pyvirt.cli.commands.stats import format_records
from pyvirt.errors import InvalidConfigError, NotFoundError
from tests.conftest import Pyvirt


def running() -> DomainStats:
    status = DomainStatus("web1", "u-1", 3, State.RUNNING, Reason.BOOTED, True, False, pid=99)
    return DomainStats(
        status,
        cpu=CpuStats(3_000_000_000, 2_000_000_000, 1_000_000_000),
        balloon=BalloonStats(1024, 2048, {"unused": 512, "last-update": 17}, rss_kib=4096),
        vcpu_count=(1, 2),
        vcpus=(VcpuStats(0, 1, 555),),
        nets=(NetStats("pv0", "52:54:00:00:00:01", 10, 1, 0, 0, 20, 2, 0, 0),),
        blocks=(
            BlockStats("vda", "/img/a.qcow2", 1, 4096, 9, 2, 8192, 8, 3, 7),
            BlockStats("sda", None),
        ),
    )


def test_params_follow_virsh_order_and_names() -> None:
    assert params(running()) == [
        ("state.state", 1), ("state.reason", 1),
        ("cpu.time", 3_000_000_000), ("cpu.user", 2_000_000_000), ("cpu.system", 1_000_000_000),
        ("balloon.current", 1024), ("balloon.maximum", 2048), ("balloon.unused", 512),
        ("balloon.last-update", 17), ("balloon.rss", 4096),
        ("vcpu.current", 1), ("vcpu.maximum", 2), ("vcpu.0.state", 1), ("vcpu.0.time", 555),
        ("net.count", 1), ("net.0.name", "pv0"),
        ("net.0.rx.bytes", 10), ("net.0.rx.pkts", 1), ("net.0.rx.errs", 0), ("net.0.rx.drop", 0),
        ("net.0.tx.bytes", 20), ("net.0.tx.pkts", 2), ("net.0.tx.errs", 0), ("net.0.tx.drop", 0),
        ("block.count", 2), ("block.0.name", "vda"), ("block.0.path", "/img/a.qcow2"),
        ("block.0.rd.reqs", 1), ("block.0.rd.bytes", 4096), ("block.0.rd.times", 9),
        ("block.0.wr.reqs", 2), ("block.0.wr.bytes", 8192), ("block.0.wr.times", 8),
        ("block.0.fl.reqs", 3), ("block.0.fl.times", 7),
        ("block.1.name", "sda"),
    ]  # fmt: skip


def test_params_keep_only_the_groups_asked_for() -> None:
    keys = [k for k, _ in params(running(), [StatsGroup.BLOCK, StatsGroup.STATE])]
    assert keys[:3] == ["state.state", "state.reason", "block.count"]
    assert not [k for k in keys if k.startswith(("cpu.", "balloon.", "vcpu.", "net."))]


@pytest.mark.parametrize(
    ("state", "reason", "codes"),
    [
        (State.RUNNING, Reason.BOOTED, (1, 1)),
        (State.RUNNING, Reason.UNPAUSED, (1, 5)),
        (State.PAUSED, Reason.USER, (3, 1)),
        (State.SHUTOFF, Reason.SHUTDOWN, (5, 1)),
        (State.SHUTOFF, Reason.DESTROYED, (5, 2)),
        (State.SHUTOFF, Reason.CRASHED, (5, 3)),
        (State.SHUTOFF, Reason.UNKNOWN, (5, 0)),
        (State.UNKNOWN, Reason.UNKNOWN, (0, 0)),
    ],
)
def test_libvirt_state_and_reason_numbers(
    state: State, reason: Reason, codes: tuple[int, int]
) -> None:
    assert (state_code(state), reason_code(state, reason)) == codes


def test_format_is_virsh_layout() -> None:
    off = DomainStats(DomainStatus("db", "u-2", None, State.SHUTOFF, Reason.DESTROYED, True, False))
    text = format_records([off, running()], [StatsGroup.STATE, StatsGroup.CPU])
    assert text == (
        "Domain: 'db'\n  state.state=5\n  state.reason=2\n\n"
        "Domain: 'web1'\n  state.state=1\n  state.reason=1\n  cpu.time=3000000000\n"
        "  cpu.user=2000000000\n  cpu.system=1000000000\n\n"
    )
    assert format_records([], list(ALL_GROUPS)) == ""


def test_json_form() -> None:
    data = json.loads(json.dumps(running().to_json()))
    assert data["name"] == "web1" and data["state_code"] == 1 and data["reason_code"] == 1
    assert data["cpu"]["time_ns"] == 3_000_000_000
    assert data["memory"]["rss_kib"] == 4096
    assert data["vcpu"] == {"current": 1, "maximum": 2,
                            "vcpus": [{"vcpu": 0, "state": 1, "time_ns": 555}]}  # fmt: skip
    assert data["nets"][0]["rx_bytes"] == 10
    assert data["blocks"][1] == {
        "name": "sda", "path": None, "rd_reqs": None, "rd_bytes": None, "rd_times": None,
        "wr_reqs": None, "wr_bytes": None, "wr_times": None, "fl_reqs": None, "fl_times": None,
    }  # fmt: skip


XML = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>256</memory>
<currentMemory unit='MiB'>128</currentMemory><vcpu current='1'>2</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='file' device='disk'><source file='/nonexistent/{name}.img'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>"""  # noqa: E501


@pytest.fixture
def conn(state_root: Path) -> pyvirt.api.Connection:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={state_root}")
    for name in ("b", "a"):
        conn.domains.define(XML.format(name=name))
    return conn


def test_collector_on_shut_off_domains(conn: pyvirt.api.Connection) -> None:
    recs = conn.domains.stats()
    assert [r.name for r in recs] == ["a", "b"]
    assert params(recs[0]) == [
        ("state.state", 5), ("state.reason", 0),
        ("balloon.current", 128 * 1024), ("balloon.maximum", 256 * 1024),
        ("vcpu.current", 1), ("vcpu.maximum", 2),
        ("block.count", 1), ("block.0.name", "vda"), ("block.0.path", "/nonexistent/a.img"),
    ]  # fmt: skip
    lean = conn.domains.stats(["b"], inactive_details=False)
    assert len(lean) == 1 and lean[0].balloon is None and lean[0].blocks is None
    only_state = conn.domains.stats(["a"], [StatsGroup.STATE])
    assert params(only_state[0]) == [("state.state", 5), ("state.reason", 0)]


def test_collector_refuses_unknown_names(conn: pyvirt.api.Connection) -> None:
    with pytest.raises(NotFoundError):
        conn.domains.stats(["nope"])


def test_domstats_cli(pyvirt: Pyvirt) -> None:
    path = pyvirt.root / "a.xml"
    path.write_text(XML.format(name="a"))
    pyvirt("define", str(path))
    out = pyvirt("domstats", "--state", "--balloon").out
    assert out == (
        "Domain: 'a'\n  state.state=5\n  state.reason=0\n"
        "  balloon.current=131072\n  balloon.maximum=262144\n\n"
    )
    assert pyvirt("domstats", "--list-running").out == ""
    assert pyvirt("domstats", "--raw", "--enforce", "--state", "a").out.count("=") == 2
    assert "Domain: 'a'" in pyvirt("domstats", "--list-inactive", "--list-persistent").out
    data = json.loads(pyvirt("domstats", "a", "--json").out)
    assert data[0]["name"] == "a" and data[0]["blocks"][0]["name"] == "vda"
    res = pyvirt("domstats", "a", "--list-active", check=False)
    assert res.rc == 1 and "cannot be combined with domain names" in res.err
    res = pyvirt("domstats", "nope", check=False)
    assert res.rc == 1 and "nope" in res.err


def test_json_round_trip() -> None:
    rec = running()
    assert DomainStats.from_json(json.loads(json.dumps(rec.to_json()))) == rec
    lean = DomainStats(rec.status)
    assert DomainStats.from_json(lean.to_json()) == lean
    with pytest.raises(InvalidConfigError):
        DomainStats.from_json({"name": "x"})
