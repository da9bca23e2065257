"""Every device of a running domain carries, in the live XML, the alias the argv builder gave
it; so a NIC hot-plugged next to a boot NIC of the same type gets a free QEMU id (no
"Duplicate ID 'hostnet0'") and the guest sees both."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.nethelp import guest_xml, shell, wait_for

pytestmark = pytest.mark.qemu

BOOT_NIC = (
    "<interface type='user'><mac address='52:54:00:cc:00:01'/><model type='virtio'/></interface>"
)


def test_user_nic_hotplug_next_to_a_boot_user_nic(pyvirt: Pyvirt, tiny_image: Any) -> None:
    path = pyvirt.root / "a1.xml"
    path.write_text(guest_xml(tiny_image, "a1", BOOT_NIC, dhcp=False))
    pyvirt("define", str(path))
    pyvirt("start", "a1")
    wait_for(lambda: "eth0" in shell(pyvirt, "a1", "ls /sys/class/net"), 90, "eth0 in a1")
    live = pyvirt("dumpxml", "a1").out
    assert re.search(r"<mac address='52:54:00:cc:00:01'/>.*?<alias name='net0'/>", live, re.S)
    assert "<alias name='serial0'/>" in live
    assert "<alias" not in pyvirt("dumpxml", "a1", "--inactive").out

    pyvirt("attach-interface", "a1", "user", "none", "--model", "virtio",
           "--mac", "52:54:00:cc:00:02", "--live")  # fmt: skip
    iflist = pyvirt("domiflist", "a1").out
    assert "52:54:00:cc:00:01" in iflist and "52:54:00:cc:00:02" in iflist
    assert re.search(
        r"52:54:00:cc:00:02'/>.*?<alias name='net1'/>", pyvirt("dumpxml", "a1").out, re.S
    )
    wait_for(lambda: "eth1" in shell(pyvirt, "a1", "ls /sys/class/net"), 60, "eth1 in a1")
    macs = shell(pyvirt, "a1", "cat /sys/class/net/eth*/address")
    assert "52:54:00:cc:00:01" in macs and "52:54:00:cc:00:02" in macs

    # a live XML without aliases (written by an older pyvirt): QEMU's own ids are consulted
    live_xml = pyvirt.root / "run" / "qemu" / "a1" / "domain.xml"
    live_xml.write_text(re.sub(r"<alias name='[^']*'/>", "", live_xml.read_text()))
    pyvirt("attach-interface", "a1", "user", "none", "--mac", "52:54:00:cc:00:03", "--live")
    assert re.search(
        r"52:54:00:cc:00:03'/>.*?<alias name='net2'/>", pyvirt("dumpxml", "a1").out, re.S
    )
    pyvirt("detach-interface", "a1", "user", "--mac", "52:54:00:cc:00:03", "--live")
    iflist = pyvirt("domiflist", "a1").out
    assert "52:54:00:cc:00:01" in iflist and "52:54:00:cc:00:02" in iflist
    assert "52:54:00:cc:00:03" not in iflist
    assert "eth2" not in shell(pyvirt, "a1", "ls /sys/class/net")
    pyvirt("destroy", "a1")
