"""libvirt's defaults filled at define (:mod:`pyvirt.model.defaults`)."""

from __future__ import annotations

import random

from pyvirt.model.defaults import fill_defaults
from pyvirt.model.domain import Domain

XML = """<domain type='qemu'>
  <name>d1</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices>
    <disk type='file' device='disk'><source file='/tmp/a.img'/><target dev='vda'/></disk>
    <disk type='file' device='cdrom'><target dev='hdc'/></disk>
    <interface type='user'/>
    <interface type='user'><mac address='52:54:00:00:00:01'/></interface>
    <serial type='pty'/>
    <graphics type='vnc'/>
  </devices>
  <clock offset='localtime'/>
</domain>"""


def filled(xml: str = XML, **kw: object) -> Domain:
    dom = Domain.from_xml(xml)
    fill_defaults(dom, rng=random.Random(7), **kw)  # type: ignore[arg-type]
    return dom


def test_what_libvirt_fills() -> None:
    dom = filled(machine_aliases={"pc": "pc-i440fx-7.2"})
    assert (dom.os.arch, dom.os.machine, dom.os.boot_devs) == ("x86_64", "pc-i440fx-7.2", ["hd"])
    assert (dom.on_poweroff, dom.on_reboot, dom.on_crash) == ("destroy", "restart", "destroy")
    assert dom.current_memory_kib == 256 * 1024 and dom.clock.offset == "localtime"
    assert dom.cpu is not None and (dom.cpu.mode, dom.cpu.model) == ("custom", "qemu64")
    macs = [i.mac for i in dom.devices.interfaces]
    assert macs[1] == "52:54:00:00:00:01" and str(macs[0]).startswith("52:54:00:")
    disks = dom.devices.disks
    assert [(d.target_bus, d.format) for d in disks] == [("virtio", "raw"), ("ide", "raw")]
    ctls = [(c.type, c.index, c.model) for c in dom.devices.controllers]
    assert ctls == [("usb", 0, "piix3-uhci"), ("ide", 0, None), ("pci", 0, "pci-root")]
    serial, console = dom.devices.serials[0], dom.devices.consoles[0]
    assert (serial.target_type, serial.target_port, serial.target_model) == (
        "isa-serial",
        0,
        "isa-serial",
    )
    assert (console.type, console.target_type, console.target_port) == ("pty", "serial", 0)
    assert [(i.type, i.bus) for i in dom.devices.inputs] == [("mouse", "ps2"), ("keyboard", "ps2")]
    assert dom.devices.videos[0].model_type == "cirrus" and dom.devices.videos[0].primary
    assert dom.devices.memballoon is not None and dom.devices.memballoon.model == "virtio"
    # libvirt's order: <clock> after <os>, the devices by kind
    tags = [str(c.tag) for c in dom.element]
    assert tags.index("os") < tags.index("cpu") < tags.index("clock") < tags.index("devices")
    kinds = [str(c.tag) for c in dom.devices.element]
    rank = ["disk", "controller", "interface", "serial", "console", "input", "graphics", "audio",
            "video", "memballoon"]  # fmt: skip
    assert kinds == sorted(kinds, key=rank.index)


def test_filling_twice_changes_nothing() -> None:
    once = filled().to_xml()
    again = Domain.from_xml(once)
    fill_defaults(again, rng=random.Random(8))
    assert again.to_xml() == once


def test_q35_and_a_console_alone() -> None:
    xml = XML.replace("<type>hvm</type>", "<type machine='q35'>hvm</type>").replace(
        "<serial type='pty'/>", "<console type='pty'/>"
    )
    dom = filled(xml.replace("<disk type='file' device='cdrom'><target dev='hdc'/></disk>", ""))
    ctls = {(c.type, c.model) for c in dom.devices.controllers}
    assert ctls == {("usb", "qemu-xhci"), ("sata", None), ("pci", "pcie-root")}
    assert [(s.type, s.target_type, s.target_port) for s in dom.devices.serials] == [
        ("pty", "isa-serial", 0)
    ]
