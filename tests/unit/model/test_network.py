"""The network XML model: lossless round trip, fields, validation with element paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.network import DhcpHost, Network

DATA = Path(__file__).parents[2] / "data" / "xml" / "network"


@pytest.mark.parametrize("path", sorted(DATA.glob("*.xml")), ids=lambda p: p.stem)
def test_round_trip_is_lossless(path: Path) -> None:
    text = path.read_text()
    assert Network.from_xml(text).to_xml() == text


def test_fields() -> None:
    net = Network.from_xml((DATA / "nat-full.xml").read_text())
    assert (net.name, net.mode, net.bridge_name, net.stp, net.delay) == (
        "lab", "nat", "virbr7", "on", 0)  # fmt: skip
    assert net.mtu == 9000 and net.domain_name == "lab.test"
    ip = net.ipv4()
    assert ip is not None and ip.prefix == 24 and str(ip.subnet) == "10.70.0.0/24"
    assert [(r.start, r.end) for r in ip.dhcp_ranges] == [("10.70.0.100", "10.70.0.200")]
    assert [h.ip for h in ip.dhcp_hosts] == ["10.70.0.10"]
    assert net.dns_forwarders[0].addr == "10.70.0.53"
    assert net.dns_hosts[0].hostnames == ["db"]
    assert net.warnings == ["<portgroup>: not understood by pyvirt; kept as is"]
    hostdev = Network.from_xml((DATA / "hostdev.xml").read_text())
    assert hostdev.mode == "hostdev" and hostdev.forward_pfs[0].dev == "enp3s0f0"
    iso = Network.from_xml((DATA / "isolated.xml").read_text())
    assert iso.mode == "isolated"


def test_edit_and_new() -> None:
    net = Network(name="n")
    assert net.uuid
    net.bridge_name = "br0"
    net.forward_mode = "route"
    net.ips = []
    xml = net.to_xml()
    assert "<forward mode='route'/>" in xml and "<bridge name='br0'/>" in xml
    again = Network.from_xml((DATA / "nat-full.xml").read_text())
    ip = again.ipv4()
    assert ip is not None
    ip.add_host(DhcpHost(mac="52:54:00:00:00:02", ip="10.70.0.11"))
    assert len(Network.from_xml(again.to_xml()).ipv4().dhcp_hosts) == 2  # type: ignore[union-attr]


BAD = [
    ("<network><name>a</name><bridge name='abcdefghijklmnopq'/></network>",
     "<bridge>", "1-15 characters"),
    ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp>"
     "<range start='10.0.1.2' end='10.0.1.9'/></dhcp></ip></network>",
     "<ip>/<dhcp>/<range>", "outside the subnet 10.0.0.0/24"),
    ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp>"
     "<range start='10.0.0.9' end='10.0.0.2'/></dhcp></ip></network>",
     "<range>", "ends (10.0.0.2) before it starts"),
    ("<network><name>a</name><ip address='10.0.0.1' prefix='24'><dhcp>"
     "<host mac='52:54:00:00:00:0g' ip='10.0.0.5'/></dhcp></ip></network>",
     "<host>", "MAC address '52:54:00:00:00:0g' is not valid"),
    ("<network><name>a</name><forward mode='teleport'/></network>",
     "<forward>", "is not one of"),
    ("<network><name>a</name><mac address='zz'/></network>", "<mac>", "is not valid"),
    ("<network><name>a</name><ip address='10.0.0.1' prefix='24'/>"
     "<ip address='10.0.0.2' prefix='16'/></network>", "<ip>[2]", "overlaps"),
    ("<network><name>a</name><forward mode='bridge'/></network>", "<forward>", "needs <bridge"),
    ("<network><name>a/b</name></network>", "<name>", "must be 1-64"),
    ("<domain/>", "<domain>", "root element must be <network>"),
]  # fmt: skip


@pytest.mark.parametrize(("xml", "where", "message"), BAD)
def test_validation(xml: str, where: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as err:
        Network.from_xml(xml)
    assert any(where in p.path and message in p.message for p in err.value.problems), (
        err.value.problems
    )
