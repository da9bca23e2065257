"""Device XML on a running tiny guest, through the real CLI: a disk, a NIC, an RNG and a
watchdog come and go in the guest's /sys (update-device takes the NIC's link down); a
controller is refused live and added with --config only to the definition; the guest reads a
CD-ROM's medium change; send-key reaches the guest's keyboard controller; desc/metadata
round-trip; domblkerror and domcontrol on a healthy guest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_disks import guest, guest_disks, wait_new_disk
from tests.integration.test_lifecycle import domain_xml, wait_for, wait_marker

pytestmark = pytest.mark.qemu

MiB = 1024 * 1024
MAC = "52:54:00:de:71:01"


def medium(path: Path, marker: str) -> Path:
    """A 64 KiB CD-ROM medium that starts with *marker*."""
    path.write_bytes(marker.encode().ljust(64 * 1024, b"\0"))
    return path


def xml_file(pv: Pyvirt, name: str, text: str) -> str:
    path = pv.root / name
    path.write_text(text)
    return str(path)


def cdrom_reads(pv: Pyvirt) -> str:
    """The first bytes of the guest's CD-ROM medium, or NOMEDIUM."""
    out = guest(pv, "x1", "dd if=/dev/sr0 bs=2048 count=1 2>/dev/null | head -c 8 || true; echo")
    return out.strip().strip("\0") or "NOMEDIUM"


def key_irqs(pv: Pyvirt) -> int:
    """Interrupts the guest's i8042 keyboard port (IRQ 1) has taken."""
    line = guest(pv, "x1", "grep '^ *1:' /proc/interrupts").split()
    return int(line[1])


