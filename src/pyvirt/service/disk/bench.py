"""``pyvirt bench disk``: the same I/O pattern for every cache mode × image format.

Without a full guest image the measurement is QEMU's own block layer, ``qemu-img bench``: the
code path a guest's requests take below the virtual device (format driver, cache mode, aio
backend), without guest or device emulation noise (this host's KVM is emulated, so a TCG guest
would measure the CPU emulator, not the disk). Each cell:

* creates a fresh image in the directory under test (the storage of the named domain's first
  file disk, or of the named image): ``raw`` (sparse), ``qcow2`` (sparse), ``qcow2`` with
  ``preallocation=falloc`` (metadata and space reserved: "thick");
* writes ``BLOCK``-byte requests, ``DEPTH`` in flight, each at a fresh 64 KiB step (so every
  write of a sparse qcow2 allocates a cluster, as scattered small files do), then reads them
  back the same way;
* calibrates the request count with a short run so that each cell lasts about ``target``
  seconds (the whole table stays under two minutes even for the slow synchronous modes).

This module runs ``qemu-img bench`` itself (``pyvirt.storage.qemu_img`` has no bench
wrapper); the scratch directory is removed afterwards.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt import hostcmd
from pyvirt.errors import HostCommandError, InvalidConfigError, NotFoundError

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager

CACHE_MODES = ("writethrough", "writeback", "none", "directsync", "unsafe")
#: label -> (qemu-img format, create options)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "raw": ("raw", []),
    "qcow2": ("qcow2", []),
    "qcow2-prealloc": ("qcow2", ["-o", "preallocation=falloc"]),
}
IMAGE_SIZE = 1024**3
STEP = 64 * 1024
MAX_REQUESTS = IMAGE_SIZE // STEP
METHOD = "qemu-img bench (QEMU block layer, no guest)"
_DONE = re.compile(r"Run completed in ([0-9.]+) seconds")


@dataclass
class Cell:
    """One measurement: a cache mode on a format."""

    cache: str
    format: str
    requests: int
    write_iops: float
    read_iops: float
    block: int

    @property
    def write_mib_s(self) -> float:
        """Write throughput in MiB/s."""
        return self.write_iops * self.block / 1024**2

    @property
    def read_mib_s(self) -> float:
        """Read throughput in MiB/s."""
        return self.read_iops * self.block / 1024**2


def bench_dir(mgr: DomainManager, target: str) -> Path:
    """The directory to measure: an image's, a directory itself, or the directory of a
    domain's first file disk.

    :raises NotFoundError: neither an existing path nor a domain with a file disk
    """
    path = Path(target)
    if path.is_dir():
        return path
    if path.exists():
        return path.parent
    dom = mgr.definition(target)
    for disk in dom.devices.disks:
        if disk.type == "file" and disk.source_path and disk.device == "disk":
            return Path(disk.source_path).parent
    raise NotFoundError(
        f"domain '{dom.name}' has no file disk to measure the storage of",
        hint="name an image file or a directory instead",
    )


def _qemu_img() -> str:
    return hostcmd.tool("qemu-img")


def _run(argv: list[str]) -> float:
    proc = hostcmd.run(argv, what="qemu-img bench failed", timeout=300)
    m = _DONE.search(proc.stdout)
    if not m:
        raise HostCommandError(
            "qemu-img bench failed", argv=argv, returncode=proc.returncode, stderr=proc.stderr
        )
    return max(float(m.group(1)), 1e-6)


def _bench(image: Path, fmt: str, cache: str, aio: str, count: int, block: int, depth: int,
           write: bool) -> float:  # fmt: skip
    argv = [_qemu_img(), "bench", "-f", fmt, "-t", cache, "-i", aio, "-c", str(count)]
    argv += ["-d", str(depth), "-s", str(block), "-S", str(STEP)]
    if write:
        argv.append("-w")
    return count / _run([*argv, str(image)])


def _create(image: Path, fmt: str, opts: list[str]) -> None:
    image.unlink(missing_ok=True)
    argv = [_qemu_img(), "create", "-q", "-f", fmt, *opts, str(image), str(IMAGE_SIZE)]
    hostcmd.run(argv, what="qemu-img create failed", timeout=120)


def run(
    directory: Path,
    *,
    caches: tuple[str, ...] = CACHE_MODES,
    formats: tuple[str, ...] = tuple(FORMATS),
    aio: str = "threads",
    block: int = 4096,
    depth: int = 8,
    target: float = 1.0,
    progress: Callable[[Cell], None] | None = None,
) -> list[Cell]:
    """Measure every cache mode × format in *directory*; returns the cells in table order.

    :raises InvalidConfigError: unknown cache mode or format, or native aio without O_DIRECT
    """
    for c in caches:
        if c not in CACHE_MODES:
            raise InvalidConfigError(f"cache mode '{c}' is not one of {', '.join(CACHE_MODES)}")
    for f in formats:
        if f not in FORMATS:
            raise InvalidConfigError(f"format '{f}' is not one of {', '.join(FORMATS)}")
    if block > STEP or block % 512:
        raise InvalidConfigError(f"block size must be a multiple of 512 up to {STEP}")
    scratch = Path(tempfile.mkdtemp(prefix=".pyvirt-bench-", dir=directory))
    cells: list[Cell] = []
    try:
        for cache in caches:
            mode_aio = aio if cache in ("none", "directsync") else "threads"
            for label in formats:
                fmt, opts = FORMATS[label]
                image = scratch / f"bench.{label}"
                _create(image, fmt, opts)
                probe = _bench(image, fmt, cache, mode_aio, 128, block, depth, True)
                count = int(min(MAX_REQUESTS - 128, max(256, probe * target)))
                _create(image, fmt, opts)
                w = _bench(image, fmt, cache, mode_aio, count, block, depth, True)
                r = _bench(image, fmt, cache, mode_aio, count, block, depth, False)
                cell = Cell(cache, label, count, w, r, block)
                cells.append(cell)
                if progress is not None:
                    progress(cell)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return cells


def filesystem(directory: Path) -> str:
    """``TYPE on DEVICE`` of the file system holding *directory* (for the report)."""
    best, fs = "", "unknown"
    real = os.path.realpath(directory)
    try:
        with open("/proc/mounts") as f:
            for line in f:
                dev, mnt, typ, *_ = line.split()
                if (real == mnt or real.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best):
                    best, fs = mnt, f"{typ} on {dev}"
    except OSError:
        pass
    return fs


def elapsed(fn: Callable[[], list[Cell]]) -> tuple[list[Cell], float]:
    """Run *fn* and return its cells and the wall time it took."""
    t0 = time.monotonic()
    cells = fn()
    return cells, time.monotonic() - t0
