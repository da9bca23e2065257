"""``<disk>`` fields and editing."""

from __future__ import annotations

from pyvirt.model import Address, Disk, Domain

from .helpers import MINIMAL, read_case


def test_disk_fields() -> None:
    disks = Domain.from_xml(read_case("disks")).devices.disks
    root, data, net, vol, cdrom, floppy, lun = disks
    assert (root.type, root.device, root.driver_name, root.format) == (
        "file", "disk", "qemu", "qcow2",
    )  # fmt: skip
    assert (root.cache, root.io, root.discard, root.detect_zeroes) == (
        "none", "native", "unmap", "unmap",
    )  # fmt: skip
    assert root.source_path == root.source_file == "/var/lib/pyvirt/images/root.qcow2"
    assert (root.target_dev, root.target_bus, root.boot_order) == ("vda", "virtio", 1)
    assert (root.serial, root.alias) == ("ROOT-0001", "ua-root")
    assert root.address is not None
    assert (root.address.type, root.address.slot) == ("pci", "0x04")
    assert (data.source_dev, data.source_path, data.rotation_rate) == (
        "/dev/vg0/data", "/dev/vg0/data", 7200,
    )  # fmt: skip
    assert (data.error_policy, data.rerror_policy, data.copy_on_read) == ("stop", "report", "on")
    assert data.shareable and not data.readonly
    assert (data.wwn, data.vendor, data.product) == ("5000c50015ea71ad", "PYVIRT", "DATA DISK")
    assert data.address is not None
    assert (data.address.controller, data.address.unit) == ("0", "0")
    assert (net.source_protocol, net.source_name) == ("rbd", "pool/image")
    assert net.source_hosts == [("mon1.example.org", 6789), ("mon2.example.org", None)]
    assert net.source_path is None
    assert (vol.source_pool, vol.source_volume, vol.cache) == (
        "default",
        "scratch.qcow2",
        "writeback",
    )
    assert cdrom.device == "cdrom" and cdrom.readonly and cdrom.boot_order == 2
    assert floppy.target_bus == "fdc" and floppy.driver_name is None
    assert lun.device == "lun"
    ctrls = Domain.from_xml(read_case("disks")).devices.controllers
    assert [(c.type, c.index, c.model) for c in ctrls] == [
        ("scsi", 0, "virtio-scsi"),
        ("ide", 0, None),
        ("usb", 0, "qemu-xhci"),
        ("pci", 0, "pci-root"),
        ("virtio-serial", 0, None),
        ("sata", 0, None),
    ]
    assert ctrls[0].driver_queues == 4 and ctrls[2].ports == 8


def test_add_disk_in_place() -> None:
    d = Domain.from_xml(MINIMAL)
    disk = Disk(type="block", device="disk", target_dev="vdb", target_bus="virtio")
    disk.source_path = "/dev/sdb"
    disk.cache = "none"
    disk.boot_order = 2
    disk.address = Address(type="pci", domain="0x0000", bus="0x00", slot="0x05", function="0x0")
    d.devices.add(disk)
    assert d.validate() == []
    assert (
        "    <disk type='block' device='disk'>\n"
        "      <driver cache='none'/>\n"
        "      <source dev='/dev/sdb'/>\n"
        "      <target dev='vdb' bus='virtio'/>\n"
        "      <boot order='2'/>\n"
        "      <address type='pci' domain='0x0000' bus='0x00' slot='0x05' function='0x0'/>\n"
        "    </disk>\n"
        "  </devices>\n"
    ) in d.to_xml()
    assert [x.target_dev for x in Domain.from_xml(d.to_xml()).devices.disks] == ["vda", "vdb"]


def test_edit_and_remove_disk() -> None:
    d = Domain.from_xml(read_case("disks"))
    root = d.devices.disks[0]
    root.cache = None
    root.io = None
    root.discard = None
    root.detect_zeroes = None
    root.serial = None
    root.source_file = "/var/lib/pyvirt/images/new.qcow2"
    d.devices.remove(d.devices.disks[1])
    d.devices.disks[1].source_hosts = [("mon3", 3300)]
    xml = d.to_xml()
    assert "<driver name='qemu' type='qcow2'/>" in xml
    assert "ROOT-0001" not in xml and "/dev/vg0/data" not in xml
    d2 = Domain.from_xml(xml)
    assert len(d2.devices.disks) == 6
    assert d2.devices.disks[0].source_path == "/var/lib/pyvirt/images/new.qcow2"
    assert d2.devices.disks[1].source_hosts == [("mon3", 3300)]


def test_dropping_last_driver_attr_drops_element() -> None:
    d = Domain.from_xml(MINIMAL)
    disk = d.devices.disks[0]
    disk.cache = "unsafe"
    assert "<driver cache='unsafe'/>" in d.to_xml()
    disk.cache = None
    assert "<driver" not in d.to_xml()
    assert d.to_xml() == Domain.from_xml(MINIMAL).to_xml()


def test_readonly_flag() -> None:
    d = Domain.from_xml(MINIMAL)
    d.devices.disks[0].readonly = True
    assert "      <readonly/>\n    </disk>" in d.to_xml()
    d.devices.disks[0].readonly = False
    assert "readonly" not in d.to_xml()
