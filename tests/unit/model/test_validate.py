"""Validation: each bad input gives exactly the expected problem text."""

from __future__ import annotations

import pytest

from pyvirt.errors import InvalidConfigError
from pyvirt.model import Domain

from .helpers import MINIMAL

UNITS = "b, bytes, KB, k, K, KiB, MB, M, MiB, GB, G, GiB, TB, T, TiB, PB, P, PiB, EB, E, EiB"
ACTIONS = "destroy, restart, preserve, rename-restart, coredump-destroy, coredump-restart"


def _sub(old: str, new: str) -> str:
    assert old in MINIMAL, old
    return MINIMAL.replace(old, new)


def _devices(extra: str) -> str:
    return _sub("</devices>", extra + "</devices>")


CPU = "<cpu><topology sockets='{s}' cores='2' threads='1'/>{numa}</cpu><os>"

BAD: list[tuple[str, str, list[str]]] = [
    ("domain-type", _sub("type='kvm'", "type='xen'"),
     ["<domain>: type 'xen' is not supported; use kvm or qemu"]),
    ("domain-no-type", _sub(" type='kvm'", ""), ["<domain>: type is missing; use kvm or qemu"]),
    ("no-name", _sub("<name>vm-1</name>", ""), ["<name>: a name is required"]),
    ("name-slash", _sub("vm-1", "a/b"), ["<name>: name 'a/b' contains '/'"]),
    ("name-dot", _sub("vm-1", "."), ["<name>: name '.' is not allowed"]),
    ("name-dotdot", _sub("vm-1", ".."), ["<name>: name '..' is not allowed"]),
    ("name-empty", _sub("vm-1", " "), ["<name>: name is empty"]),
    ("name-control", _sub("vm-1", "vm&#9;1"), ["<name>: name contains control characters"]),
    ("name-long", _sub("vm-1", "x" * 201), ["<name>: name is longer than 200 characters"]),
    ("uuid", _sub("3f1c6a52-8d0e-4c1b-9a57-0d4f5b1e2a10", "3f1c6a52-zz"),
     ["<uuid>: '3f1c6a52-zz' is not a valid UUID"]),
    ("uuid-groups",
     _sub("3f1c6a52-8d0e-4c1b-9a57-0d4f5b1e2a10", "3f1c6a528d0e-4c1b-9a57-0d4f-5b1e2a10"),
     ["<uuid>: '3f1c6a528d0e-4c1b-9a57-0d4f-5b1e2a10' is not a valid UUID"]),
    ("memory-unit", _sub("<memory>", "<memory unit='XB'>"),
     [f"<memory>: unit 'XB' is not one of {UNITS}"]),
    ("memory-number", _sub("<memory>524288", "<memory>lots"),
     ["<memory>: 'lots' is not an integer"]),
    ("memory-missing", _sub("<memory>524288</memory>", ""),
     ["<memory>: a memory size is required"]),
    ("memory-zero", _sub("<memory>524288", "<memory>0"),
     ["<memory>: memory size must be greater than 0"]),
    ("memory-absurd", _sub("<memory>524288", "<memory unit='TiB'>17"),
     ["<memory>: memory size 17 TiB is larger than the 16 TiB limit"]),
    ("memory-exabytes", _sub("<memory>524288", "<memory unit='EB'>1"),
     ["<memory>: memory size 976562500000000 KiB is larger than the 16 TiB limit"]),
    ("current-memory", _sub("</memory>", "</memory><currentMemory unit='GiB'>1</currentMemory>"),
     ["<currentMemory>: 1048576 KiB is larger than <memory> (524288 KiB)"]),
    ("vcpu-zero", _sub("<vcpu>1", "<vcpu>0"), ["<vcpu>: count must be at least 1"]),
    ("vcpu-many", _sub("<vcpu>1", "<vcpu>5000"),
     ["<vcpu>: count 5000 is larger than the limit of 4096"]),
    ("vcpu-machine", _sub("<vcpu>1", "<vcpu>256"),
     ["<vcpu>: count 256 is larger than the limit of 255 for 'pc'"]),
    ("vcpu-q35", _sub("<vcpu>1", "<vcpu>289").replace("<type>", "<type machine='q35'>"),
     ["<vcpu>: count 289 is larger than the limit of 288 for 'q35'"]),
    ("vcpu-text", _sub("<vcpu>1", "<vcpu>two"), ["<vcpu>: 'two' is not an integer"]),
    ("vcpu-current", _sub("<vcpu>1", "<vcpu current='2'>1"),
     ["<vcpu>: current 2 is larger than count 1"]),
    ("vcpu-placement", _sub("<vcpu>", "<vcpu placement='everywhere'>"),
     ["<vcpu>: placement 'everywhere' is not one of static, auto"]),
    ("topology", _sub("<os>", CPU.format(s=2, numa="")),
     ["<cpu>/<topology>: topology gives 4 vCPUs but <vcpu> is 1"]),
    ("numa-cpus", _sub("<vcpu>1", "<vcpu>2").replace("<os>", CPU.format(
        s=1, numa="<numa><cell id='0' cpus='0-2' memory='524288'/></numa>"), 1),
     ["<cpu>/<numa>/<cell>: cpus '0-2' go beyond the 2 vCPUs of <vcpu>"]),
    ("numa-cpuset", _sub("<vcpu>1", "<vcpu>2").replace("<os>", CPU.format(
        s=1, numa="<numa><cell cpus='0-x' memory='524288'/></numa>"), 1),
     ["<cpu>/<numa>/<cell>: cpus '0-x' is malformed"]),
    ("on-crash", _sub("<devices>", "<on_crash>explode</on_crash><devices>"),
     [f"<on_crash>: 'explode' is not one of {ACTIONS}"]),
    ("disk-bus", _sub("bus='virtio'", "bus='nvme-of'"),
     ["<devices>/<disk>/<target>: bus 'nvme-of' is not one of ide, sata, scsi, virtio, usb, "
      "fdc, sd"]),
    ("disk-cache", _sub("<source file", "<driver cache='fast'/><source file"),
     ["<devices>/<disk>/<driver>: cache 'fast' is not one of default, none, writethrough, "
      "writeback, directsync, unsafe"]),
    ("disk-io", _sub("<source file", "<driver io='aio'/><source file"),
     ["<devices>/<disk>/<driver>: io 'aio' is not one of threads, native, io_uring"]),
    ("disk-type", _sub("disk type='file'", "disk type='floppy-tape'"),
     ["<devices>/<disk>: type 'floppy-tape' is not one of file, block, network, volume, dir, "
      "nvme, vhostuser"]),
    ("disk-dup-target", _devices(
        "<disk type='file' device='disk'><source file='/b'/><target dev='vda'/></disk>"),
     ["<devices>/<disk>[2]/<target>: dev 'vda' is already used by <devices>/<disk>[1]"]),
    ("disk-no-target", _sub("<target dev='vda' bus='virtio'/>", ""),
     ["<devices>/<disk>/<target>: dev is required"]),
    ("disk-dotdot", _sub("/srv/a.qcow2", "/srv/../etc/shadow"),
     ["<devices>/<disk>/<source>: path '/srv/../etc/shadow' has a '..' component"]),
    ("disk-boot", _sub("<source file", "<boot order='first'/><source file"),
     ["<devices>/<disk>/<boot>: order 'first' is not an integer"]),
    ("mac", _devices("<interface type='user'><mac address='52:54:00:zz:00:01'/></interface>"),
     ["<devices>/<interface>/<mac>: address '52:54:00:zz:00:01' is not a valid MAC address"]),
    ("mac-multicast", _devices("<interface type='user'><mac address='01:00:5e:00:00:01'/>"
                               "</interface>"),
     ["<devices>/<interface>/<mac>: address '01:00:5e:00:00:01' is a multicast address"]),
    ("interface-type", _devices("<interface type='carrier-pigeon'/>"),
     ["<devices>/<interface>: type 'carrier-pigeon' is not one of network, bridge, user, "
      "ethernet, direct, hostdev, vhostuser, server, client, mcast, udp, vdpa, null"]),
    ("controller-twice", _devices("<controller type='usb' index='0'/>"
                                  "<controller type='usb' index='0'/>"),
     ["<devices>/<controller>[2]: usb controller index 0 is defined twice"]),
    ("graphics-port", _devices("<graphics type='vnc' port='70000'/>"),
     ["<devices>/<graphics>: port 70000 is outside 0-65535"]),
    ("serial-port", _devices("<serial type='pty'><target port='one'/></serial>"),
     ["<devices>/<serial>/<target>: port 'one' is not an integer"]),
    ("hugepage-unit", _sub("<vcpu>", "<memoryBacking><hugepages><page size='2' unit='MX'/>"
                           "</hugepages></memoryBacking><vcpu>"),
     [f"<memoryBacking>/<hugepages>/<page>: unit 'MX' is not one of {UNITS}"]),
    ("numatune-mode", _sub("<os>", "<numatune><memory mode='random'/></numatune><os>"),
     ["<numatune>/<memory>: mode 'random' is not one of interleave, strict, preferred, "
      "restrictive"]),
    ("two-problems", _sub("vm-1", "a/b").replace("<vcpu>1", "<vcpu>0"),
     ["<name>: name 'a/b' contains '/'", "<vcpu>: count must be at least 1"]),
]  # fmt: skip


