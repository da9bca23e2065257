"""``<interface type='direct'>`` (macvtap) with a tiny guest, inside network namespaces the test
creates: namespace A holds the veth end ``vA`` the macvtap sits on, namespace B the peer ``vB``
with 10.99.0.1/24; the guest pings it through the macvtap."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.integration.nethelp import NsPyvirt, define, guest_xml, netns, wait_run

pytestmark = pytest.mark.qemu

PING = "ip addr add 10.99.0.2/24 dev eth0; ip link set eth0 up; ping -c 3 -W 2 10.99.0.1"


def direct_nic(dev: str, mac: str = "52:54:00:dd:00:01") -> str:
    """An ``<interface type='direct'>`` on host interface ``dev`` in bridge mode."""
    return (
        f"<interface type='direct'><mac address='{mac}'/><source dev='{dev}' mode='bridge'/>"
        "<model type='virtio'/></interface>"
    )


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, timeout=30)


@contextmanager
def peer_netns(ns_a: str) -> Iterator[str]:
    """Namespace B with ``vB`` (10.99.0.1/24), the veth peer of ``vA`` in ``ns_a``."""
    ns_b = f"pvt{uuid.uuid4().hex[:8]}"
    ip("netns", "add", ns_b)
    try:
        ip("-n", ns_a, "link", "add", "vA", "type", "veth", "peer", "name", "vB")
        ip("-n", ns_a, "link", "set", "vB", "netns", ns_b)
        ip("-n", ns_a, "link", "set", "vA", "up")
        ip("-n", ns_b, "addr", "add", "10.99.0.1/24", "dev", "vB")
        ip("-n", ns_b, "link", "set", "vB", "up")
        yield ns_b
    finally:
        subprocess.run(["ip", "netns", "del", ns_b], check=False)


def macvtaps(pv: NsPyvirt) -> list[str]:
    return [x for x in pv.sh("ls /sys/class/net").split() if x.startswith("pm")]


def test_direct_macvtap_guest_pings_peer(state_root: Path, tiny_image: Any) -> None:
    with netns() as ns, peer_netns(ns):
        pv = NsPyvirt(state_root, ns)
        define(pv, guest_xml(tiny_image, "gd", direct_nic("vA"), run=PING, dhcp=False), "gd")
        pv("start", "gd")
        links = macvtaps(pv)
        assert len(links) == 1, links
        assert "macvtap mode bridge" in pv.sh(f"ip -d link show {links[0]}")
        assert "vA" in pv.sh(f"ip link show {links[0]}")
        rc, out = wait_run(pv, "gd")
        assert rc == 0, f"the guest could not ping 10.99.0.1 through the macvtap: {out}"
        assert " 0% packet loss" in out
        iflist = pv("domiflist", "gd").out
        assert links[0] in iflist and "direct" in iflist and "52:54:00:dd:00:01" in iflist
        pv("destroy", "gd")
        assert macvtaps(pv) == []
        # the cached start plan names the same fixed fd: a second start works as well
        pv("start", "gd")
        assert len(macvtaps(pv)) == 1
        assert "fd=100" in (state_root / "run" / "qemu" / "gd" / "runtime.json").read_text()
        pv("destroy", "gd")
        assert macvtaps(pv) == []

        # a parent device that does not exist: a clear error, nothing left running
        define(pv, guest_xml(tiny_image, "gm", direct_nic("nope0", "52:54:00:dd:00:02")), "gm")
        res = pv("start", "gm", check=False)
        assert res.rc == 1 and "host interface 'nope0'" in res.err, res.err
        assert "Traceback" not in res.err
        assert "shut off" in pv("domstate", "gm").out
        assert macvtaps(pv) == []
        assert not (state_root / "run" / "qemu" / "gm").exists()
