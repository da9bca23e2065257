"""Shared helpers for the benchmarks: a throw-away state root, timing, the tiny guest."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

MARKER = b"PYVIRT-TINY-READY"
ROOT = Path(__file__).resolve().parent.parent
PYVIRT = str(Path(sys.executable).parent / "pyvirt")


@contextmanager
def state_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="pvb", dir="/tmp"))
    old = os.environ.get("PYVIRT_STATE_DIR")
    os.environ["PYVIRT_STATE_DIR"] = str(root)
    try:
        yield root
    finally:
        run = root / "run" / "qemu"
        if run.is_dir():
            for entry in run.iterdir():
                if entry.is_dir() and not entry.name.startswith("."):
                    subprocess.run([PYVIRT, "destroy", entry.name], capture_output=True)
        if old is None:
            os.environ.pop("PYVIRT_STATE_DIR", None)
        else:
            os.environ["PYVIRT_STATE_DIR"] = old
        shutil.rmtree(root, ignore_errors=True)


def pv(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PYVIRT, *args], capture_output=True, text=True, check=True)


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def wait_marker(log: Path, t0: float, timeout: float = 60.0, count: int = 1) -> float:
    """Seconds from ``t0`` until ``log`` holds the marker ``count`` times (polled every 2 ms)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            if log.read_bytes().count(MARKER) >= count:
                return time.perf_counter() - t0
        except FileNotFoundError:
            pass
        time.sleep(0.002)
    raise TimeoutError(f"no marker in {log}")


def tiny_image() -> tuple[Path, Path]:
    from pyvirt.images import tiny

    img = tiny.default_image()
    return img.kernel, img.initrd


def domain_xml(name: str, kernel: Path, initrd: Path, memory_mib: int = 128) -> str:
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'><target port='0'/></serial></devices>
</domain>
"""


def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def ms(x: float) -> str:
    return f"{x * 1000:8.1f} ms"
