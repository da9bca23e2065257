"""``GET /metrics`` without QEMU: the families from hand-made records, job counts from a job
registry, and the real app on a temporary state root, parsed with prometheus_client's parser."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

import pyvirt.api
from pyvirt.api.domains import DomainStatus, Reason, State
from pyvirt.api.stats import BalloonStats, BlockStats, CpuStats, DomainStats, NetStats, VcpuStats
from pyvirt.daemon.app import create_app
from pyvirt.daemon.context import Daemon, DaemonConfig
from pyvirt.daemon.jobs import Job, JobRegistry
from pyvirt.daemon.promexport import domain_families, host_families, job_family
from pyvirt.errors import OperationFailedError
from pyvirt.state.paths import StatePaths

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


class _Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def render(families: list[Metric]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(families))
    return generate_latest(registry).decode()


def test_domain_series() -> None:
    status = DomainStatus("web1", "u", 1, State.RUNNING, Reason.BOOTED, True, False, pid=9)
    rec = DomainStats(
        status,
        cpu=CpuStats(2_500_000_000, 2_000_000_000, 500_000_000),
        balloon=BalloonStats(1024, 2048, {"usable": 100}, rss_kib=300),
        vcpu_count=(1, 1),
        vcpus=(VcpuStats(0, 1, 1_000_000_000),),
        nets=(NetStats("pv0", None, 10, 1, 0, 0, 20, 2, 0, 3),),
        blocks=(BlockStats("vda", "/x", 1, 4096, 2_000_000, 2, 8192, 0, 0, 0),),
    )
    off = DomainStats(DomainStatus("db", "", None, State.SHUTOFF, Reason.UNKNOWN, True, False))
    got = samples(render(list(domain_families([rec, off]))))
    web = (("domain", "web1"),)
    assert got[("pyvirt_domain_state", web)] == 1
    assert got[("pyvirt_domain_state", (("domain", "db"),))] == 5
    assert got[("pyvirt_domain_cpu_seconds_total", web)] == 2.5
    assert got[("pyvirt_domain_vcpu_seconds_total", (("domain", "web1"), ("vcpu", "0")))] == 1
    mem = {k[1][1][1]: v for k, v in got.items() if k[0] == "pyvirt_domain_memory_bytes"}
    assert mem == {"maximum": 2048 * 1024, "current": 1024 * 1024, "rss": 300 * 1024,
                   "usable": 100 * 1024}  # fmt: skip
    dev = (("dev", "vda"), ("domain", "web1"))
    assert got[("pyvirt_domain_block_read_bytes_total", dev)] == 4096
    assert got[("pyvirt_domain_block_write_bytes_total", dev)] == 8192
    assert got[("pyvirt_domain_block_read_seconds_total", dev)] == 0.002
    nic = (("dev", "pv0"), ("domain", "web1"))
    assert got[("pyvirt_domain_net_receive_bytes_total", nic)] == 10
    assert got[("pyvirt_domain_net_transmit_drops_total", nic)] == 3
    # a shut-off domain has its state only
    assert [k for k in got if ("domain", "db") in k[1]] == [
        ("pyvirt_domain_state", (("domain", "db"),))
    ]


def test_host_series() -> None:
    got = samples(render(list(host_families())))
    modes = {k[1][0][1] for k in got if k[0] == "pyvirt_host_cpu_seconds_total"}
    assert modes == {"user", "system", "idle", "iowait"}
    assert got[("pyvirt_host_memory_bytes", (("kind", "total"),))] > 0


def test_job_counts() -> None:
    reg = JobRegistry()
    release = threading.Event()

    def fail(_job: Job) -> None:
        raise OperationFailedError("no")

    running = reg.start("vol-wipe", "p/v", lambda _job: release.wait(10))
    for job in (reg.start("vol-wipe", "p/a", lambda _j: None), reg.start("vol-wipe", "p/b", fail)):
        reg.wait(job.id, 10)
    got = samples(render([job_family(reg)]))
    release.set()
    reg.wait(running.id, 10)
    assert got == {
        ("pyvirt_jobs", (("state", "running"),)): 1,
        ("pyvirt_jobs", (("state", "completed"),)): 1,
        ("pyvirt_jobs", (("state", "failed"),)): 1,
        ("pyvirt_jobs", (("state", "cancelled"),)): 0,
    }


@pytest.fixture
def client(state_root: Path) -> TestClient:
    conn = pyvirt.api.open(f"pyvirt:///embed?root={state_root}")
    conn.domains.define(
        "<domain type='qemu'><name>web1</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64' machine='pc'>hvm</type></os></domain>"
    )
    daemon = Daemon(DaemonConfig(StatePaths.from_root(state_root)), conn)
    return TestClient(create_app(daemon))


def test_metrics_route(client: TestClient) -> None:
    with client:
        res = client.get("/metrics")
        om = client.get("/metrics", headers={"accept": "application/openmetrics-text"})
    assert om.headers["content-type"].startswith("application/openmetrics-text")
    assert om.text.endswith("# EOF\n")
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("text/plain; version=0.0.4")
    got = samples(res.text)
    assert got[("pyvirt_domain_state", (("domain", "web1"),))] == 5
    assert ("pyvirt_host_memory_bytes", (("kind", "available"),)) in got


def test_stats_routes(client: TestClient) -> None:
    with client:
        res = client.get("/api/v1/stats/domains", params={"group": ["state", "balloon"]})
        assert res.status_code == 200
        (rec,) = res.json()
        assert DomainStats.from_json(rec) == DomainStats(
            DomainStatus(rec["name"], rec["uuid"], None, State.SHUTOFF, Reason.UNKNOWN, True,
                         False),
            balloon=BalloonStats(64 * 1024, 64 * 1024),
        )  # fmt: skip
        res = client.get("/api/v1/stats/domains", params={"name": "nope"})
        assert res.status_code == 404 and res.json()["code"] == "not_found"
        res = client.get("/api/v1/stats/domains", params={"group": "bogus"})
        assert res.status_code == 422
        host = client.get("/api/v1/stats/host").json()
        assert set(host["cpu_ns"]) == {"user", "system", "idle", "iowait"}
