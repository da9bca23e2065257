"""Network lifecycle without guests, inside a network namespace: start/destroy, cleanup after
a SIGKILL in the middle of net-start, and bad input refused with nothing half-made."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYVIRT
from tests.integration.nethelp import NsPyvirt, define, guest_xml, netns

NET = """<network><name>{name}</name><forward mode='nat'/><bridge name='{br}'/>
<ip address='{net}.1' prefix='24'><dhcp><range start='{net}.2' end='{end}'/></dhcp></ip>
</network>"""


def _leftovers(pv: NsPyvirt, bridge: str) -> list[str]:
    out = []
    if bridge in pv.sh("ls /sys/class/net").split():
        out.append(f"bridge {bridge}")
    if "pyvirt-" in pv.sh("nft list tables"):
        out.append("nft table")
    for pid in pv.sh("ip netns pids $(ip netns identify $$)").split():
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"dnsmasq" in cmd:
            out.append(f"dnsmasq {pid}")
    return out


def _write(pv: NsPyvirt, name: str, text: str) -> str:
    path = pv.root / f"{name}.net.xml"
    path.write_text(text)
    return str(path)


def test_start_destroy_and_info(state_root: Path) -> None:
    with netns() as ns:
        pv = NsPyvirt(state_root, ns)
        assert "default" in pv("net-list", "--all").out
        pv("net-start", "default")
        assert "virbr0" in pv.sh("ls /sys/class/net")
        assert "pyvirt-default" in pv.sh("nft list tables")
        assert pv.sh("cat /proc/sys/net/ipv4/ip_forward").strip() == "1"
        listed = pv("net-list", "--json").out
        assert '"active": true' in listed
        uuid = pv("net-uuid", "default").out.strip()
        assert pv("net-name", uuid).out.strip() == "default"
        assert "Forward:" in pv("net-info", "default").out
        res = pv("net-start", "default", check=False)
        assert res.rc == 1 and "already active" in res.err
        pv("net-destroy", "default")
        assert _leftovers(pv, "virbr0") == []
        pv("net-autostart", "default", "--disable")
        assert "no" in pv("net-info", "default").out.split("Autostart:")[1].split()[0]


@pytest.mark.parametrize("when", ["bridge", "dnsmasq"])
def test_sigkill_during_net_start(state_root: Path, when: str) -> None:
    with netns() as ns:
        pv = NsPyvirt(state_root, ns)
        pv("net-list")  # defines 'default'
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *PYVIRT, "net-start", "default"], env=pv.env
        )
        probe = (
            "test -e /sys/class/net/virbr0"
            if when == "bridge"
            else f"test -s {state_root}/run/network/default/dnsmasq.pid"
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            if subprocess.run(["ip", "netns", "exec", ns, "sh", "-c", probe]).returncode == 0:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # whatever the kill interrupted, net-destroy removes every piece
        pv("net-destroy", "default", check=False)
        assert _leftovers(pv, "virbr0") == []
        assert not (state_root / "run" / "network" / "default.json").exists()
        # and the network starts cleanly afterwards
        pv("net-start", "default")
        pv("net-destroy", "default")
        assert _leftovers(pv, "virbr0") == []


def test_bad_input(state_root: Path, tiny_image: Any) -> None:
    with netns() as ns:
        pv = NsPyvirt(state_root, ns)
        pv("net-list")
        before = pv.snapshot()
        cases = [
            (NET.format(name="ov", br="br-ov", net="192.168.122", end="192.168.122.9"),
             "overlaps 192.168.122.0/24 of network 'default'"),
            (NET.format(name="rg", br="br-rg", net="10.5.0", end="10.6.0.9"),
             "outside the subnet 10.5.0.0/24"),
            (NET.format(name="lb", br="averyverylongbridge", net="10.7.0", end="10.7.0.9"),
             "bridge name 'averyverylongbridge' must be 1-15 characters"),
            (NET.format(name="bm", br="br-bm", net="10.8.0", end="10.8.0.9").replace(
                "</dhcp>", "<host mac='52:54:zz:00:00:01' ip='10.8.0.5'/></dhcp>"),
             "MAC address '52:54:zz:00:00:01' is not valid"),
        ]  # fmt: skip
        for xml, message in cases:
            res = pv("net-define", _write(pv, "bad", xml), check=False)
            assert res.rc == 1 and message in res.err, res.err
        assert pv.snapshot() == before
        # a bridge already on the host, and a host route over the subnet: refused at start
        pv.sh(
            "ip link add inuse0 type bridge; ip link add vx0 type veth peer name vx1;"
            " ip addr add 10.99.0.1/16 dev vx0; ip link set vx1 up; ip link set vx0 up"
        )
        pv("net-define", _write(pv, "u", NET.format(name="u", br="inuse0", net="10.9.0",
                                                    end="10.9.0.9")))  # fmt: skip
        res = pv("net-start", "u", check=False)
        assert res.rc == 1 and "bridge 'inuse0' of network 'u' is already in use" in res.err
        assert "inuse0" in pv.sh("ls /sys/class/net")  # the host's bridge is untouched
        assert _leftovers(pv, "nothing") == [] and "inactive" in pv("net-list", "--all").out
        pv("net-define", _write(pv, "r", NET.format(name="r", br="br-r", net="10.99.1",
                                                    end="10.99.1.9")))  # fmt: skip
        res = pv("net-start", "r", check=False)
        assert res.rc == 1 and "overlaps the host route 10.99.0.0/16" in res.err
        assert _leftovers(pv, "br-r") == []
        # NIC MACs: invalid, and already used by another domain
        define(pv, guest_xml(tiny_image, "d1", ""), "d1")
        res = pv("attach-interface", "d1", "network", "default", "--mac", "52:54:00:zz:00:01",
                 "--config", check=False)  # fmt: skip
        assert res.rc == 1 and "MAC address '52:54:00:zz:00:01' is not valid" in res.err
        pv("attach-interface", "d1", "network", "default", "--mac", "52:54:00:cc:00:01",
           "--config")  # fmt: skip
        assert "52:54:00:cc:00:01" in pv("domiflist", "d1", "--inactive").out
        res = pv("attach-interface", "d1", "network", "default", "--mac", "52:54:00:cc:00:01",
                 "--config", check=False)  # fmt: skip
        assert res.rc == 1 and "already used" in res.err
        res = pv("net-undefine", "nosuch", check=False)
        assert res.rc == 1 and "network 'nosuch' not found" in res.err
