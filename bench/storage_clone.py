"""bench/storage_clone: linked clones, full clones and vol-download against cp and qemu-img.

1. Linked clone (a qcow2 volume backed by another) of a 1 GiB and a 10 GiB volume, through
   the service API and the real CLI: target < 100 ms and independent of the size.
2. Full clone (``vol-clone``) and ``vol-download`` of a 1 GiB raw volume full of data,
   against ``cp --sparse=always`` and ``qemu-img convert -O raw`` of the same file in the
   same run (best of ``--runs``; the page cache is warm for all of them alike). Target:
   throughput >= 0.9x the baseline.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, median, ms, state_root, timed

GIB = 1 << 30


def fill(path: Path, size: int) -> None:
    block = os.urandom(16 << 20)
    with open(path, "r+b") as f:
        for off in range(0, size, len(block)):
            f.write(block[: min(len(block), size - off)])


def best(fn: object, runs: int, cleanup: object) -> float:
    times = []
    for _ in range(runs):
        assert callable(fn) and callable(cleanup)
        times.append(timed(fn))
        cleanup()
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from pyvirt.service.connection import open_connection

    with state_root() as root:
        conn = open_connection()
        vols = conn.pools.volumes
        images = root / "lib" / "images"
        print("linked clone (qcow2 backing), median of", args.runs * 3)
        for size in (GIB, 10 * GIB):
            base = f"base{size // GIB}g.qcow2"
            vols.create_as("default", base, size, format="qcow2")
            api, cli = [], []
            for i in range(args.runs * 3):

                def api_clone(
                    name: str = f"l{size}-{i}", size: int = size, base: str = base
                ) -> None:
                    vols.create_as(
                        "default", name, size, format="qcow2", backing_vol=base,
                        backing_vol_format="qcow2",
                    )  # fmt: skip

                api.append(timed(api_clone))
                argv = [
                    PYVIRT, "vol-create-as", "default", f"c{size}-{i}", str(size), "--format",
                    "qcow2", "--backing-vol", base, "--backing-vol-format", "qcow2",
                ]  # fmt: skip
                cli.append(
                    timed(lambda argv=argv: subprocess.run(argv, check=True, capture_output=True))
                )
            print(
                f"  {size // GIB:>2} GiB: API {ms(median(api))}, CLI {ms(median(cli))} "
                "(target < 100 ms)"
            )
        src = images / "full.img"
        vols.create_as("default", "full.img", GIB, allocation=0)
        fill(src, GIB)
        out = Path(str(root)) / "out.img"

        def rm(*paths: Path) -> object:
            return lambda: [p.unlink(missing_ok=True) for p in paths]

        t_cp = best(
            lambda: subprocess.run(["cp", "--sparse=always", str(src), str(out)], check=True),
            args.runs,
            rm(out),
        )
        t_qi = best(
            lambda: subprocess.run(
                ["qemu-img", "convert", "-f", "raw", "-O", "raw", str(src), str(out)], check=True
            ),
            args.runs,
            rm(out),
        )
        t_clone = best(
            lambda: subprocess.run(
                [PYVIRT, "vol-clone", str(src), "copy.img"], check=True, capture_output=True
            ),
            args.runs,
            lambda: vols.delete("copy.img", "default"),
        )
        t_dl = best(
            lambda: subprocess.run(
                [PYVIRT, "vol-download", str(src), str(out), "--sparse"], check=True
            ),
            args.runs,
            rm(out),
        )
        t_clone_api = best(
            lambda: vols.clone(str(src), "copy.img"),
            args.runs,
            lambda: vols.delete("copy.img", "default"),
        )

        def download() -> None:
            with open(out, "wb") as f:
                vols.download(str(src), f, sparse=True)

        t_dl_api = best(download, args.runs, rm(out))
        base_t = min(t_cp, t_qi)
        print("full copy of 1 GiB of data, best of", args.runs)
        for label, t in (
            ("cp --sparse=always", t_cp),
            ("qemu-img convert -O raw", t_qi),
            ("pyvirt vol-clone", t_clone),
            ("pyvirt vol-download --sparse", t_dl),
            ("API volumes.clone", t_clone_api),
            ("API volumes.download(sparse)", t_dl_api),
        ):
            print(
                f"  {label:<30} {ms(t):>10}  {GIB / t / (1 << 20):7.0f} MiB/s  "
                f"{base_t / t:5.2f}x of the faster baseline"
            )
        print("  (target: >= 0.90x)")
        time.sleep(0)


if __name__ == "__main__":
    main()
