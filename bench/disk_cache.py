"""Disk cache modes × image formats (``pyvirt bench disk``) against fio on the same storage.

Runs ``pyvirt bench disk DIR --json`` (QEMU's block layer through ``qemu-img bench``), then the
same pattern (4 KiB writes, 8 in flight, 64 KiB apart) with fio directly on a raw file in the
same directory, as the baseline of what the host storage does without QEMU:

* ``direct``: O_DIRECT (what cache=none asks for),
* ``direct+sync``: O_DIRECT | O_DSYNC (cache=directsync),
* ``buffered``: the page cache, no flushes (cache=writeback / unsafe).

Prints the table, then each raw-image cell (re-measured with aio=native, as fio uses libaio)
and its ratio to the fio equivalent.
Usage: ``.venv/bin/python bench/disk_cache.py [DIR]`` (default: a temporary dir under /var/tmp).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import PYVIRT

COUNT = 4096
FIO_MODES = {
    "direct": ["--direct=1"],
    "direct+sync": ["--direct=1", "--sync=1"],
    "buffered": ["--direct=0"],
}
EQUIVALENT = {"none": "direct", "directsync": "direct+sync", "writeback": "buffered"}


def fio(directory: Path, mode: str) -> float:
    """Write IOPS of fio with ``mode`` on a fresh sparse file in ``directory``."""
    path = directory / "fio.raw"
    path.unlink(missing_ok=True)
    argv = ["fio", "--name=b", f"--filename={path}", "--rw=write:60k", "--bs=4k",
            "--iodepth=8", "--ioengine=libaio", f"--size={COUNT * 64}k",
            "--output-format=json", *FIO_MODES[mode]]  # fmt: skip
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    path.unlink(missing_ok=True)
    return float(json.loads(out)["jobs"][0]["write"]["iops"])


def main() -> int:
    if shutil.which("fio") is None:
        print("fio is not installed (Debian package fio)")
        return 1
    tmp = None
    if len(sys.argv) > 1:
        directory = Path(sys.argv[1])
    else:
        tmp = directory = Path(tempfile.mkdtemp(prefix="pyvirt-bench-", dir="/var/tmp"))
    try:
        proc = subprocess.run([PYVIRT, "bench", "disk", str(directory)], capture_output=True,
                              text=True, check=True)  # fmt: skip
        print(proc.stdout)
        data = json.loads(
            subprocess.run([PYVIRT, "bench", "disk", str(directory), "--json", "--format", "raw",
                            "--cache", "none", "--cache", "directsync", "--cache", "writeback",
                            "--io", "native"],
                           capture_output=True, text=True, check=True).stdout
        )  # fmt: skip
        base = {mode: fio(directory, mode) for mode in FIO_MODES}
        print("Baseline: fio on a raw file in the same directory (same pattern)")
        print(f" {'cache (raw image)':<20}{'QEMU IOPS':>12}{'fio':>14}{'fio IOPS':>12}{'ratio':>8}")
        for cell in data["cells"]:
            mode = EQUIVALENT[cell["cache"]]
            ratio = cell["write_iops"] / base[mode]
            print(f" {cell['cache']:<20}{cell['write_iops']:>12,.0f}{mode:>14}"
                  f"{base[mode]:>12,.0f}{ratio:>8.2f}")  # fmt: skip
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
