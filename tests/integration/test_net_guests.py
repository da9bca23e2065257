"""Tiny guests on virtual networks, all inside a network namespace the test creates.

Scenario: the ``default`` NAT network with two guests that get leases and ping each other;
two routed networks whose guests ping each other through the host; an isolated network whose
guest cannot reach the others; NIC hotplug.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.nethelp import (
    NsPyvirt,
    define,
    guest_xml,
    netns,
    nic,
    shell,
    wait_for,
    wait_run,
)

pytestmark = pytest.mark.qemu

PING = (
    "for i in $(seq 1 60); do ping -c 1 -W 1 {ip} >/dev/null 2>&1 && exit 0; sleep 1; done; exit 1"
)
ROUTED = """<network><name>{name}</name><forward mode='{mode}'/><bridge name='{br}'/>
<ip address='{prefix}.1' netmask='255.255.255.0'><dhcp><range start='{prefix}.100'
end='{prefix}.150'/><host mac='{mac}' ip='{prefix}.10'/></dhcp></ip></network>"""


def test_default_nat_two_guests(state_root: Path, tiny_image: Any) -> None:
    with netns() as ns:
        pv = NsPyvirt(state_root, ns)
        # static hosts so each guest knows the other's address at boot (also tests net-update)
        for mac, ip in (("52:54:00:aa:00:01", "11"), ("52:54:00:aa:00:02", "12")):
            host = f"<host mac='{mac}' ip='192.168.122.{ip}'/>"
            pv("net-update", "default", "add", "ip-dhcp-host", host, "--config")
        assert "192.168.122.12" in pv("net-dumpxml", "default", "--inactive").out
        pv("net-start", "default")
        define(pv, guest_xml(tiny_image, "g1", nic("default", "52:54:00:aa:00:01")), "g1")
        define(
            pv,
            guest_xml(
                tiny_image,
                "g2",
                nic("default", "52:54:00:aa:00:02", "e1000"),
                run=PING.format(ip="192.168.122.11"),
            ),
            "g2",
        )
        pv("start", "g1")
        pv("start", "g2")
        rc, out = wait_run(pv, "g2")
        assert rc == 0, f"g2 could not ping g1: {out}"
        leases = json.loads(pv("net-dhcp-leases", "default", "--json").out)
        assert {x["ip"] for x in leases} >= {"192.168.122.11", "192.168.122.12"}
        addr = pv("domifaddr", "g1").out
        assert "192.168.122.11/24" in addr and "52:54:00:aa:00:01" in addr
        assert "192.168.122.12/24" in pv("net-dhcp-leases", "default", "--mac",
                                         "52:54:00:aa:00:02").out  # fmt: skip
        arp = pv("domifaddr", "g2", "--source", "arp")
        assert arp.rc == 0
        iflist = pv("domiflist", "g2").out
        assert "default" in iflist and "e1000" in iflist
        tap = iflist.splitlines()[2].split()[0]
        stat = pv("domifstat", "g2", tap).out
        assert int(stat.split(f"{tap} tx_packets ")[1].split()[0]) > 0
        # a running domain holds the network
        res = pv("net-destroy", "default", check=False)
        assert res.rc == 1 and "used by running domains" in res.err
        # duplicate MAC on the same network: refused at start, nothing left behind
        define(pv, guest_xml(tiny_image, "g3", nic("default", "52:54:00:aa:00:01")), "g3")
        res = pv("start", "g3", check=False)
        assert res.rc == 1 and "already used by domain 'g1'" in res.err
        assert "pv" not in " ".join(
            x for x in pv.sh("ls /sys/class/net").split() if x.startswith("pv") and x not in
            pv.sh("ls /sys/class/net/virbr0/brif").split()
        )  # fmt: skip
        # hotplug a virtio NIC into the running g1: the guest sees it; detach removes it
        before = shell(pv, "g1", "ls /sys/class/net")
        assert "eth1" not in before
        pv("attach-interface", "g1", "network", "default", "--model", "virtio", "--live",
           "--mac", "52:54:00:aa:00:09")  # fmt: skip
        wait_for(lambda: "eth1" in shell(pv, "g1", "ls /sys/class/net"), 60, "eth1 in g1")
        assert "52:54:00:aa:00:09" in pv("domiflist", "g1").out
        pv("detach-interface", "g1", "network", "--mac", "52:54:00:aa:00:09", "--live")
        assert "eth1" not in shell(pv, "g1", "ls /sys/class/net")
        assert "52:54:00:aa:00:09" not in pv("domiflist", "g1").out
        pv("domif-setlink", "g1", "net0", "down")
        assert "state='down'" in pv("dumpxml", "g1").out
        for g in ("g1", "g2"):
            pv("destroy", g)
        pv("list", "--all")  # reconciles: taps removed after stop
        assert not [x for x in pv.sh("ls /sys/class/net").split() if x.startswith("pv")]
        pv("net-destroy", "default")
        assert "virbr0" not in pv.sh("ls /sys/class/net")
        assert "pyvirt" not in pv.sh("nft list tables")


def test_routed_and_isolated(state_root: Path, tiny_image: Any) -> None:
    with netns() as ns:
        pv = NsPyvirt(state_root, ns)
        nets = {
            "ra": ("route", "pvbra", "10.77.1", "52:54:00:bb:00:01"),
            "rb": ("route", "pvbrb", "10.77.2", "52:54:00:bb:00:02"),
            "iso": ("isolated", "pvbri", "10.77.3", "52:54:00:bb:00:03"),
        }
        for name, (mode, br, prefix, mac) in nets.items():
            xml = ROUTED.format(name=name, mode=mode, br=br, prefix=prefix, mac=mac)
            if mode == "isolated":
                xml = xml.replace("<forward mode='isolated'/>", "")
            path = state_root / f"{name}.net.xml"
            path.write_text(xml)
            pv("net-define", str(path))
            pv("net-start", name)
        define(pv, guest_xml(tiny_image, "gb", nic("rb", "52:54:00:bb:00:02")), "gb")
        ping_b = PING.format(ip="10.77.2.10")
        define(pv, guest_xml(tiny_image, "ga", nic("ra", "52:54:00:bb:00:01"), ping_b), "ga")
        # even with a route through the host, the isolated network's firewall stops it
        no_ping = (
            "ip route add 10.77.2.0/24 via 10.77.3.1;"
            " ping -c 3 -W 1 10.77.2.10 >/dev/null 2>&1 && exit 0; exit 1"
        )
        define(pv, guest_xml(tiny_image, "gi", nic("iso", "52:54:00:bb:00:03"), no_ping), "gi")
        for g in ("gb", "ga", "gi"):
            pv("start", g)
        rc, out = wait_run(pv, "ga")
        assert rc == 0, f"ga on network ra could not ping gb on network rb: {out}"
        rc, out = wait_run(pv, "gi")
        assert rc == 1, "the guest on the isolated network reached another network"
        info = pv("net-info", "iso").out
        assert "isolated" in info and "pvbri" in info
        for g in ("gb", "ga", "gi"):
            pv("destroy", g)
        for name in nets:
            pv("net-destroy", name)
            pv("net-undefine", name)
        assert pv("net-list", "--all", "--name").out.split() == ["default"]
        assert "pvbr" not in pv.sh("ls /sys/class/net")
