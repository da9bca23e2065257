"""Domain-level fields: read typed values, mutate, serialize."""

from __future__ import annotations

import uuid

import pytest

from pyvirt.model import Cpu, Domain, Topology
from pyvirt.model.units import to_kib

from .helpers import MINIMAL, read_case


def test_platform_fields() -> None:
    d = Domain.from_xml(read_case("platform"))
    assert (d.type, d.name, d.title) == ("kvm", "10.47.181.1", "Build host")
    assert d.description == "Runs the nightly builds\non two NUMA cells"
    assert d.memory_kib == 8 * 1024 * 1024
    assert d.current_memory_kib == 6144 * 1024
    assert (d.max_memory_kib, d.max_memory_slots) == (64 * 1024 * 1024, 16)
    assert (d.vcpu.count, d.vcpu.current, d.vcpu.placement, d.vcpu.cpuset) == (
        8, 6, "static", "0-15,^8",
    )  # fmt: skip
    cpu = d.cpu
    assert cpu is not None
    assert (cpu.mode, cpu.match, cpu.check) == ("custom", "exact", "partial")
    assert (cpu.model, cpu.model_fallback, cpu.vendor) == ("Skylake-Server", "forbid", "Intel")
    assert [(f.policy, f.name) for f in cpu.features] == [("require", "vmx"), ("disable", "hle")]
    topo = cpu.topology
    assert topo is not None
    assert (topo.sockets, topo.dies, topo.cores, topo.threads) == (2, 1, 2, 2)
    cells = [(c.id, c.cpus, c.memory_kib, c.mem_access, c.discard) for c in cpu.numa_cells]
    assert cells == [(0, "0-3", 4194304, "shared", None), (1, "4-7", 4194304, None, True)]
    os = d.os
    assert (os.type, os.arch, os.machine) == ("hvm", "x86_64", "q35")
    assert os.boot_devs == ["hd", "network"]
    assert os.bootmenu is True
    assert os.loader is not None
    assert os.loader.path == "/usr/share/OVMF/OVMF_CODE.secboot.fd"
    assert (os.loader.readonly, os.loader.type, os.loader.secure) == (True, "pflash", True)
    assert os.nvram == "/var/lib/pyvirt/nvram/build_VARS.fd"
    assert d.features.names() == ["acpi", "apic", "pae", "smm", "vmport"]
    assert d.features.has("vmport") and not d.features.enabled("vmport")
    assert (d.clock.offset, d.clock.basis, d.clock.adjustment) == ("variable", "localtime", "3600")
    assert [(t.name, t.present, t.tickpolicy, t.track) for t in d.clock.timers] == [
        ("rtc", None, "catchup", "guest"),
        ("pit", None, "delay", None),
        ("hpet", False, None, None),
    ]
    assert (d.on_poweroff, d.on_reboot, d.on_crash) == ("preserve", "restart", "coredump-restart")
    mb = d.memory_backing
    assert mb is not None
    assert [(p.size_kib, p.nodeset) for p in mb.hugepages] == [(2048, "0"), (1048576, "1")]
    assert mb.hugepages_enabled and mb.nosharepages and mb.locked and mb.discard
    assert (mb.source_type, mb.access_mode) == ("memfd", "shared")
    nt = d.numatune
    assert nt is not None
    assert (nt.mode, nt.nodeset, nt.placement) == ("strict", "0-1", None)
    assert [(m.cellid, m.mode, m.nodeset) for m in nt.memnodes] == [
        (0, "preferred", "0"),
        (1, "strict", "1"),
    ]
    assert d.devices.emulator == "/usr/bin/qemu-system-x86_64"
    balloon = d.devices.memballoon
    assert balloon is not None and (balloon.model, balloon.period) == ("virtio", 10)
    assert balloon.address is not None and balloon.address.slot == "0x07"


def test_defaults_when_absent() -> None:
    d = Domain.from_xml(MINIMAL)
    assert d.current_memory_kib == d.memory_kib == 524288
    assert (d.on_poweroff, d.on_reboot, d.on_crash) == ("destroy", "restart", "destroy")
    assert d.cpu is None and d.memory_backing is None and d.numatune is None
    assert d.title is None and d.description is None and d.max_memory_kib is None
    assert d.os.loader is None and d.os.bootmenu is None and d.os.boot_devs == []
    assert d.clock.offset == "utc"
    assert d.devices.memballoon is None


