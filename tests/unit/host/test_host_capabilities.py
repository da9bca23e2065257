"""pyvirt.host.capabilities: the <capabilities> document from fake host facts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from host_fakes import kvm_state, write
from lxml import etree

from pyvirt.host import capabilities as caps
from pyvirt.host import qemu_binaries as qb
from pyvirt.host.cpu import read_host_cpu
from pyvirt.host.qemu_binaries import QemuBinary, QemuVersion


def _binary(data_dir: Path, arch: str, path: str) -> QemuBinary:
    machines = qb.parse_machine_help((data_dir / "qemu-7.2/machine-help.txt").read_text())
    return QemuBinary(path, arch, QemuVersion(7, 2, 22), machines, ("tcg", "kvm"))


def _build(data_dir: Path, *, kvm_usable: bool, arches: tuple[str, ...]) -> etree._Element:
    root = data_dir / "intel-hw"
    text = caps.build_capabilities(
        host_uuid=caps.read_host_uuid(root),
        cpu=read_host_cpu(root, arch="x86_64"),
        binaries=[_binary(data_dir, a, f"/usr/bin/qemu-system-{a}") for a in arches],
        kvm_usable=kvm_usable,
        page_sizes_kib=caps.read_page_sizes_kib(root),
        iommu=caps.has_iommu(root),
    )
    return etree.fromstring(text.encode())


def test_host_element(data_dir: Path) -> None:
    doc = _build(data_dir, kvm_usable=True, arches=("x86_64",))
    assert doc.tag == "capabilities"
    assert doc.findtext("host/uuid") == "4c4c4544-0051-3710-8052-b4c04f4b4e32"
    cpu = doc.find("host/cpu")
    assert cpu is not None
    assert cpu.findtext("arch") == "x86_64"
    assert cpu.findtext("vendor") == "Intel"
    assert cpu.findtext("model") == "Skylake-Client"
    topo = cpu.find("topology")
    assert topo is not None
    assert dict(topo.attrib) == {"sockets": "1", "dies": "1", "cores": "4", "threads": "2"}
    features = [f.get("name") for f in cpu.findall("feature")]
    assert "vmx" in features and "sse4.2" in features
    assert [p.get("size") for p in cpu.findall("pages")] == ["4", "2048", "1048576"]
    assert doc.xpath("string(host/iommu/@support)") == "yes"
    assert doc.xpath("string(host/cpu/microcode/@version)") == str(0xF4)


def test_guest_per_binary_with_machines(data_dir: Path) -> None:
    doc = _build(data_dir, kvm_usable=True, arches=("x86_64", "i386", "aarch64"))
    guests = doc.findall("guest")
    assert [g.xpath("string(arch/@name)") for g in guests] == ["x86_64", "i686", "aarch64"]
    x86 = guests[0]
    assert x86.findtext("os_type") == "hvm"
    assert x86.findtext("arch/wordsize") == "64"
    assert x86.findtext("arch/emulator") == "/usr/bin/qemu-system-x86_64"
    assert x86.xpath("string(arch/machine[.='pc']/@canonical)") == "pc-i440fx-7.2"
    assert x86.xpath("string(arch/machine[.='q35']/@canonical)") == "pc-q35-7.2"
    assert x86.xpath("arch/machine[.='pc-q35-7.2']/@canonical") == []
    assert x86.xpath("string(arch/machine[.='pc-i440fx-1.4']/@deprecated)") == "yes"
    assert guests[1].findtext("arch/wordsize") == "32"
    assert guests[1].find("features/pae") is not None

    def domains(guest: etree._Element) -> list[str]:
        return [str(t) for t in guest.xpath("arch/domain/@type")]

    assert domains(guests[0]) == ["qemu", "kvm"]
    assert domains(guests[1]) == ["qemu", "kvm"]
    assert domains(guests[2]) == ["qemu"]  # no KVM for a foreign architecture


def test_no_kvm_domain_when_unusable(data_dir: Path) -> None:
    doc = _build(data_dir, kvm_usable=False, arches=("x86_64",))
    assert doc.xpath("guest/arch/domain/@type") == ["qemu"]


def test_host_uuid_sources(tmp_path: Path) -> None:
    write(tmp_path, "etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    assert caps.read_host_uuid(tmp_path) == "01234567-89ab-cdef-0123-456789abcdef"
    write(tmp_path, "sys/class/dmi/id/product_uuid", "00000000-0000-0000-0000-000000000000\n")
    assert caps.read_host_uuid(tmp_path) == "01234567-89ab-cdef-0123-456789abcdef"
    write(tmp_path, "sys/class/dmi/id/product_uuid", "C0FFEE00-0000-4000-8000-000000000001\n")
    assert caps.read_host_uuid(tmp_path) == "c0ffee00-0000-4000-8000-000000000001"


def test_host_uuid_fallback_is_stable(tmp_path: Path) -> None:
    first = caps.read_host_uuid(tmp_path)
    assert uuid.UUID(first) and caps.read_host_uuid(tmp_path) == first


def test_page_sizes_and_iommu_on_bare_tree(tmp_path: Path) -> None:
    assert caps.read_page_sizes_kib(tmp_path) == [4]
    assert not caps.has_iommu(tmp_path)


@pytest.mark.parametrize("verdict", ["fast", "slow", "absent"])
def test_capabilities_gathers_host_facts(
    data_dir: Path, fake_qemu: Callable[..., Path], tmp_path: Path, verdict: str
) -> None:
    script = fake_qemu()
    text = caps.capabilities(
        root=data_dir / "emulated-kvm",
        search_path=[script.parent],
        kvm=kvm_state(verdict),
        cache_dir=tmp_path / "cache",
    )
    doc = etree.fromstring(text.encode())
    assert doc.findtext("host/uuid") == "01234567-89ab-cdef-0123-456789abcdef"
    assert doc.findtext("guest/arch/emulator") == str(script)
    assert doc.xpath("string(host/iommu/@support)") == "no"
    expected = ["qemu", "kvm"] if verdict in ("fast", "slow") else ["qemu"]
    assert doc.xpath("guest/arch/domain/@type") == expected
