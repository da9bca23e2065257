"""Interfaces, character devices, graphics, video, input, rng, hostdev and Devices editing."""

from __future__ import annotations

import pytest

from pyvirt.model import Chardev, Domain, Graphics, Hostdev, Interface, Rng, Serial
from pyvirt.model.xmlmap import to_string

from .helpers import MINIMAL, read_case


def test_interfaces() -> None:
    nics = Domain.from_xml(read_case("network")).devices.interfaces
    net, br, user, eth, direct, hostdev = nics
    assert (net.type, net.mac, net.model, net.source_network) == (
        "network", "52:54:00:6b:3c:58", "virtio", "default",
    )  # fmt: skip
    assert (net.driver_name, net.queues, net.mtu, net.boot_order, net.alias) == (
        "vhost", 4, 9000, 1, "ua-net0",
    )  # fmt: skip
    assert (br.source_bridge, br.target_dev, br.model, br.rom_bar) == (
        "br0", "vnet7", "e1000e", "off",
    )  # fmt: skip
    assert (user.type, user.rom_enabled, user.source_network) == ("user", False, None)
    assert (eth.target_dev, eth.target_managed, eth.mac) == ("tap-lab", False, None)
    assert (direct.source_dev, direct.source_mode) == ("eth0", "bridge")
    assert hostdev.managed is True
    assert hostdev.source_address is not None and hostdev.source_address.bus == "0x03"


def test_hostdev() -> None:
    (dev,) = Domain.from_xml(read_case("network")).devices.hostdevs
    assert (dev.mode, dev.type, dev.managed) == ("subsystem", "pci", True)
    assert (dev.pci_domain, dev.pci_bus, dev.pci_slot, dev.pci_function) == (0, 6, 2, 0)
    assert (dev.boot_order, dev.rom_bar, dev.rom_file) == (2, "on", "/srv/roms/nic.rom")
    assert dev.address is not None and dev.address.slot == "0x09"
    new = Hostdev(type="pci", managed=True, pci_domain=0, pci_bus=0x81, pci_slot=0, pci_function=1)
    assert to_string(new.element) == (
        "<hostdev type='pci' managed='yes'>\n"
        "  <source>\n"
        "    <address domain='0x0000' bus='0x81' slot='0x00' function='0x1'/>\n"
        "  </source>\n"
        "</hostdev>"
    )


def test_chardevs() -> None:
    devs = Domain.from_xml(read_case("chardev")).devices
    pty, file, tcp, udp = devs.serials
    assert (pty.kind, pty.type, pty.log_file, pty.log_append) == (
        "serial", "pty", "/var/log/pyvirt/console-lab.log", True,
    )  # fmt: skip
    assert (pty.target_type, pty.target_port, pty.target_model) == ("isa-serial", 0, "isa-serial")
    assert (file.source_path, file.source_append, file.target_port) == (
        "/var/log/pyvirt/serial1.log", False, 1,
    )  # fmt: skip
    assert (tcp.source_mode, tcp.source_host, tcp.source_service, tcp.protocol_type) == (
        "bind", "127.0.0.1", "4555", "telnet",
    )  # fmt: skip
    assert (udp.source_host, udp.source_service) == ("0.0.0.0", "9998")
    unix, null = devs.consoles
    assert (unix.kind, unix.type, unix.source_path, unix.target_type) == (
        "console", "unix", "/run/pyvirt/console-lab.sock", "virtio",
    )  # fmt: skip
    assert (null.type, null.target_port) == ("null", 1)
    agent, stdio = devs.channels
    assert (agent.kind, agent.target_name) == ("channel", "org.qemu.guest_agent.0")
    assert agent.address is not None and agent.address.port == "1"
    assert stdio.type == "stdio"


