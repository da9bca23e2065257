"""pyvirt.host.cpu: vendor, flags, topology and model guess from fake /proc and /sys trees."""

from __future__ import annotations

from pathlib import Path

import pytest
from host_fakes import make_cpu_tree, write

from pyvirt.host import cpu
from pyvirt.host.cpu import Topology


def test_intel_hardware_host(data_dir: Path) -> None:
    host = cpu.read_host_cpu(data_dir / "intel-hw", arch="x86_64")
    assert host.vendor == "Intel"
    assert host.model_name == "Intel(R) Core(TM) i7-8700 CPU @ 3.20GHz"
    assert (host.family, host.model, host.stepping, host.microcode) == (6, 158, 10, "0xf4")
    assert host.topology == Topology(sockets=1, dies=1, cores=4, threads=2)
    assert host.online == tuple(range(8)) and host.count == 8
    assert host.virt_extension == "vmx"
    assert cpu.guess_model(host) == "Skylake-Client"
    names = host.feature_names()
    assert "sse4.2" in names and "sse4_2" not in names and names == sorted(names)


def test_emulated_kvm_host(data_dir: Path) -> None:
    host = cpu.read_host_cpu(data_dir / "emulated-kvm", arch="x86_64")
    assert host.topology == Topology(1, 1, 2, 1)
    assert host.virt_extension is None
    assert "hypervisor" in host.flags


@pytest.mark.parametrize(
    ("sockets", "cores", "threads"), [(2, 8, 2), (1, 1, 1), (4, 2, 1), (1, 6, 2)]
)
@pytest.mark.parametrize("sysfs", [True, False])
def test_topology_shapes(
    tmp_path: Path, sockets: int, cores: int, threads: int, sysfs: bool
) -> None:
    make_cpu_tree(tmp_path, sockets=sockets, cores=cores, threads=threads, sysfs=sysfs)
    host = cpu.read_host_cpu(tmp_path, arch="x86_64")
    assert host.topology == Topology(sockets=sockets, dies=1, cores=cores, threads=threads)
    assert host.count == sockets * cores * threads
    assert host.vendor == "AMD" and host.virt_extension == "svm"


def test_offline_cpus_are_not_counted(tmp_path: Path) -> None:
    make_cpu_tree(tmp_path, sockets=1, cores=4, threads=1)
    write(tmp_path, "sys/devices/system/cpu/online", "0-1\n")
    host = cpu.read_host_cpu(tmp_path, arch="x86_64")
    assert host.online == (0, 1)
    assert host.topology.cores == 2


def test_empty_tree_gives_defaults(tmp_path: Path) -> None:
    host = cpu.read_host_cpu(tmp_path, arch="x86_64")
    assert host.vendor is None and host.flags == frozenset()
    assert host.topology == Topology()
    assert cpu.guess_model(host) == "qemu64"


def test_cpuinfo_without_topology_lines(tmp_path: Path) -> None:
    write(tmp_path, "proc/cpuinfo", "processor : 0\nflags : fpu\n\nprocessor : 1\nflags : fpu\n")
    host = cpu.read_host_cpu(tmp_path, arch="x86_64")
    assert host.topology == Topology(cores=2)


def test_arm_cpuinfo(tmp_path: Path) -> None:
    write(tmp_path, "proc/cpuinfo", "processor : 0\nFeatures : fp asimd\nCPU implementer : 0x41\n")
    host = cpu.read_host_cpu(tmp_path, arch="aarch64")
    assert host.flags == {"fp", "asimd"} and host.vendor == "0x41"
    assert cpu.guess_model(host) is None


@pytest.mark.parametrize(
    ("flags", "model"),
    [
        ("fpu sse2", "qemu64"),
        ("sse4_1 sse4_2 popcnt ssse3 cx16", "Nehalem"),
        ("sse4_1 sse4_2 popcnt ssse3 cx16 aes pclmulqdq", "Westmere"),
        # a later row's flags without an earlier row's do not count
        ("sse4_1 sse4_2 popcnt ssse3 cx16 amx_tile amx_int8 amx_bf16 avx512_fp16", "Nehalem"),
    ],
)
def test_guess_model_intel(tmp_path: Path, flags: str, model: str) -> None:
    write(tmp_path, "proc/cpuinfo", f"processor : 0\nvendor_id : GenuineIntel\nflags : {flags}\n")
    assert cpu.guess_model(cpu.read_host_cpu(tmp_path, arch="x86_64")) == model


def test_guess_model_amd(tmp_path: Path) -> None:
    flags = "popcnt cx16 abm sse4a avx aes pclmulqdq xsave sse4_1 sse4_2"
    make_cpu_tree(tmp_path, sockets=1, cores=1, threads=1, flags=flags)
    assert cpu.guess_model(cpu.read_host_cpu(tmp_path, arch="x86_64")) == "Opteron_G4"


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0-3,8,10-11\n", (0, 1, 2, 3, 8, 10, 11)), ("5", (5,)), ("", ()), ("1,1", (1,))],
)
def test_parse_cpu_list(text: str, cpus: tuple[int, ...]) -> None:
    assert cpu.parse_cpu_list(text) == cpus


def test_parse_cpuinfo_blocks() -> None:
    blocks = cpu.parse_cpuinfo("processor\t: 0\nflags\t: a b\n\n\nprocessor\t: 1\n")
    assert blocks == [{"processor": "0", "flags": "a b"}, {"processor": "1"}]
