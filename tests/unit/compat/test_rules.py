"""libvirt's define-time rules (pyvirt.model.rules) and the argv of what the larger libvirt
corpus brought in, on small hand-written domains (the corpus test needs ../shared)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pyvirt.drivers.qemu.argv import ArgvContext, build_argv
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.model import Domain

BASE = """<domain type='kvm'>
  <name>r1</name>
  <uuid>5a0c1d44-1b6e-4c0d-8a51-2f0f6c3e9b11</uuid>
  <memory unit='MiB'>512</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='{machine}'>hvm</type>{os}</os>
  <features><acpi/></features>{top}
  <devices>{devices}</devices>
</domain>"""


def xml(devices: str = "", *, machine: str = "pc", os: str = "", top: str = "") -> str:
    return BASE.format(devices=devices, machine=machine, os=os, top=top)


def argv(text: str) -> list[str]:
    dom = Domain.from_xml(text)
    return build_argv(dom, ArgvContext.for_domain(dom.name, now=datetime(2024, 1, 1, tzinfo=UTC)))


REFUSED: list[tuple[str, str, str]] = [
    (
        "pci-bus",
        xml("<interface type='user'><address type='pci' bus='0x100' slot='3'/></interface>"),
        "bus 0x100 is above 0xff",
    ),
    (
        "pci-twice",
        xml(
            "<memballoon model='virtio'><address type='pci' bus='0' slot='5'/>"
            "</memballoon><interface type='user'><address type='pci' bus='0' slot='5'/>"
            "</interface>"
        ),
        "PCI address 0000:00:05.0 is already used",
    ),
    (
        "piix3-slot",
        xml("<memballoon model='virtio'><address type='pci' slot='1' function='1'/></memballoon>"),
        "belongs to the i440fx chipset",
    ),
    ("root-index", xml("<controller type='pci' index='3' model='pci-root'/>"), "must have index 0"),
    (
        "pxb-q35",
        xml("<controller type='pci' index='1' model='pci-expander-bus'/>", machine="q35"),
        "needs an i440fx",
    ),
    (
        "usb-none",
        xml("<controller type='usb' model='none'/><input type='tablet' bus='usb'/>"),
        "USB is disabled",
    ),
    (
        "usb-no-master",
        xml("<controller type='usb' index='0' model='ich9-uhci1'/>"),
        "no master USB controller",
    ),
    (
        "xhci-ports",
        xml("<controller type='usb' model='qemu-xhci' ports='20'/>"),
        "at most 15 ports",
    ),
    (
        "usb-no-hub",
        xml("<input type='mouse' bus='usb'><address type='usb' bus='0' port='2.1'/></input>"),
        "there is no hub at port 2",
    ),
    (
        "usb-bus",
        xml("<input type='mouse' bus='usb'><address type='usb' bus='3'/></input>"),
        "USB bus 3 has no controller",
    ),
    (
        "cache-level",
        xml(top="<cpu mode='host-passthrough'><cache level='2' mode='emulate'/></cpu>"),
        "only with level='3'",
    ),
    (
        "vcpusched",
        xml(
            top="<cputune><vcpusched vcpus='0-1' scheduler='fifo' priority='1'/>"
            "<vcpusched vcpus='1' scheduler='fifo' priority='1'/></cputune>"
        ),
        "overlap",
    ),
    (
        "hugepage-size",
        xml(
            top="<memoryBacking><hugepages><page size='3' unit='MiB'/></hugepages></memoryBacking>"
        ),
        "not an x86 huge page size",
    ),
    (
        "bios-nvram",
        xml(os="<nvram>/var/lib/x.fd</nvram>").replace("<os>", "<os firmware='bios'>"),
        "has no NVRAM",
    ),
    (
        "uefi-acpi",
        xml(os="<loader type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>").replace(
            "<features><acpi/></features>", ""
        ),
        "UEFI needs <acpi/>",
    ),
    (
        "tseg-pc",
        xml(top="<features><smm state='on'><tseg unit='MiB'>48</tseg></smm></features>").replace(
            "<features><acpi/></features>", "", 1
        ),
        "needs a q35 machine",
    ),
    (
        "smbios-uuid",
        xml(
            top="<sysinfo type='smbios'><system><entry name='uuid'>"
            "00000000-0000-0000-0000-000000000001</entry></system></sysinfo>"
        ),
        "differs from <uuid>",
    ),
    (
        "disk-fmt-dir",
        xml(
            "<disk type='file'><driver name='qemu' type='dir'/>"
            "<source file='/x'/><target dev='vda' bus='virtio'/></disk>"
        ),
        "not an image format",
    ),
    (
        "scsi-pci-address",
        xml(
            "<disk type='file'><source file='/x'/><target dev='sda' bus='scsi'/>"
            "<address type='pci' slot='4'/></disk>"
        ),
        "use type='drive'",
    ),
    (
        "hostdev-twice",
        xml(
            "<hostdev mode='subsystem' type='usb'><source><address bus='1' "
            "device='2'/></source></hostdev>" * 2
        ),
        "already assigned",
    ),
    ("shmem-size", xml("<shmem name='s'><size unit='M'>3</size></shmem>"), "power of two"),
    ("tpm-backend", xml("<tpm model='tpm-tis'/>"), "a <backend> is required"),
    ("iommu-pc", xml("<iommu model='intel'/>"), "needs a q35 machine"),
    (
        "video-primaries",
        xml(
            "<video><model type='vga' primary='yes'/></video>"
            "<video><model type='virtio' primary='yes'/></video>"
        ),
        "only one video device can be primary",
    ),
    (
        "egl-sdl",
        xml("<graphics type='sdl'/><graphics type='egl-headless'/>"),
        "cannot go with egl-headless",
    ),
    (
        "serial-pl011",
        xml(
            "<serial type='pty'><target type='system-serial'><model name='pl011'/>"
            "</target></serial>"
        ),
        "not an x86 serial device",
    ),
    (
        "portforward",
        xml(
            "<interface type='user'><portForward proto='tcp'>"
            "<range start='22'/></portForward></interface>"
        ),
        "passt",
    ),
]


@pytest.mark.parametrize(("name", "text", "message"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_at_define(name: str, text: str, message: str) -> None:
    with pytest.raises(InvalidConfigError) as exc:
        Domain.from_xml(text)
    assert message in str(exc.value), str(exc.value)
    assert "<" in str(exc.value)  # every refusal names the element


def test_numa_cells_make_the_memory() -> None:
    """With NUMA cells, <memory> is their sum (libvirt), whatever the element says."""
    cells = ("<cpu><numa><cell id='0' cpus='0' memory='256' unit='MiB'/>"
             "<cell id='1' cpus='1' memory='256' unit='MiB'/></numa></cpu>")  # fmt: skip
    out = argv(xml(top=cells).replace("<memory unit='MiB'>512</memory>", "<memory>9</memory>"))
    assert out[out.index("-m") + 1].startswith("size=524288k")


def test_usb_companions_share_the_master_bus() -> None:
    ctls = "".join(
        f"<controller type='usb' index='0' model='{m}'/>"
        for m in ("ich9-ehci1", "ich9-uhci1", "ich9-uhci2", "ich9-uhci3")
    )
    out = " ".join(argv(xml(ctls, machine="q35")))
    assert '"driver":"ich9-usb-ehci1","id":"usb"' in out
    assert '"driver":"ich9-usb-uhci2","masterbus":"usb.0","firstport":2' in out


def test_controllers_without_index_are_numbered() -> None:
    ports = (
        "<controller type='pci' model='pcie-root'/>"
        + "<controller type='pci' model='pcie-root-port'/>" * 3
    )
    ids = [a for a in argv(xml(ports, machine="q35")) if "pcie-root-port" in a]
    assert ['"id":"pci.1"' in ids[0], '"id":"pci.2"' in ids[1], '"id":"pci.3"' in ids[2]] == [
        True
    ] * 3


def test_switch_ports_are_placed() -> None:
    ctls = (
        "<controller type='pci' index='0' model='pcie-root'/>"
        "<controller type='pci' index='1' model='pcie-root-port'/>"
        "<controller type='pci' index='2' model='pcie-switch-upstream-port'/>"
        "<controller type='pci' index='3' model='pcie-switch-downstream-port'/>"
    )
    out = " ".join(argv(xml(ctls, machine="q35")))
    assert '"driver":"x3130-upstream","id":"pci.2","bus":"pci.1","addr":"0x0"' in out
    # libvirt numbers a downstream port by its slot
    assert (
        '"id":"pci.3","port":0,"chassis":3,"bus":"pci.2","addr":"0x0"' in out
    )  # libvirt: port = its slot


def test_new_device_kinds() -> None:
    devices = (
        "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product id='0xbeef'/>"
        "</source></hostdev>"
        "<interface type='server'><mac address='52:54:00:00:00:01'/><source address='127.0.0.1' "
        "port='5558'/></interface>"
        "<interface type='vhostuser'><mac address='52:54:00:00:00:02'/><source type='unix' "
        "path='/tmp/vu.sock' mode='server'/><model type='virtio'/></interface>"
        "<graphics type='vnc'/>"
        "<graphics type='egl-headless'><gl rendernode='/dev/dri/r'/></graphics>"
        "<rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' host='h' "
        "service='7'/></backend></rng>"
    )
    out = argv(xml(devices))
    text = " ".join(out)
    assert '"driver":"usb-host","vendorid":4660,"productid":48879' in text
    assert "socket,listen=127.0.0.1:5558,id=hostnet0" in out
    assert "socket,id=charnet1,path=/tmp/vu.sock,server=on,wait=off" in out
    assert "vhost-user,chardev=charnet1,id=hostnet1" in out
    assert "egl-headless,rendernode=/dev/dri/r" in out
    assert "socket,id=charrng0,host=h,port=7" in out


def test_qemu_commandline_passes_through() -> None:
    ns = "<qemu:commandline xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>" \
         "<qemu:arg value='-newarg'/><qemu:arg value='x'/></qemu:commandline>"  # fmt: skip
    out = argv(xml(top=ns))
    i = out.index("-newarg")
    assert out[i + 1] == "x" and out[i + 2] == "-sandbox"


@pytest.mark.parametrize(
    ("devices", "message"),
    [
        ("<disk type='file'><source file='/x'><encryption format='luks'/></source>"
         "<target dev='vda' bus='virtio'/></disk>", "disk 'vda': <encryption>"),
        ("<graphics type='sdl'/>", "graphics type 'sdl'"),
        ("<graphics type='dbus'/>", "graphics type 'dbus'"),
    ],
)  # fmt: skip
def test_refused_at_start(devices: str, message: str) -> None:
    with pytest.raises(UnsupportedError, match=message):
        argv(xml(devices))


def test_pci_bridge_added_when_pci0_is_full() -> None:
    """i440fx: once pci.0 is full, NICs go on a pci-bridge pyvirt adds in its last slot."""
    nics = "".join(
        f"<interface type='user'><mac address='52:54:00:00:00:{i:02x}'/>"
        "<model type='e1000'/></interface>"
        for i in range(40)
    )
    out = argv(xml(nics))
    assert '{"driver":"pci-bridge","id":"pci.1","chassis_nr":1,"bus":"pci.0","addr":"0x1f"}' in out
    on_root = [a for a in out if '"driver":"e1000"' in a and '"bus":"pci.0"' in a]
    on_bridge = [a for a in out if '"driver":"e1000"' in a and '"bus":"pci.1"' in a]
    assert (len(on_root), len(on_bridge)) == (29, 11)  # root slots 2-30; slot 31: the bridge


def test_q35_legacy_nics_go_behind_pcie_to_pci_bridges() -> None:
    nics = "".join(
        f"<interface type='user'><mac address='52:54:00:00:01:{i:02x}'/></interface>"
        for i in range(40)
    )
    out = " ".join(argv(xml(nics, machine="q35")))
    assert out.count('"driver":"pcie-pci-bridge"') == 2  # 31 slots each
    assert out.count('"driver":"rtl8139"') == 40


def test_q35_out_of_root_ports_is_refused() -> None:
    nics = "".join(
        f"<interface type='user'><mac address='52:54:00:00:{i // 256:02x}:{i % 256:02x}'/>"
        "<model type='virtio'/></interface>"
        for i in range(240)
    )
    with pytest.raises(InvalidConfigError, match=r"no free slot left on pcie\.0 for another"):
        argv(xml(nics, machine="q35"))