def test_graphics_video_input_rng() -> None:
    devs = Domain.from_xml(read_case("chardev")).devices
    vnc, spice, sock = devs.graphics
    assert (vnc.type, vnc.port, vnc.autoport, vnc.listen, vnc.keymap, vnc.passwd) == (
        "vnc", -1, True, "127.0.0.1", "en-us", "s3cret",
    )  # fmt: skip
    assert (spice.type, spice.port, spice.autoport, spice.listen) == (
        "spice", 5930, False, "0.0.0.0",
    )  # fmt: skip
    assert (sock.socket, sock.port, sock.autoport, sock.listen) == (
        "/run/pyvirt/vnc.sock", None, True, None,
    )  # fmt: skip
    qxl, virtio = devs.videos
    assert (qxl.model_type, qxl.vram, qxl.heads, qxl.primary) == ("qxl", 65536, 1, True)
    assert qxl.address is not None and qxl.address.slot == "0x02"
    assert (virtio.model_type, virtio.heads, virtio.primary) == ("virtio", 2, None)
    assert [(i.type, i.bus) for i in devs.inputs] == [("tablet", "usb"), ("keyboard", "ps2")]
    (rng,) = devs.rngs
    assert (rng.model, rng.backend_model, rng.backend_path) == ("virtio", "random", "/dev/urandom")


def test_graphics_listen_setter_updates_both_forms() -> None:
    d = Domain.from_xml(read_case("chardev"))
    vnc = d.devices.graphics[0]
    vnc.listen = "0.0.0.0"
    vnc.port = 5901
    vnc.autoport = False
    again = Domain.from_xml(d.to_xml()).devices.graphics[0]
    assert (again.listen, again.listens[0].address, again.port, again.autoport) == (
        "0.0.0.0", "0.0.0.0", 5901, False,
    )  # fmt: skip


def test_add_devices_in_canonical_order() -> None:
    d = Domain.from_xml(MINIMAL)
    d.devices.add(Rng(model="virtio", backend_model="random", backend_path="/dev/urandom"))
    d.devices.add(Serial(type="pty", target_port=0))
    d.devices.add(Chardev(kind="console", type="pty"))
    d.devices.add(Graphics(type="vnc", autoport=True, listen="127.0.0.1"))
    d.devices.add(Interface(type="user", mac="52:54:00:12:34:56", model="virtio"))
    d.devices.emulator = "/usr/bin/qemu-system-x86_64"
    assert [type(x).__name__ for x in d.devices] == [
        "Disk", "Interface", "Serial", "Console", "Graphics", "Rng",
    ]  # fmt: skip
    xml = d.to_xml()
    assert "  <devices>\n    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n    <disk" in xml
    assert d.validate() == []
    again = Domain.from_xml(xml)
    assert again.devices.consoles[0].kind == "console"
    assert again.devices.serials[0].target_port == 0
    assert again.to_xml() == xml


def test_remove_devices() -> None:
    d = Domain.from_xml(read_case("chardev"))
    for dev in d.devices.serials + d.devices.graphics:
        d.devices.remove(dev)
    xml = d.to_xml()
    assert "<serial" not in xml and "<graphics" not in xml
    assert xml.count("<console") == 2
    assert Domain.from_xml(xml).warnings == []


def test_remove_foreign_device_refused() -> None:
    d = Domain.from_xml(MINIMAL)
    other = Domain.from_xml(MINIMAL)
    with pytest.raises(ValueError, match="is not one of these devices"):
        d.devices.remove(other.devices.disks[0])


def test_unknown_devices_survive_editing() -> None:
    d = Domain.from_xml(read_case("unknown"))
    d.devices.remove(d.devices.disks[0])
    d.devices.add(Serial(type="pty"))
    xml = d.to_xml()
    assert xml.count("<watchdog") == 2 and "<tpm" in xml and "raw &lt;text&gt; &amp; more" in xml
    assert "<qemu:arg value='-no-hpet'/>" in xml
    assert "<!-- the watchdog is not modelled yet -->" in xml
