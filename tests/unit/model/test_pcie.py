"""q35 PCIe topology completion (:mod:`pyvirt.model.pcie`): root ports, numbering, addresses."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model.domain import Domain
from pyvirt.model.pcie import complete_domain, is_q35

HEAD = """<domain type='qemu'><name>g</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='{machine}'>hvm</type></os><devices>{devices}</devices></domain>"""

VIRTIO = """<disk type='file' device='disk'><source file='/tmp/a.img'/>
<target dev='vda' bus='virtio'/></disk>
<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
<memballoon model='virtio'/>"""


def dom(devices: str = VIRTIO, machine: str = "q35") -> Domain:
    return Domain.from_xml(HEAD.format(machine=machine, devices=devices))


def addr(el: object) -> tuple[int, int, int]:
    a = el.element.find("address")  # type: ignore[attr-defined]
    assert a is not None and a.get("type") == "pci"
    return int(a.get("bus"), 16), int(a.get("slot"), 16), int(a.get("function"), 16)


def ports(d: Domain) -> list[tuple[int, tuple[int, int, int], str, str]]:
    out = []
    for c in d.devices.controllers:
        if c.model == "pcie-root-port":
            t = c.element.find("target")
            assert t is not None
            out.append((c.index, addr(c), t.get("chassis"), t.get("port")))
    return out


def test_is_q35() -> None:
    assert is_q35("q35") and is_q35("pc-q35-7.2")
    assert not is_q35("pc") and not is_q35(None) and not is_q35("pc-i440fx-7.2")


def test_root_port_per_pcie_device_and_one_spare() -> None:
    d = dom()
    assert complete_domain(d)
    # NIC first, then the default USB controller, the disk, the balloon; one spare port
    assert [p[0] for p in ports(d)] == [1, 2, 3, 4, 5]
    assert ports(d)[0] == (1, (0, 1, 0), "1", "0x8")
    iface = d.devices.interfaces[0]
    usb = next(c for c in d.devices.controllers if c.type == "usb")
    assert usb.model == "qemu-xhci"
    assert [addr(iface)[0], addr(usb)[0], addr(d.devices.disks[0])[0]] == [1, 2, 3]
    assert d.devices.memballoon is not None and addr(d.devices.memballoon)[0] == 4
    # no video: the ports take slot 1 of pcie.0, eight functions to a slot
    assert [p[1] for p in ports(d)] == [(0, 1, f) for f in range(5)]
    assert [(p[2], p[3]) for p in ports(d)] == [(str(i), f"{8 + i - 1:#x}") for i in range(1, 6)]
    first = next(c for c in d.devices.controllers if c.model == "pcie-root-port")
    assert first.element.find("address").get("multifunction") == "on"  # type: ignore[union-attr]
    sata = next(c for c in d.devices.controllers if c.type == "sata")
    assert addr(sata) == (0, 0x1F, 2)
    assert any(c.model == "pcie-root" and c.index == 0 for c in d.devices.controllers)


def test_video_keeps_slot_1_and_ports_start_at_2() -> None:
    d = dom(VIRTIO + "<video><model type='virtio'/></video>")
    complete_domain(d)
    assert addr(d.devices.videos[0]) == (0, 1, 0)
    assert ports(d)[0][1:] == ((0, 2, 0), "1", "0x10")
    assert ports(d)[1][1:] == ((0, 2, 1), "2", "0x11")


def test_idempotent_and_pc_untouched() -> None:
    d = dom()
    complete_domain(d)
    xml = d.to_xml()
    assert not complete_domain(d)
    assert d.to_xml() == xml
    p = dom(machine="pc")
    before = p.to_xml()
    assert not complete_domain(p)
    assert p.to_xml() == before


def test_explicit_ports_used_first_no_spare_added() -> None:
    d = dom(VIRTIO + "<controller type='pci' model='pcie-root-port'/>" * 4)
    complete_domain(d)
    assert len(ports(d)) == 4  # three devices + one empty port already: nothing added
    assert sorted(addr(x)[0] for x in (d.devices.disks[0], d.devices.interfaces[0])) == [1, 3]


def test_explicit_address_kept_and_port_numbers_follow_it() -> None:
    d = dom(
        "<controller type='pci' index='0' model='pcie-root'/>"
        "<controller type='pci' index='7' model='pcie-root-port'>"
        "<address type='pci' bus='0x00' slot='0x05' function='0x3'/></controller>"
        "<disk type='file' device='disk'><source file='/tmp/a.img'/>"
        "<target dev='vda' bus='virtio'/>"
        "<address type='pci' domain='0x0000' bus='0x07' slot='0x00' function='0x0'/></disk>"
    )
    complete_domain(d)
    assert addr(d.devices.disks[0]) == (7, 0, 0)
    port7 = next(p for p in ports(d) if p[0] == 7)
    assert port7 == (7, (0, 5, 3), "7", "0x2b")


def test_legacy_pci_device_gets_a_pcie_to_pci_bridge() -> None:
    d = dom("<interface type='user'><model type='e1000'/></interface>")
    complete_domain(d)
    bridge = next(c for c in d.devices.controllers if c.model == "pcie-to-pci-bridge")
    assert addr(bridge)[1:] == (0, 0)
    assert addr(d.devices.interfaces[0]) == (bridge.index, 1, 0)


def test_address_on_a_missing_bus_is_refused_naming_the_element() -> None:
    d = dom(
        "<disk type='file' device='disk'><source file='/tmp/a.img'/>"
        "<target dev='vda' bus='virtio'/>"
        "<address type='pci' domain='0x0000' bus='0x09' slot='0x00' function='0x0'/></disk>"
    )
    with pytest.raises(InvalidConfigError, match=r"<disk>.*bus 0x09"):
        complete_domain(d)


def test_argv_puts_devices_behind_root_ports() -> None:
    from pathlib import Path

    from pyvirt.drivers.qemu.argv import ArgvContext, build_argv

    argv = " ".join(build_argv(dom(), ArgvContext(run_dir=Path("/r"), log_dir=Path("/l"))))
    port1 = next(a for a in argv.split() if '"id":"pci.1"' in a)
    assert '"port":8' in port1 and '"chassis":1' in port1 and '"multifunction":true' in port1
    assert '"driver":"virtio-blk-pci","bus":"pci.3","addr":"0x0"' in argv
    assert '"driver":"qemu-xhci","id":"usb","bus":"pci.2","addr":"0x0"' in argv


def test_switch_ports_placed_and_numbered_as_libvirt() -> None:
    d = dom(
        "<controller type='pci' model='pcie-root-port'/>"
        "<controller type='pci' model='pcie-switch-upstream-port'/>"
        "<controller type='pci' model='pcie-switch-downstream-port'/>"
        "<controller type='pci' model='pcie-switch-downstream-port'/>"
        "<disk type='file' device='disk'><source file='/tmp/a.img'/>"
        "<target dev='vda' bus='virtio'/></disk>"
    )
    complete_domain(d)
    by_model = {c.index: c for c in d.devices.controllers if c.type == "pci"}
    assert by_model[2].model == "pcie-switch-upstream-port" and addr(by_model[2]) == (1, 0, 0)
    assert [addr(by_model[i]) for i in (3, 4)] == [(2, 0, 0), (2, 1, 0)]
    target = by_model[4].element.find("target")
    assert target is not None and (target.get("chassis"), target.get("port")) == ("4", "0x1")
    # the downstream ports are PCIe ports: the USB controller and the disk take them
    assert addr(d.devices.disks[0])[0] == 4
    assert len([c for c in d.devices.controllers if c.model == "pcie-root-port"]) == 1
