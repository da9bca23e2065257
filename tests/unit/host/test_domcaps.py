"""``<domainCapabilities>``: its shape from a fixed QEMU probe, and firmware descriptors."""

from __future__ import annotations

import json
from pathlib import Path

from lxml import etree

from pyvirt.drivers.qemu.monitor.cpu_models import CpuDefinition, MachineInfo
from pyvirt.drivers.qemu.probe import QemuOffer
from pyvirt.host.cpu_features import Baseline
from pyvirt.host.domcaps import HostFacts, domain_capabilities, read_firmware

# fmt: off
TYPES = ("iothread", "virtio-blk-pci", "ide-hd", "VGA", "virtio-vga", "vfio-pci", "usb-host",
         "virtio-rng-pci", "rng-random", "memory-backend-memfd", "vmcoreinfo")
# fmt: on
OFFER = QemuOffer(
    binary="/usr/bin/qemu-system-x86_64",
    accel="tcg",
    models=(
        CpuDefinition("qemu64", (), "qemu64-v1", False, True, False),
        CpuDefinition("qemu64-v1", (), None, False, True, False),
        CpuDefinition("Skylake-Client", ("x2apic",), "Skylake-Client-v1", False, True, False),
        CpuDefinition("max", (), None, False, False, False),
    ),
    features={"qemu64": ("fpu",), "qemu64-v1": ("fpu",), "Skylake-Client": ("fpu", "avx")},
    vendors={"qemu64": "AuthenticAMD", "Skylake-Client": "GenuineIntel"},
    known_features=("avx", "fpu"),
    accel_features=("avx", "fpu"),
    machines=(
        MachineInfo("pc-i440fx-7.2", "pc", True, 255, False),
        MachineInfo("pc-q35-7.2", "q35", False, 288, False),
    ),
    types=TYPES,
    commands=("query-vnc", "blockdev-add"),
)


def caps(**host: object) -> etree._Element:
    facts = HostFacts(
        kvm=bool(host.get("kvm", False)),
        vfio=bool(host.get("vfio", False)),
        sev=False,
        host_model=Baseline("qemu64", "AuthenticAMD", ("avx",)),
    )
    xml = domain_capabilities(OFFER, facts, virttype="qemu", arch="x86_64", machine="pc-q35-7.2")
    return etree.fromstring(xml)


def values(root: etree._Element, path: str) -> list[str]:
    return [str(v) for v in root.xpath(f"{path}/value/text()")]


def test_the_document_has_libvirts_shape() -> None:
    root = caps()
    assert [c.tag for c in root] == [
        "path", "domain", "machine", "arch", "vcpu", "iothreads", "os", "cpu", "memoryBacking",
        "devices", "features",
    ]  # fmt: skip
    assert root.findtext("path") == "/usr/bin/qemu-system-x86_64"
    assert (root.findtext("domain"), root.findtext("machine")) == ("qemu", "pc-q35-7.2")
    assert root.find("vcpu").get("max") == "288"
    assert root.find("iothreads").get("supported") == "yes"
    assert values(root, "devices/disk/enum[@name='bus']") == ["ide", "virtio"]
    assert values(root, "devices/video/enum[@name='modelType']") == ["vga", "virtio", "none"]
    assert values(root, "devices/graphics/enum[@name='type']") == ["vnc"]
    assert values(root, "devices/rng/enum[@name='backendModel']") == ["random"]
    assert values(root, "memoryBacking/enum[@name='sourceType']") == ["memfd"]
    assert root.find("features/vmcoreinfo").get("supported") == "yes"
    assert root.find("features/genid").get("supported") == "no"


def test_cpu_modes_and_models() -> None:
    root = caps()
    modes = {m.get("name"): m.get("supported") for m in root.iterfind("cpu/mode")}
    assert modes == {"host-passthrough": "no", "maximum": "yes", "host-model": "yes",
                     "custom": "yes"}  # fmt: skip
    assert root.findtext("cpu/mode[@name='host-model']/model") == "qemu64"
    assert root.findtext("cpu/mode[@name='host-model']/vendor") == "AMD"
    custom = root.findall("cpu/mode[@name='custom']/model")
    assert [(m.text, m.get("usable"), m.get("vendor")) for m in custom] == [
        ("qemu64", "yes", "AMD"),
        ("qemu64-v1", "yes", "unknown"),
        ("Skylake-Client", "no", "Intel"),
    ]
    assert caps(kvm=True).find("cpu/mode[@name='host-passthrough']").get("supported") == "no"


def test_pci_hostdev_needs_vfio_on_the_host() -> None:
    assert values(caps(), "devices/hostdev/enum[@name='subsysType']") == ["usb"]
    assert values(caps(), "devices/hostdev/enum[@name='pciBackend']") == []
    with_vfio = caps(vfio=True)
    assert values(with_vfio, "devices/hostdev/enum[@name='subsysType']") == ["usb", "pci"]
    assert values(with_vfio, "devices/hostdev/enum[@name='pciBackend']") == ["default", "vfio"]


def test_firmware_descriptors_fill_the_loader(tmp_path: Path) -> None:
    fw = tmp_path / "usr/share/qemu/firmware"
    fw.mkdir(parents=True)
    (fw / "50-secure.json").write_text(json.dumps({
        "interface-types": ["uefi"],
        "mapping": {"device": "flash", "executable": {"filename": "/fw/CODE.secboot.fd"}},
        "targets": [{"architecture": "x86_64", "machines": ["pc-q35-*"]}],
        "features": ["secure-boot", "requires-smm"],
    }))  # fmt: skip
    (fw / "60-plain.json").write_text(json.dumps({
        "interface-types": ["uefi"],
        "mapping": {"device": "flash", "executable": {"filename": "/fw/CODE.fd"}},
        "targets": [{"architecture": "x86_64", "machines": ["pc-i440fx-*", "pc-q35-*"]}],
    }))  # fmt: skip
    (fw / "70-broken.json").write_text("{")
    firmware = read_firmware(tmp_path)
    assert [f.executable for f in firmware] == ["/fw/CODE.secboot.fd", "/fw/CODE.fd"]
    facts = HostFacts(kvm=False, vfio=False, sev=False, host_model=None, firmware=firmware)
    q35 = etree.fromstring(
        domain_capabilities(OFFER, facts, virttype="qemu", arch="x86_64", machine="pc-q35-7.2")
    )
    assert values(q35, "os/enum[@name='firmware']") == ["bios", "efi"]
    assert [str(v) for v in q35.xpath("os/loader/value/text()")] == [
        "/fw/CODE.secboot.fd", "/fw/CODE.fd",
    ]  # fmt: skip
    assert values(q35, "os/loader/enum[@name='secure']") == ["no", "yes"]
    assert q35.find("cpu/mode[@name='host-model']").get("supported") == "no"
    pc = etree.fromstring(
        domain_capabilities(OFFER, facts, virttype="qemu", arch="x86_64", machine="pc-i440fx-7.2")
    )
    assert [str(v) for v in pc.xpath("os/loader/value/text()")] == ["/fw/CODE.fd"]
    assert values(pc, "os/loader/enum[@name='secure']") == ["no"]


def test_the_probe_round_trips_through_its_cache_format() -> None:
    assert QemuOffer.from_json(json.loads(json.dumps(OFFER.to_json()))) == OFFER
