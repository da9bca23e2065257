"""A q35 guest as libvirt builds it, booted under TCG: define writes a root port per PCIe device
into the definition, the guest finds its virtio disk and NIC behind those ports, a disk and a
NIC hot-plug onto the spare ports, a third device is refused when none is left, and an unplug
frees its port."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import guest, guest_disks, wait_new_disk
from tests.integration.test_lifecycle import domain_xml, wait_for, wait_marker

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024
MAC = "52:54:00:35:00:01"
HOT_MAC = "52:54:00:35:00:02"
#: bus numbers of the guest's PCI-to-PCI bridges (root ports are bridges to the guest)
BRIDGES = "grep -l 0x0604 /sys/bus/pci/devices/*/class | wc -l"


def macs(pv: Pyvirt) -> str:
    return guest(pv, "q1", "cat /sys/class/net/*/address")


def test_q35_root_ports_boot_and_hotplug(pyvirt: Pyvirt, tiny_image: Any) -> None:
    img = pyvirt.root / "vda.raw"
    img.write_bytes(bytes(11 * MiB))
    devices = (
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{img}'/><target dev='vda' bus='virtio'/></disk>"
        f"<interface type='user'><mac address='{MAC}'/><model type='virtio'/></interface>"
        # six explicit root ports: the NIC, the USB controller, the disk and the balloon
        # (a default, as in libvirt) take four
        + "<controller type='pci' model='pcie-root-port'/>"
        * 6
    )
    xml = domain_xml(tiny_image, "q1", extra_devices=devices)
    xml = xml.replace("machine='pc'", "machine='q35'")
    path = pyvirt.root / "q1.xml"
    path.write_text(xml)
    pyvirt("define", str(path))

    # define wrote the topology: pcie-root, root ports with libvirt's numbers, addresses
    stored = pyvirt("dumpxml", "q1", "--inactive").out
    assert "<controller type='pci' index='0' model='pcie-root'/>" in stored
    assert stored.count("model='pcie-root-port'") == 6  # enough already: none added
    assert "<target chassis='1' port='0x8'/>" in stored
    assert "<controller type='usb' index='0' model='qemu-xhci'>" in stored
    assert re.search(r"<target dev='vda' bus='virtio'/>\s*<address type='pci' domain='0x0000' "
                     r"bus='0x0[1-5]' slot='0x00' function='0x0'/>", stored)  # fmt: skip

    pyvirt("start", "q1")
    wait_marker(pyvirt, "q1")
    # the guest sees the disk (its size), the NIC (its MAC) and the six root ports
    disks = guest_disks(pyvirt, "q1")
    assert disks.get("vda") == 11 * MiB
    assert MAC in macs(pyvirt)
    assert int(guest(pyvirt, "q1", BRIDGES).strip()) == 6
    # vda sits behind a root port: two PCI functions on its sysfs path
    path_of_vda = guest(pyvirt, "q1", "readlink -f /sys/block/vda")
    assert len(re.findall(r"0000:0[0-9a-f]:[0-9a-f]{2}\.\d", path_of_vda)) >= 2, path_of_vda

    # hot-plug a disk and a NIC: each lands on an empty root port
    hot = pyvirt.root / "vdb.raw"
    hot.write_bytes(bytes(9 * MiB))
    pyvirt("attach-disk", "q1", str(hot), "vdb", "--live")
    dev = wait_new_disk(pyvirt, "q1", disks, 9 * MiB)
    pyvirt("attach-interface", "q1", "user", "none", "--model", "virtio",
           "--mac", HOT_MAC, "--live")  # fmt: skip
    wait_for(lambda: HOT_MAC in macs(pyvirt), 40, "the hot-plugged NIC in the guest")
    live = pyvirt("dumpxml", "q1").out
    buses = re.findall(r"<address type='pci' domain='0x0000' bus='(0x0[1-9a-f])' slot='0x00'", live)
    assert len(buses) == len(set(buses)) == 6, live  # six devices, six ports, no sharing

    # no empty port left: a third device is refused, with the hint
    extra = pyvirt.root / "vdc.raw"
    extra.write_bytes(bytes(MiB))
    refused = pyvirt("attach-disk", "q1", str(extra), "vdc", "--live", check=False)
    assert refused.rc != 0
    assert "no empty PCIe root port" in refused.err and "pcie-root-port" in refused.err

    # unplug the disk: it leaves the guest, and its port takes the next device
    pyvirt("detach-disk", "q1", "vdb", "--live")
    wait_for(lambda: dev not in guest_disks(pyvirt, "q1"), 40, "the disk to leave the guest")
    left = guest_disks(pyvirt, "q1")
    pyvirt("attach-disk", "q1", str(extra), "vdc", "--live")
    wait_new_disk(pyvirt, "q1", left, MiB)
    pyvirt("destroy", "q1")
