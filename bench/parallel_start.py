"""bench/parallel_start: 10 guests started at once, time until all show their marker.

pyvirt: 10 `pyvirt start` processes launched together; direct: the same 10 argv (as pyvirt
ran them) launched together. Prints both and the ratio. Target (issue 2): <= 1.05 x direct.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, domain_xml, median, pv, state_root, tiny_image, wait_marker


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--guests", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    kernel, initrd = tiny_image()
    names = [f"p{i}" for i in range(args.guests)]
    with state_root() as root:
        for n in names:
            (root / f"{n}.xml").write_text(domain_xml(n, kernel, initrd))
            pv("define", str(root / f"{n}.xml"))
        logs = {n: root / f"log/qemu/{n}/console.log" for n in names}
        argvs: dict[str, list[str]] = {}
        p_times, d_times = [], []
        for _ in range(args.runs):
            for log in logs.values():
                log.unlink(missing_ok=True)
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen([PYVIRT, "start", n], stdout=subprocess.DEVNULL) for n in names
            ]
            for p in procs:
                p.wait()
            p_times.append(max(wait_marker(logs[n], t0, 180) for n in names))
            for n in names:
                rec = json.loads((root / f"run/qemu/{n}/runtime.json").read_text())
                argvs[n] = rec["argv"]
                pv("destroy", n)
            for n in names:
                logs[n].unlink(missing_ok=True)
                (root / f"run/qemu/{n}").mkdir(parents=True, exist_ok=True)
            t0 = time.perf_counter()
            procs = [
                subprocess.Popen(argvs[n], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
                for n in names
            ]
            for p in procs:
                p.wait()
            d_times.append(max(wait_marker(logs[n], t0, 180) for n in names))
            for n in names:
                pid = int((root / f"run/qemu/{n}/qemu.pid").read_text())
                os.kill(pid, signal.SIGKILL)
                shutil.rmtree(root / f"run/qemu/{n}", ignore_errors=True)
            time.sleep(0.3)
    p, d = median(p_times), median(d_times)
    print(f"parallel_start: {args.guests} guests, median of {args.runs}")
    print(
        f"  pyvirt all up: {p:6.2f} s   direct all up: {d:6.2f} s   ratio {p / d:5.2f}"
        f"   target <= 1.05: {'OK' if p / d <= 1.05 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
