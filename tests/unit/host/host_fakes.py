"""Plain helpers for host/ unit tests: fake trees and canned KVM states."""

from __future__ import annotations

from pathlib import Path

from pyvirt.host.kvm import KvmDevice, KvmStatus, ProbeResult

DATA = Path(__file__).resolve().parents[2] / "data" / "host"


def write(root: Path, rel: str, text: str = "") -> Path:
    """Create ``root/rel`` with ``text``, making parent directories."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def make_cpu_tree(
    root: Path,
    *,
    sockets: int,
    cores: int,
    threads: int,
    vendor: str = "AuthenticAMD",
    flags: str = "fpu svm sse4_1 sse4_2",
    sysfs: bool = True,
) -> Path:
    """Write a consistent ``proc/cpuinfo`` (and sysfs topology) for the given shape.

    Logical CPUs are numbered socket-major, then thread, then core (Linux's usual order puts
    SMT siblings ``cores*sockets`` apart, which the readers must not depend on).
    """
    blocks = []
    cpu = 0
    ids = []
    for thread in range(threads):
        for socket in range(sockets):
            for core in range(cores):
                ids.append((socket, core))
                _ = thread
    for cpu, (socket, core) in enumerate(ids):
        blocks.append(
            f"processor\t: {cpu}\nvendor_id\t: {vendor}\ncpu family\t: 25\nmodel\t\t: 1\n"
            f"model name\t: Fake CPU\nstepping\t: 1\nphysical id\t: {socket}\n"
            f"core id\t\t: {core}\ncpu cores\t: {cores}\nflags\t\t: {flags}\n"
        )
        if sysfs:
            topo = f"sys/devices/system/cpu/cpu{cpu}/topology"
            write(root, f"{topo}/physical_package_id", f"{socket}\n")
            write(root, f"{topo}/die_id", "0\n")
            write(root, f"{topo}/core_id", f"{core}\n")
    write(root, "proc/cpuinfo", "\n".join(blocks))
    if sysfs:
        write(root, "sys/devices/system/cpu/online", f"0-{len(ids) - 1}\n")
    return root


def probe_result(
    *,
    exits: int = 2000,
    exit_seconds: float = 0.02,
    loop_iterations: int = 10_000_000,
    loop_seconds: float = 0.004,
    error: str | None = None,
    timed_out: bool = False,
    stage: str = "done",
) -> ProbeResult:
    """A canned probe result (defaults: hardware-fast)."""
    return ProbeResult(
        error=error,
        stage=stage,
        timed_out=timed_out,
        api_version=12,
        exits=exits,
        exit_seconds=exit_seconds,
        loop_iterations=loop_iterations,
        loop_seconds=loop_seconds,
        elapsed=0.05,
    )


def kvm_state(verdict: str, *, device: str = "/dev/kvm") -> KvmStatus:
    """A canned :class:`KvmStatus` for ``fast``, ``slow``, ``absent`` or ``denied``."""
    ok = KvmDevice(device, exists=True, accessible=True, api_version=12)
    if verdict == "fast":
        return KvmStatus("fast", True, "fast", ok, loop_rate=2e9, exits_per_sec=1e5, slowdown=0.5)
    if verdict == "slow":
        return KvmStatus(
            "slow",
            True,
            "KVM runs guest code at 800,000 loop iterations/s",
            ok,
            modules=("kvm", "kvm_pvm"),
            loop_rate=8e5,
            exits_per_sec=8e4,
            slowdown=1250.0,
        )
    if verdict == "denied":
        dev = KvmDevice(device, exists=True, error=f"cannot open {device}: Permission denied")
        return KvmStatus("absent", False, dev.error or "", dev)
    dev = KvmDevice(device, exists=False, error=f"{device} does not exist")
    return KvmStatus("absent", False, dev.error or "", dev)
