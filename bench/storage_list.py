"""bench/storage_list: ``vol-list --details`` on a pool with 1000 volumes (target < 300 ms).

The volumes are 800 raw and 200 qcow2 files in the default pool. Each figure is the median
wall time of the real CLI (a new Python process, as a user runs it); the baselines in the same
run are ``python -c pass`` (the interpreter alone) and ``qemu-img info`` of one volume (what
listing would cost per volume if it asked qemu-img instead of reading headers).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, median, ms, state_root, timed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--volumes", type=int, default=1000)
    args = ap.parse_args()
    from pyvirt.service.connection import open_connection

    with state_root() as root:
        vols = open_connection().pools.volumes
        n_qcow2 = args.volumes // 5
        for i in range(args.volumes):
            fmt = "qcow2" if i < n_qcow2 else "raw"
            vols.create_as("default", f"v{i:04d}.{fmt}", 1 << 20, format=fmt, allocation=0)
        argv = [PYVIRT, "vol-list", "default", "--details"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        assert out.count("\n") >= args.volumes + 2
        t_list = median([timed(lambda: subprocess.run(argv, capture_output=True, check=True))
                         for _ in range(args.runs)])  # fmt: skip
        t_py = median([timed(lambda: subprocess.run([sys.executable, "-c", "pass"]))
                       for _ in range(args.runs)])  # fmt: skip
        one = str(root / "lib" / "images" / "v0000.qcow2")
        qi = ["qemu-img", "info", "-U", one]
        t_qi = median([timed(lambda: subprocess.run(qi, capture_output=True)) for _ in range(5)])
        print(f"vol-list --details, {args.volumes} volumes: {ms(t_list)} (target < 300 ms)")
        print(f"  baseline python -c pass:          {ms(t_py)}")
        print(f"  qemu-img info of one volume:      {ms(t_qi)} (x{args.volumes} = "
              f"{ms(t_qi * args.volumes)} if listing ran it per volume)")  # fmt: skip


if __name__ == "__main__":
    main()
