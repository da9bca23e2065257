"""``<filesystem>`` shares: the model, the 9p lowering as libvirt 9.0 writes it, the slot a
share gets at define, and what is refused (one line each, naming what)."""

from __future__ import annotations

import json

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import InvalidConfigError, PyvirtError, UnsupportedError
from pyvirt.model.devices import Filesystem
from pyvirt.model.domain import Domain
from pyvirt.model.pcie import complete_domain, complete_i440fx
from pyvirt.model.xmlmap import to_string
from tests.unit.model.test_pcie import addr, dom

SHARE = """<filesystem type='mount' accessmode='mapped'>
<driver type='path' wrpolicy='immediate'/><source dir='/srv/share'/><target dir='tag1'/>
<readonly/></filesystem>"""


def argv(devices: str, machine: str = "pc", head: str = "") -> list[str]:
    d = dom(devices, machine=machine)
    if head:
        d = Domain.from_xml(to_string(d.element).replace("<devices>", head + "<devices>", 1))
    return build_argv(d, ArgvContext.for_domain("g"))


def fs_args(args: list[str]) -> list[tuple[str, dict[str, object]]]:
    """(``-fsdev`` text, ``-device`` JSON) of each share."""
    out = []
    for i, arg in enumerate(args):
        if arg == "-fsdev":
            out.append((args[i + 1], json.loads(args[i + 3])))
    return out


def test_model_reads_and_writes_a_share() -> None:
    (fs,) = dom(SHARE, machine="pc").devices.filesystems
    assert (fs.type, fs.accessmode, fs.driver_type, fs.wrpolicy) == (
        "mount", "mapped", "path", "immediate",
    )  # fmt: skip
    assert (fs.source_dir, fs.target_dir, fs.readonly, fs.virtiofs) == (
        "/srv/share", "tag1", True, False,
    )  # fmt: skip
    new = Filesystem(type="mount", accessmode="passthrough", source_dir="/a", target_dir="t")
    new.readonly = True
    assert to_string(new.element) == (
        "<filesystem type='mount' accessmode='passthrough'>\n"
        "  <source dir='/a'/>\n  <target dir='t'/>\n  <readonly/>\n</filesystem>"
    )
    d = dom("", machine="pc")
    d.devices.add(new)
    assert d.devices.filesystems[0].source_dir == "/a"


def test_lowered_as_libvirt_does() -> None:
    ((fsdev, device),) = fs_args(argv(SHARE))
    assert fsdev == (
        "local,security_model=mapped,writeout=immediate,id=fsdev-fs0,path=/srv/share,readonly=on"
    )
    assert device == {"driver": "virtio-9p-pci", "id": "fs0", "fsdev": "fsdev-fs0",
                      "mount_tag": "tag1", "bus": "pci.0", "addr": "0x2"}  # fmt: skip


@pytest.mark.parametrize(("mode", "model"), [(None, "passthrough"), ("passthrough", "passthrough"),
                                             ("mapped", "mapped"), ("squash", "none")])  # fmt: skip
def test_accessmode_is_the_security_model(mode: str | None, model: str) -> None:
    attr = f" accessmode='{mode}'" if mode else ""
    xml = f"<filesystem{attr}><source dir='/s'/><target dir='t'/></filesystem>"
    ((fsdev, _),) = fs_args(argv(xml))
    assert fsdev.startswith(f"local,security_model={model},id=fsdev-fs0,path=/s")


def test_define_gives_a_share_its_slot_before_nics_and_disks() -> None:
    devices = (
        """<interface type='user'><mac address='52:54:00:00:00:01'/>
<model type='virtio'/></interface>"""
        + SHARE
    )
    d = dom(devices, machine="pc")
    assert complete_i440fx(d)
    assert addr(d.devices.filesystems[0]) == (0, 2, 0)
    assert addr(d.devices.interfaces[0]) == (0, 3, 0)
    q = dom(SHARE, machine="q35")
    complete_domain(q)
    bus, slot, _ = addr(q.devices.filesystems[0])
    assert bus > 0 and slot == 0  # a PCIe endpoint in a root port, as libvirt puts it
    ((_, device),) = fs_args(build_argv(q, ArgvContext.for_domain("g")))
    assert device["bus"] == f"pci.{bus}" and device["addr"] == "0x0"


@pytest.mark.parametrize(
    ("xml", "error", "words"),
    [
        ("<filesystem type='block'><source dev='/dev/sda'/><target dir='t'/></filesystem>",
         UnsupportedError, "filesystem type 'block' is not supported"),
        ("<filesystem type='ram'><source usage='1024'/><target dir='t'/></filesystem>",
         UnsupportedError, "filesystem type 'ram'"),
        ("<filesystem><driver type='handle'/><source dir='/s'/><target dir='t'/></filesystem>",
         UnsupportedError, "filesystem driver 'handle' is not supported"),
        ("<filesystem><source dir='rel/dir'/><target dir='t'/></filesystem>",
         InvalidConfigError, "source dir 'rel/dir' is not an absolute path"),
        ("<filesystem><source dir='/srv/../etc'/><target dir='t'/></filesystem>",
         InvalidConfigError, "must not contain '..'"),
        ("<filesystem><target dir='t'/></filesystem>", InvalidConfigError, "<source dir="),
        ("<filesystem><source dir='/s'/></filesystem>", InvalidConfigError, "<target dir='TAG'/>"),
        ("<filesystem fmode='999'><source dir='/s'/><target dir='t'/></filesystem>",
         InvalidConfigError, "fmode='999' is not an octal file mode"),
        ("<filesystem><driver type='virtiofs'/><source dir='/s'/><target dir='t'/></filesystem>",
         InvalidConfigError, "virtiofs needs the guest's memory shared"),
    ],
)  # fmt: skip
def test_refused_in_one_line(xml: str, error: type[PyvirtError], words: str) -> None:
    with pytest.raises(error) as info:
        argv(xml)
    assert words in str(info.value) and "\n" not in str(info.value)


def test_virtiofs_as_libvirt_writes_it() -> None:
    xml = """<filesystem type='mount'><driver type='virtiofs' queue='1024'/>
<source dir='/s'/><target dir='vfs'/><boot order='2'/></filesystem>"""
    head = "<memoryBacking><access mode='shared'/></memoryBacking>"
    args = argv(xml, head=head)
    sock = str(ArgvContext.for_domain("g").run_dir / "fs0-fs.sock")
    i = args.index("-chardev", args.index("-boot"))
    assert args[i + 1] == f"socket,id=chr-vu-fs0,path={sock}"
    assert json.loads(args[i + 3]) == {
        "driver": "vhost-user-fs-pci", "id": "fs0", "chardev": "chr-vu-fs0", "queue-size": 1024,
        "tag": "vfs", "bootindex": 2, "bus": "pci.0", "addr": "0x2",
    }  # fmt: skip
    assert '"share":true' in " ".join(args)  # the guest's RAM, for virtiofsd to map