@pytest.mark.parametrize(("xml", "expected"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_problem_text(xml: str, expected: list[str]) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        Domain.from_xml(xml)
    assert [str(p) for p in exc.value.problems] == expected
    assert str(exc.value) == "; ".join(expected)
    for text in expected:
        assert not text.endswith(".")


def test_root_must_be_domain() -> None:
    with pytest.raises(InvalidConfigError) as exc:
        Domain.from_xml("<network><name>x</name></network>")
    assert str(exc.value) == "<network>: root element must be <domain>"


@pytest.mark.parametrize("name", ["10.47.181.1", "vm-1", "web_01.example", "x" * 200, "été"])
def test_valid_names(name: str) -> None:
    assert Domain.from_xml(MINIMAL.replace("vm-1", name)).name == name


def test_unknown_device_is_not_an_error() -> None:
    domain = Domain.from_xml(_devices("<smartcard mode='host'/><teleporter/>"))
    assert domain.warnings == [
        "<devices>/<smartcard>: not understood by pyvirt; kept as is",
        "<devices>/<teleporter>: not understood by pyvirt; kept as is",
    ]


def test_valid_limits() -> None:
    xml = _sub("<memory>524288", "<memory unit='TiB'>16").replace("<vcpu>1", "<vcpu>255")
    domain = Domain.from_xml(xml)
    assert domain.memory_kib == 16 * 1024**3
    assert domain.vcpu.count == 255
    q35 = xml.replace("<vcpu>255", "<vcpu>288").replace("<type>", "<type machine='q35'>")
    assert Domain.from_xml(q35).vcpu.count == 288
    other = xml.replace("<vcpu>255", "<vcpu>4096").replace("<type>", "<type machine='virt'>")
    assert Domain.from_xml(other).vcpu.count == 4096


def test_validate_after_mutation() -> None:
    domain = Domain.from_xml(MINIMAL)
    domain.memory_kib = 0
    domain.name = "a/b"
    assert [str(p) for p in domain.validate()] == [
        "<name>: name 'a/b' contains '/'",
        "<memory>: memory size must be greater than 0",
    ]


def test_setter_refuses_value_outside_choices() -> None:
    domain = Domain.from_xml(MINIMAL)
    with pytest.raises(InvalidConfigError) as exc:
        domain.on_crash = "explode"
    assert str(exc.value) == f"<on_crash>: 'explode' is not one of {ACTIONS}"