def test_device_xml_on_a_running_guest(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disc_a = medium(pyvirt.root / "a.img", "DISC-AAA")
    disc_b = medium(pyvirt.root / "b.img", "DISC-BBB")
    cdrom = (
        f"<disk type='file' device='cdrom'><source file='{disc_a}'/>"
        "<target dev='hdc' bus='ide'/><readonly/></disk>"
    )
    path = pyvirt.root / "x1.xml"
    path.write_text(domain_xml(tiny_image, "x1", extra_devices=cdrom))
    pyvirt("define", str(path))
    pyvirt("start", "x1")
    wait_marker(pyvirt, "x1")

    # a disk and a NIC from XML: the guest sees them come and go
    img = pyvirt.root / "vdb.raw"
    img.write_bytes(bytes(9 * MiB))
    disk = xml_file(
        pyvirt, "disk.xml", f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{img}'/><target dev='vdb' bus='virtio'/></disk>",
    )  # fmt: skip
    before = guest_disks(pyvirt, "x1")
    assert pyvirt("attach-device", "x1", disk, "--live").out == "Device attached successfully\n\n"
    dev = wait_new_disk(pyvirt, "x1", before, 9 * MiB)
    pyvirt("detach-device", "x1", disk, "--live")
    wait_for(lambda: dev not in guest_disks(pyvirt, "x1"), 30, "the disk to leave the guest")
    nic = xml_file(pyvirt, "nic.xml", f"<interface type='user'><mac address='{MAC}'/>"
                   "<model type='virtio'/></interface>")  # fmt: skip
    macs = "cat /sys/class/net/*/address"
    pyvirt("attach-device", "x1", nic)  # --current: live on a running guest
    wait_for(lambda: MAC in guest(pyvirt, "x1", macs), 30, "the NIC in the guest")
    assert MAC not in pyvirt("dumpxml", "x1", "--inactive").out
    carrier = (
        f"d=$(grep -l {MAC} /sys/class/net/*/address); d=${{d%/address}}; "
        "ip link set ${d##*/} up; cat $d/carrier"
    )
    wait_for(lambda: guest(pyvirt, "x1", carrier).strip() == "1", 10, "the NIC's link up")
    down = nic.replace(".xml", "-down.xml")
    Path(down).write_text(Path(nic).read_text().replace("<model", "<link state='down'/><model"))
    pyvirt("update-device", "x1", down)
    wait_for(lambda: guest(pyvirt, "x1", carrier).strip() == "0", 10, "the NIC's link down")
    pyvirt("detach-device", "x1", nic, "--live")
    wait_for(lambda: MAC not in guest(pyvirt, "x1", macs), 30, "the NIC to leave the guest")

    # an RNG through the generic path (the argv builder's lowering, object + device)
    rng = xml_file(pyvirt, "rng.xml", "<rng model='virtio'><backend model='builtin'/></rng>")
    avail = "cat /sys/class/misc/hw_random/rng_available 2>/dev/null; echo"
    pyvirt("attach-device", "x1", rng, "--live")
    wait_for(lambda: "virtio_rng" in guest(pyvirt, "x1", avail), 30, "the RNG in the guest")
    assert "<alias name='rng0'/>" in pyvirt("dumpxml", "x1").out
    pyvirt("detach-device", "x1", rng, "--live")
    wait_for(lambda: "virtio_rng" not in guest(pyvirt, "x1", avail), 30, "the RNG to leave")

    # a watchdog: the guest sees the i6300esb PCI function (8086:25ab)
    wdt = xml_file(pyvirt, "wdt.xml", "<watchdog model='i6300esb' action='reset'/>")
    pci = "cat /sys/bus/pci/devices/*/device"
    pyvirt("attach-device", "x1", wdt, "--live")
    wait_for(lambda: "0x25ab" in guest(pyvirt, "x1", pci), 20, "the watchdog in the guest")
    pyvirt("detach-device", "x1", wdt, "--live")
    wait_for(lambda: "0x25ab" not in guest(pyvirt, "x1", pci), 30, "the watchdog to leave")

    # a controller: refused live with the reason, accepted with --config (definition only)
    ctl = xml_file(pyvirt, "ctl.xml", "<controller type='scsi' index='3' model='virtio-scsi'/>")
    res = pyvirt("attach-device", "x1", ctl, "--live", check=False)
    assert res.rc == 1 and "cannot hot-plug controllers" in res.err
    pyvirt("attach-device", "x1", ctl, "--config")
    assert "index='3'" in pyvirt("dumpxml", "x1", "--inactive").out
    assert "index='3'" not in pyvirt("dumpxml", "x1").out
    pyvirt("detach-device", "x1", ctl, "--config")
    assert "index='3'" not in pyvirt("dumpxml", "x1", "--inactive").out

    # change-media: the guest reads the medium change
    assert cdrom_reads(pyvirt) == "DISC-AAA"
    assert pyvirt("change-media", "x1", "hdc", "--eject").out == "Successfully ejected media.\n"
    assert cdrom_reads(pyvirt) == "NOMEDIUM"
    assert f"{disc_a}" in pyvirt("dumpxml", "x1", "--inactive").out  # --current: live only
    out = pyvirt("change-media", "x1", "hdc", str(disc_b), "--insert").out
    assert out == "Successfully inserted media.\n"
    wait_for(lambda: cdrom_reads(pyvirt) == "DISC-BBB", 20, "the new medium in the guest")
    res = pyvirt("change-media", "x1", "hdc", str(disc_a), "--insert", check=False)
    assert res.rc == 1 and "already has media" in res.err

    # send-key reaches the guest's keyboard controller (its IRQ 1 fires)
    irqs = key_irqs(pyvirt)
    pyvirt("send-key", "x1", "KEY_A")
    pyvirt("send-key", "x1", "--codeset", "usb", "--holdtime", "50", "4")
    wait_for(lambda: key_irqs(pyvirt) >= irqs + 4, 10, "key interrupts in the guest")
    res = pyvirt("send-key", "x1", "KEY_NOPE", check=False)
    assert res.rc == 1 and "invalid keycode" in res.err

    # desc and metadata round-trip; the live and config sides are separate
    pyvirt("desc", "x1", "--new-desc", "web front end")
    pyvirt("desc", "x1", "--title", "--config", "--new-desc", "Web 1")
    assert pyvirt("desc", "x1").out == "web front end\n"
    assert pyvirt("desc", "x1", "--config").out == "No description for domain: x1\n"
    assert pyvirt("desc", "x1", "--title", "--config").out == "Web 1\n"
    uri = "http://example.org/app1/"
    out = pyvirt("metadata", "x1", uri, "--key", "app1", "--set", "<owner team='ops'>ann</owner>")
    assert out.out == "Metadata modified\n"
    got = pyvirt("metadata", "x1", uri).out
    assert "<app1:owner" in got and "team='ops'" in got.replace('"', "'") and ">ann<" in got
    pyvirt("metadata", "x1", uri, "--remove")
    res = pyvirt("metadata", "x1", uri, check=False)
    assert res.rc == 1 and "metadata not found" in res.err

    # a healthy guest
    assert pyvirt("domblkerror", "x1").out == "No errors found\n"
    assert pyvirt("domcontrol", "x1").out == "ok\n"
