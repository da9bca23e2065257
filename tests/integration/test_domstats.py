"""``domstats`` and pyvirtd's ``/metrics`` on a real tiny guest with a disk and a NIC, inside a
network namespace the test creates: after the guest read its disk and pinged the host, the
block, NIC and CPU counters are non-zero in both, and ``/metrics`` parses as Prometheus text."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.daemonhelp import pyvirtd
from tests.integration.nethelp import NsPyvirt, define, guest_xml, netns, wait_run

pytestmark = pytest.mark.qemu

NET = """<network><name>iso</name><bridge name='pvbrst'/>
<ip address='10.79.0.1' netmask='255.255.255.0'/></network>"""
RUN = (
    "ip link set eth0 up && ip addr add 10.79.0.5/24 dev eth0 && "
    "ping -c 3 -W 2 10.79.0.1 >/dev/null; "
    "dd if=/dev/vda of=/dev/null bs=65536 count=64 2>/dev/null && echo READ-OK"
)


def domstats(pv: NsPyvirt, *args: str) -> dict[str, str]:
    """``key=value`` lines of ``pyvirt domstats`` (one domain)."""
    out = pv("domstats", *args).out
    assert out.startswith("Domain: 'g'\n"), out
    return dict(line.strip().split("=", 1) for line in out.splitlines()[1:] if "=" in line)


@contextmanager
def daemon(root: Path, ns: str) -> Iterator[httpx.Client]:
    """A real pyvirtd on ``root`` (in the namespace), until the block ends."""
    with (
        pyvirtd(root, netns=ns) as d,
        httpx.Client(
            transport=httpx.HTTPTransport(uds=str(d.sock)), base_url="http://pyvirtd"
        ) as client,
    ):
        yield client


def test_domstats_and_metrics(state_root: Path, tiny_image: Any) -> None:
    disk = state_root / "disk.img"
    with disk.open("wb") as f:
        f.truncate(16 * 1024 * 1024)
    with netns() as ns:
        pv = NsPyvirt(state_root, ns)
        (state_root / "iso.xml").write_text(NET)
        pv("net-define", str(state_root / "iso.xml"))
        pv("net-start", "iso")
        devices = (
            "<interface type='network'><source network='iso'/>"
            "<mac address='52:54:00:5a:00:01'/><model type='virtio'/></interface>"
            f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
            f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"
        )
        define(pv, guest_xml(tiny_image, "g", devices, run=RUN, dhcp=False), "g")
        before = domstats(pv)
        assert before["state.state"] == "5" and before["block.0.name"] == "vda"
        assert "cpu.time" not in before
        pv("start", "g")
        rc, out = wait_run(pv, "g")
        assert rc == 0 and "READ-OK" in out, out

        stats = domstats(pv, "g")
        assert stats["state.state"] == "1" and stats["state.reason"] == "1"
        assert int(stats["cpu.time"]) > 0
        assert int(stats["vcpu.0.time"]) > 0
        assert int(stats["balloon.maximum"]) == 128 * 1024
        assert stats["block.count"] == "1" and stats["block.0.path"] == str(disk)
        assert int(stats["block.0.rd.bytes"]) >= 64 * 65536
        assert int(stats["block.0.rd.reqs"]) > 0
        assert stats["net.count"] == "1" and stats["net.0.name"].startswith("pv")
        assert int(stats["net.0.tx.bytes"]) > 0 and int(stats["net.0.rx.bytes"]) > 0
        tap = stats["net.0.name"]

        with daemon(state_root, ns) as client:
            res = client.get("/metrics")
            records = client.get("/api/v1/stats/domains", params={"name": "g"}).json()
        assert res.status_code == 200, res.text
        assert records[0]["blocks"][0]["rd_bytes"] >= 64 * 65536
        series = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(res.text)
            for s in family.samples
        }
        g, vda, nic = (("domain", "g"),), (("dev", "vda"), ("domain", "g")), (
            ("dev", tap), ("domain", "g"))  # fmt: skip
        assert series[("pyvirt_domain_state", g)] == 1
        assert series[("pyvirt_domain_cpu_seconds_total", g)] > 0
        assert series[("pyvirt_domain_block_read_bytes_total", vda)] >= 64 * 65536
        assert series[("pyvirt_domain_net_transmit_bytes_total", nic)] > 0
        assert series[("pyvirt_domain_memory_bytes", (("domain", "g"), ("kind", "maximum")))] == (
            128 * 1024 * 1024
        )
        assert series[("pyvirt_host_memory_bytes", (("kind", "total"),))] > 0
        pv("destroy", "g")
        assert domstats(pv, "--state")["state.reason"] == "2"
        pv("net-destroy", "iso")
