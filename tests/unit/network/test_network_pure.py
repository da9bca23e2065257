"""Pure parts of the network layer: nft ruleset, dnsmasq config, MACs, backend registry."""

from __future__ import annotations

import ipaddress
import json
import random
from pathlib import Path

import pytest

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model.network import Network
from pyvirt.network import dnsmasq, firewall, mac
from pyvirt.network.registry import backend_for, modes
from pyvirt.network.runtime import NetRecord
from pyvirt.service.nic.hooks import tap_name

NAT = """<network><name>n</name><forward mode='nat'/><bridge name='virbr3'/>
<domain name='t.test'/><ip address='10.3.0.1' prefix='24'><dhcp>
<range start='10.3.0.2' end='10.3.0.254'/><host mac='52:54:00:00:00:01' name='a'
ip='10.3.0.9'/></dhcp></ip></network>"""


def _rules(mode: str) -> str:
    subnet = ipaddress.ip_network("10.3.0.0/24")
    return json.dumps(firewall.ruleset("n", mode, "virbr3", [subnet]))


def test_nft_rules_per_mode() -> None:
    nat = _rules("nat")
    assert '"name": "pyvirt-n"' in nat and '"masquerade": null' in nat
    assert '"established", "related"' in nat
    route = _rules("route")
    assert "masquerade" not in route and "established" not in route
    iso = _rules("isolated")
    assert "masquerade" not in iso and iso.count('"reject": null') == 2 and "10.3.0.0" not in iso


def test_dnsmasq_config(tmp_path: Path) -> None:
    net = Network.from_xml(NAT)
    files = dnsmasq.Files(tmp_path)
    conf = dnsmasq.config(net, files, "virbr3")
    assert "interface=virbr3" in conf and "bind-dynamic" in conf
    assert "dhcp-range=10.3.0.2,10.3.0.254,255.255.255.0" in conf
    assert f"dhcp-leasefile={tmp_path}/leases" in conf and "dhcp-lease-max=254" in conf
    assert "domain=t.test" in conf
    assert dnsmasq.host_lines(net) == ["52:54:00:00:00:01,10.3.0.9,a"]
    (tmp_path / "leases").write_text(
        "1700000000 52:54:00:00:00:01 10.3.0.9 a 01:52:54:00:00:00:01\nbad line\n"
    )
    assert dnsmasq.leases(files)[0].ip == "10.3.0.9"
    assert dnsmasq.read_pid(files) is None  # no pid file: nothing is ours


def test_macs() -> None:
    taken = {"52:54:00:00:00:01"}
    new = mac.generate(taken, random.Random(1))
    assert new.startswith("52:54:00:") and new not in taken
    assert mac.normalize("52:54:00:AA:BB:CC") == "52:54:00:aa:bb:cc"
    for bad in ("52:54:00:aa:bb", "01:00:5e:00:00:01", "zz:54:00:aa:bb:cc"):
        with pytest.raises(InvalidConfigError):
            mac.normalize(bad)


def test_registry_and_record(tmp_path: Path) -> None:
    assert {"nat", "route", "isolated", "open", "bridge"} <= set(modes())
    assert backend_for("nat").info.ip_forward and not backend_for("bridge").info.makes_bridge
    with pytest.raises(UnsupportedError):
        backend_for("teleport")
    rec = NetRecord(name="n", mode="nat", bridge="virbr3", bridge_created=True, taps=["t"])
    rec.save(tmp_path / "n.json")
    assert NetRecord.load(tmp_path / "n.json") == rec
    assert NetRecord.load(tmp_path / "missing.json") is None


def test_tap_names_fit_the_kernel_limit() -> None:
    name = tap_name("6B0F3F3E-2F54-4D0E-9D2B-0B6A4A1F2C11", 12)
    assert name == "pv6b0f3f3en12" and len(name) <= 15