def test_uuid_generated_and_written() -> None:
    xml = MINIMAL.replace("\n  <uuid>3f1c6a52-8d0e-4c1b-9a57-0d4f5b1e2a10</uuid>", "")
    d = Domain.from_xml(xml)
    assert uuid.UUID(d.uuid).version == 4
    assert f"  <name>vm-1</name>\n  <uuid>{d.uuid}</uuid>\n  <memory>" in d.to_xml()
    assert Domain.from_xml(d.to_xml()).uuid == d.uuid


def test_new_domain_from_fields() -> None:
    d = Domain(type="qemu", name="fresh", memory_kib=262144)
    d.vcpu.count = 2
    d.os.machine = "q35"
    d.on_crash = "restart"
    assert d.validate() == []
    again = Domain.from_xml(d.to_xml())
    assert (again.name, again.memory_kib, again.vcpu.count) == ("fresh", 262144, 2)
    assert (again.os.type, again.os.machine, again.on_crash) == ("hvm", "q35", "restart")


def test_mutate_scalars() -> None:
    d = Domain.from_xml(read_case("platform"))
    d.memory_kib = 4 * 1024 * 1024
    d.current_memory_kib = None
    d.title = None
    d.description = "one line"
    d.on_poweroff = "destroy"
    xml = d.to_xml()
    assert "<memory unit='KiB'>4194304</memory>" in xml
    assert "currentMemory" not in xml and "<title>" not in xml
    assert "<description>one line</description>" in xml
    assert d.current_memory_kib == 4194304


def test_mutate_cpu() -> None:
    d = Domain.from_xml(MINIMAL)
    d.vcpu.count = 4
    d.cpu = Cpu(mode="host-passthrough")
    assert d.cpu is not None
    d.cpu.topology = Topology(sockets=1, cores=2, threads=2)
    assert d.validate() == []
    assert (
        "  <cpu mode='host-passthrough'>\n"
        "    <topology sockets='1' cores='2' threads='2'/>\n"
        "  </cpu>\n"
    ) in d.to_xml()
    d.cpu = None
    assert "<cpu" not in d.to_xml()


def test_mutate_boot_and_features() -> None:
    d = Domain.from_xml(read_case("platform"))
    d.os.boot_devs = ["cdrom"]
    d.features.remove("pae")
    d.features.add("hap")
    d.os.loader = None
    xml = d.to_xml()
    assert xml.count("<boot ") == 1 and "<boot dev='cdrom'/>" in xml
    assert "<pae/>" not in xml and "<hap/>" in xml and "<loader" not in xml
    assert Domain.from_xml(xml).os.boot_devs == ["cdrom"]


def test_mutate_timers_and_hugepages() -> None:
    d = Domain.from_xml(read_case("platform"))
    d.clock.timers = d.clock.timers[:1]
    mb = d.memory_backing
    assert mb is not None
    mb.hugepages[0].size_kib = 1048576
    mb.locked = False
    d2 = Domain.from_xml(d.to_xml())
    assert [t.name for t in d2.clock.timers] == ["rtc"]
    assert d2.memory_backing is not None
    assert d2.memory_backing.hugepages[0].size_kib == 1048576
    assert not d2.memory_backing.locked


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        (1, "KiB", 1), (1024, "b", 1), (1025, "bytes", 2), (1000, "KB", 977), (1, "k", 1),
        (1, "K", 1), (1, "M", 1024), (1, "MB", 977), (1, "MiB", 1024), (1, "G", 1024**2),
        (1, "GB", 976563), (1, "TiB", 1024**3), (1, "T", 1024**3), (1, "TB", 976562500),
        (1, "PiB", 1024**4), (1, "EiB", 1024**5), (1, "E", 1024**5), (1, "P", 1024**4),
    ],
)  # fmt: skip
def test_units(value: int, unit: str, kib: int) -> None:
    assert to_kib(value, unit) == kib
