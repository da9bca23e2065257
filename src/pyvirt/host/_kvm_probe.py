"""The KVM speed probe that runs in a child process: a tiny real-mode guest timed with KVM_RUN.

This file is executed as a script (``python -I -S _kvm_probe.py --device /dev/kvm --budget
0.15``) by :func:`pyvirt.host.kvm.run_probe`, so it imports nothing but the standard library
and prints one JSON object on stdout. Running it in a child keeps a wedged ``KVM_RUN`` (or a
crash in the ioctl plumbing) away from the caller, which kills the child on a hard timeout.

What it measures, with one vCPU and 64 KiB of guest memory at guest-physical address 0:

1. **exits**: a guest loop ``out 0x10, al; jmp $-2``; every ``out`` is a VM exit back to this
   process, so the count per second is the round-trip cost of an exit (hardware KVM: tens of
   thousands per second even through Python).
2. **loop**: ``mov ecx, [0x2000]; dec ecx; jnz $-2; out 0x11, al; jmp start``; the host writes
   the iteration count to guest address 0x2000 before each ``KVM_RUN`` and grows it tenfold
   (1e3 .. 1e7) until one chunk takes at least 2 ms. Hardware KVM runs about one iteration per
   cycle (10M in a few ms); an emulating KVM is thousands of times slower.

The guest runs in real mode on purpose: every PC boot (SeaBIOS, OVMF's reset vector) starts
there, so a KVM that only runs long-mode code fast cannot boot a stock guest either.

A ``SIGALRM`` timer bounds the whole run to the budget: its handler raises, which makes the
blocked ``KVM_RUN`` ioctl return with EINTR, and the partial result is still reported.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import fcntl
import json
import mmap
import os
import signal
import struct
import sys
import time
from typing import Any

# ioctl numbers from <linux/kvm.h> (KVMIO = 0xAE); _IOW/_IOR ones encode the struct size.
KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_CHECK_EXTENSION = 0xAE03
KVM_GET_VCPU_MMAP_SIZE = 0xAE04
KVM_CREATE_VCPU = 0xAE41
KVM_SET_USER_MEMORY_REGION = 0x4020AE46  # struct kvm_userspace_memory_region, 32 bytes
KVM_SET_TSS_ADDR = 0xAE47
KVM_RUN = 0xAE80
KVM_SET_REGS = 0x4090AE82  # struct kvm_regs, 144 bytes
KVM_GET_SREGS = 0x8138AE83  # struct kvm_sregs, 312 bytes
KVM_SET_SREGS = 0x4138AE84

KVM_EXIT_IO = 2
KVM_API_VERSION = 12

GUEST_MEM_SIZE = 0x10000
EXIT_PROGRAM_ADDR = 0x1000
LOOP_PROGRAM_ADDR = 0x1100
LOOP_COUNT_ADDR = 0x2000
# Outside guest RAM and below 2 GiB (fcntl.ioctl takes a C int); only used on VMX hosts
# without unrestricted-guest support, where real mode needs a TSS.
TSS_ADDR = 0x7FFBD000

# out 0x10, al ; jmp back to the out
EXIT_PROGRAM = bytes([0xE6, 0x10, 0xEB, 0xFC])
# mov ecx, [0x2000] ; dec ecx ; jnz dec ; out 0x11, al ; jmp mov
LOOP_PROGRAM = bytes(
    [
        *(0x66, 0x8B, 0x0E, LOOP_COUNT_ADDR & 0xFF, LOOP_COUNT_ADDR >> 8),
        *(0x66, 0x49, 0x75, 0xFC),
        *(0xE6, 0x11, 0xEB, 0xF3),
    ]
)

EXIT_PHASE_SECONDS = 0.03
EXIT_PHASE_MAX = 2000
LOOP_FIRST_CHUNK = 1_000
LOOP_MAX_CHUNK = 10_000_000
LOOP_TARGET_SECONDS = 0.002


class _BudgetExpired(Exception):
    """Raised by the SIGALRM handler to break out of a blocked KVM_RUN."""


def _on_alarm(signum: int, frame: object) -> None:
    raise _BudgetExpired


def _set_rip(vcpu: int, rip: int) -> None:
    regs = bytearray(144)
    struct.pack_into("=QQ", regs, 16 * 8, rip, 0x2)  # rip, rflags (bit 1 is always set)
    fcntl.ioctl(vcpu, KVM_SET_REGS, bytes(regs))


def _run_once(vcpu: int, run: mmap.mmap) -> int:
    fcntl.ioctl(vcpu, KVM_RUN, 0)
    reason: int = struct.unpack_from("=I", run, 8)[0]
    return reason


def probe(device: str, budget: float) -> dict[str, Any]:
    """Create a VM on ``device``, run the two guest programs and return the measurements.

    :param device: path of the KVM device node
    :param budget: wall-clock seconds the guest may run in total
    :returns: a JSON-serializable dict; ``error`` is set (and ``stage`` says where) on failure
    """
    out: dict[str, Any] = {
        "stage": "open",
        "error": None,
        "timed_out": False,
        "api_version": None,
        "exits": 0,
        "exit_seconds": 0.0,
        "loop_iterations": 0,
        "loop_seconds": 0.0,
        "loop_chunks": [],
    }
    start = time.perf_counter()
    deadline = start + budget
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, budget)
    try:
        kvm = os.open(device, os.O_RDWR | os.O_CLOEXEC)
        out["stage"] = "api"
        out["api_version"] = fcntl.ioctl(kvm, KVM_GET_API_VERSION, 0)
        if out["api_version"] != KVM_API_VERSION:
            out["error"] = f"KVM API version {out['api_version']}, expected {KVM_API_VERSION}"
            return out
        out["stage"] = "create-vm"
        vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
        # Only VMX without unrestricted guest needs it; failure is harmless elsewhere.
        with contextlib.suppress(OSError):
            fcntl.ioctl(vm, KVM_SET_TSS_ADDR, TSS_ADDR)
        mem = mmap.mmap(-1, GUEST_MEM_SIZE)
        mem[EXIT_PROGRAM_ADDR : EXIT_PROGRAM_ADDR + len(EXIT_PROGRAM)] = EXIT_PROGRAM
        mem[LOOP_PROGRAM_ADDR : LOOP_PROGRAM_ADDR + len(LOOP_PROGRAM)] = LOOP_PROGRAM
        host_addr = ctypes.addressof(ctypes.c_char.from_buffer(mem))
        region = struct.pack("=IIQQQ", 0, 0, 0, GUEST_MEM_SIZE, host_addr)
        fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region)
        out["stage"] = "create-vcpu"
        vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
        run_size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)
        run = mmap.mmap(vcpu, run_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        sregs = bytearray(312)
        fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
        struct.pack_into("=Q", sregs, 0, 0)  # cs.base
        struct.pack_into("=H", sregs, 12, 0)  # cs.selector
        fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))

        out["stage"] = "exits"
        _set_rip(vcpu, EXIT_PROGRAM_ADDR)
        t0 = time.perf_counter()
        phase_end = min(deadline, t0 + EXIT_PHASE_SECONDS)
        while out["exits"] < EXIT_PHASE_MAX:
            reason = _run_once(vcpu, run)
            if reason != KVM_EXIT_IO:
                out["error"] = f"unexpected KVM exit reason {reason}"
                return out
            out["exits"] += 1
            out["exit_seconds"] = time.perf_counter() - t0
            if t0 + out["exit_seconds"] >= phase_end:
                break

        out["stage"] = "loop"
        _set_rip(vcpu, LOOP_PROGRAM_ADDR)
        chunk = LOOP_FIRST_CHUNK
        while time.perf_counter() < deadline:
            struct.pack_into("<I", mem, LOOP_COUNT_ADDR, chunk)
            t0 = time.perf_counter()
            reason = _run_once(vcpu, run)
            took = time.perf_counter() - t0
            if reason != KVM_EXIT_IO:
                out["error"] = f"unexpected KVM exit reason {reason}"
                return out
            out["loop_chunks"].append([chunk, took])
            # The fastest chunk is the best estimate: exit overhead only ever slows one down.
            if out["loop_iterations"] == 0 or chunk / took > (
                out["loop_iterations"] / out["loop_seconds"]
            ):
                out["loop_iterations"], out["loop_seconds"] = chunk, took
            if took >= LOOP_TARGET_SECONDS or chunk >= LOOP_MAX_CHUNK:
                break
            chunk *= 10
        out["stage"] = "done"
    except _BudgetExpired:
        out["timed_out"] = True
    except OSError as err:
        out["error"] = f"{out['stage']}: {err.strerror or err}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        out["elapsed"] = time.perf_counter() - start
    return out


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the probe result as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--device", default="/dev/kvm")
    parser.add_argument("--budget", type=float, default=0.15)
    args = parser.parse_args(argv)
    json.dump(probe(args.device, args.budget), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
