"""The Prometheus side of ``GET /metrics``: a ``prometheus_client`` collector reading
:mod:`pyvirt.api.stats` at scrape time, and the rendering of one scrape.

Imported on the first scrape only (:mod:`pyvirt.daemon.routes.metrics`): a daemon nobody
scrapes does not hold ``prometheus_client`` in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from pyvirt.api.stats import DomainStats, host_stats, state_code
from pyvirt.daemon.context import Daemon
from pyvirt.daemon.jobs import JobRegistry
from pyvirt.errors import PyvirtError

__all__ = ["DaemonCollector", "domain_families", "host_families", "job_family", "render"]

log = logging.getLogger("pyvirtd.metrics")

NS_PER_S = 1e9
#: job states always reported (0 when none)
JOB_STATES = ("running", "completed", "failed", "cancelled")
#: guest balloon statistics in KiB that become ``pyvirt_domain_memory_bytes{kind}``
_GUEST_MEMORY = ("unused", "available", "usable", "disk_caches")
#: (series suffix, BlockStats field, scale to the unit)
_BLOCK = (
    ("read_bytes", "rd_bytes", 1.0),
    ("write_bytes", "wr_bytes", 1.0),
    ("read_requests", "rd_reqs", 1.0),
    ("write_requests", "wr_reqs", 1.0),
    ("flush_requests", "fl_reqs", 1.0),
    ("read_seconds", "rd_times", 1 / NS_PER_S),
    ("write_seconds", "wr_times", 1 / NS_PER_S),
)
_NET = (
    ("receive_bytes", "rx_bytes"),
    ("receive_packets", "rx_pkts"),
    ("receive_errors", "rx_errs"),
    ("receive_drops", "rx_drop"),
    ("transmit_bytes", "tx_bytes"),
    ("transmit_packets", "tx_pkts"),
    ("transmit_errors", "tx_errs"),
    ("transmit_drops", "tx_drop"),
)


class DaemonCollector(Collector):
    """Yields the metric families of one scrape from :mod:`pyvirt.api.stats`."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def collect(self) -> Iterator[Metric]:
        """Every family, read now."""
        try:
            records = self._daemon.conn.domains.stats(inactive_details=False)
        except PyvirtError as err:  # keep the host and job series coming
            log.warning("metrics: domain statistics failed: %s", err)
            records = []
        yield from domain_families(records)
        yield from host_families()
        yield job_family(self._daemon.jobs)


def domain_families(records: list[DomainStats]) -> Iterator[Metric]:
    """The ``pyvirt_domain_*`` families of ``records``."""
    state = GaugeMetricFamily(
        "pyvirt_domain_state",
        "Domain state as libvirt numbers it (1 running, 3 paused, 5 shut off, 0 unknown)",
        labels=["domain"],
    )
    cpu = CounterMetricFamily(
        "pyvirt_domain_cpu_seconds", "CPU time used by the domain's QEMU", labels=["domain"]
    )
    vcpu = CounterMetricFamily(
        "pyvirt_domain_vcpu_seconds", "Run time of each vCPU thread", labels=["domain", "vcpu"]
    )
    memory = GaugeMetricFamily(
        "pyvirt_domain_memory_bytes",
        "Domain memory: maximum, current (balloon), rss (QEMU) and the guest's balloon figures",
        labels=["domain", "kind"],
    )
    block = {
        key: CounterMetricFamily(
            f"pyvirt_domain_block_{key}", f"Disk {key.replace('_', ' ')}", labels=["domain", "dev"]
        )
        for key, _, _ in _BLOCK
    }
    net = {
        key: CounterMetricFamily(
            f"pyvirt_domain_net_{key}",
            f"NIC {key.replace('_', ' ')} as the guest sees them",
            labels=["domain", "dev"],
        )
        for key, _ in _NET
    }
    for rec in records:
        name = rec.name
        state.add_metric([name], state_code(rec.status.state))
        if rec.cpu is not None:
            cpu.add_metric([name], rec.cpu.time_ns / NS_PER_S)
        for v in rec.vcpus or ():
            vcpu.add_metric([name, str(v.vcpu)], v.time_ns / NS_PER_S)
        if rec.balloon is not None and rec.active:
            b = rec.balloon
            memory.add_metric([name, "maximum"], b.maximum_kib * 1024)
            memory.add_metric([name, "current"], b.current_kib * 1024)
            if b.rss_kib is not None:
                memory.add_metric([name, "rss"], b.rss_kib * 1024)
            for kind in _GUEST_MEMORY:
                if kind in b.guest:
                    memory.add_metric([name, kind], b.guest[kind] * 1024)
        for d in rec.blocks or ():
            for key, attr, scale in _BLOCK:
                value = getattr(d, attr)
                if value is not None:
                    block[key].add_metric([name, d.name], value * scale)
        for n in rec.nets or ():
            for key, attr in _NET:
                net[key].add_metric([name, n.name], getattr(n, attr))
    yield state
    yield cpu
    yield vcpu
    yield memory
    yield from block.values()
    yield from net.values()


def host_families() -> Iterator[Metric]:
    """``pyvirt_host_cpu_seconds_total{mode}`` and ``pyvirt_host_memory_bytes{kind}``."""
    host = host_stats()
    cpu = CounterMetricFamily(
        "pyvirt_host_cpu_seconds", "CPU time of all host CPUs by mode", labels=["mode"]
    )
    for mode, ns in host.cpu_ns.items():
        cpu.add_metric([mode], ns / NS_PER_S)
    memory = GaugeMetricFamily("pyvirt_host_memory_bytes", "Host memory by kind", labels=["kind"])
    for kind, value in host.memory_bytes.items():
        memory.add_metric([kind], value)
    yield cpu
    yield memory


def job_family(registry: JobRegistry) -> GaugeMetricFamily:
    """``pyvirt_jobs{state}``: the daemon's jobs (kept ones included) by state."""
    counts = dict.fromkeys(JOB_STATES, 0)
    for job in registry.list():
        counts[job.state] = counts.get(job.state, 0) + 1
    family = GaugeMetricFamily("pyvirt_jobs", "The daemon's jobs by state", labels=["state"])
    for key, count in counts.items():
        family.add_metric([key], count)
    return family


def render(daemon: Daemon, accept: str = "") -> tuple[bytes, str]:
    """One scrape and its content type: the Prometheus text format (0.0.4), or OpenMetrics
    when the ``Accept`` header asks for it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(daemon))
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type
