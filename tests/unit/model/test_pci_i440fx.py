"""i440fx PCI slots written at define (:func:`pyvirt.model.pcie.complete_i440fx`), as libvirt
assigns them; and the command line honours them."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.model.domain import Domain
from pyvirt.model.pcie import complete_i440fx, is_i440fx
from tests.unit.model.test_pcie import HEAD, addr, dom

DEVICES = """<disk type='file' device='disk'><source file='/tmp/b.img'/>
<target dev='vdb' bus='virtio'/></disk>
<disk type='file' device='disk'><source file='/tmp/a.img'/>
<target dev='vda' bus='virtio'/></disk>
<controller type='usb' index='0' model='piix3-uhci'/>
<controller type='ide' index='0'/>
<interface type='user'><mac address='52:54:00:00:00:01'/><model type='virtio'/></interface>
<graphics type='vnc'/><video><model type='cirrus' primary='yes'/></video>
<memballoon model='virtio'/>
<channel type='pty'><target type='virtio' name='org.example.0'/></channel>"""


def test_is_i440fx() -> None:
    assert is_i440fx("pc", "x86_64") and is_i440fx("pc-i440fx-7.2", None) and is_i440fx(None, None)
    assert not is_i440fx("pc-q35-7.2", "x86_64") and not is_i440fx("q35", None)
    assert not is_i440fx("virt", "aarch64") and not is_i440fx("isapc", "x86_64")


def test_slots_as_libvirt_assigns_them() -> None:
    d = dom(DEVICES, machine="pc")
    assert complete_i440fx(d)
    disks = {x.target_dev: addr(x) for x in d.devices.disks}
    ctls = {(c.type, c.index): c for c in d.devices.controllers}
    assert addr(d.devices.videos[0]) == (0, 2, 0)  # the primary video's reserved slot
    assert addr(ctls[("usb", 0)]) == (0, 1, 2) and addr(ctls[("ide", 0)]) == (0, 1, 1)
    assert addr(d.devices.interfaces[0]) == (0, 3, 0)  # NICs before disks
    assert addr(ctls[("virtio-serial", 0)]) == (0, 4, 0)  # added for the virtio channel
    assert disks == {"vda": (0, 5, 0), "vdb": (0, 6, 0)}  # disks by name
    assert addr(d.devices.memballoon) == (0, 7, 0)
    again = Domain.from_xml(d.to_xml())
    assert not complete_i440fx(again) and again.to_xml() == d.to_xml()


def test_explicit_addresses_stay_and_the_argv_honours_the_stored_ones(tmp_path: Path) -> None:
    devices = DEVICES.replace(
        "<memballoon model='virtio'/>",
        "<memballoon model='virtio'><address type='pci' domain='0x0000' bus='0x00' "
        "slot='0x03' function='0x0'/></memballoon>",
    )
    d = dom(devices, machine="pc")
    complete_i440fx(d)
    assert addr(d.devices.memballoon) == (0, 3, 0)
    assert addr(d.devices.interfaces[0]) == (0, 4, 0)
    argv = build_argv(d, ArgvContext(run_dir=tmp_path, log_dir=tmp_path))
    devs = {
        p.get("id"): (p.get("bus"), p.get("addr"))
        for opt, val in itertools.pairwise(argv)
        if opt == "-device" and val.startswith("{") and (p := json.loads(val))
    }
    assert devs["net0"] == ("pci.0", "0x4") and devs["balloon0"] == ("pci.0", "0x3")
    assert devs["usb"] == ("pci.0", "0x1.0x2") and devs["video0"] == ("pci.0", "0x2")


def test_a_full_root_bus_leaves_the_rest_to_the_builder() -> None:
    nics = "".join(
        f"<interface type='user'><mac address='52:54:00:00:01:{n:02x}'/>"
        "<model type='virtio'/></interface>"
        for n in range(32)
    )
    d = Domain.from_xml(HEAD.format(machine="pc", devices=nics))
    assert complete_i440fx(d)
    placed = [x for x in d.devices.interfaces if x.element.find("address") is not None]
    assert len(placed) == 30  # slots 2-31
    assert sorted(addr(x)[1] for x in placed) == list(range(2, 32))


def test_q35_is_left_alone() -> None:
    d = dom(machine="q35")
    assert not complete_i440fx(d)
