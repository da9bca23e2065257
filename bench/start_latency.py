"""bench/start_latency: `pyvirt start` vs the same QEMU argv launched directly.

Interleaved runs; prints medians of (a) the time until the command returns and (b) the time
from the start of the command until the guest's marker line is on its serial console, and
the ratios pyvirt/direct. Targets (issue 2): start returns < 120 ms; marker <= 1.05 x direct.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import domain_xml, median, ms, pv, state_root, tiny_image, wait_marker


def direct_run(argv: list[str], run_dir: Path, console: Path) -> tuple[float, float]:
    run_dir.mkdir(parents=True, exist_ok=True)
    console.unlink(missing_ok=True)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    returned = time.perf_counter() - t0
    marker = wait_marker(console, t0)
    pid = int((run_dir / "qemu.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    return returned, marker


def pyvirt_run(name: str, console: Path) -> tuple[float, float, list[str]]:
    console.unlink(missing_ok=True)
    t0 = time.perf_counter()
    pv("start", name)
    returned = time.perf_counter() - t0
    marker = wait_marker(console, t0)
    rec = json.loads(
        (Path(os.environ["PYVIRT_STATE_DIR"]) / "run/qemu" / name / "runtime.json").read_text()
    )
    pv("destroy", name)
    return returned, marker, rec["argv"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    kernel, initrd = tiny_image()
    with state_root() as root:
        xml = root / "b.xml"
        xml.write_text(domain_xml("bench", kernel, initrd))
        pv("define", str(xml))
        console = root / "log/qemu/bench/console.log"
        run_dir = root / "run/qemu/bench"
        _, _, argv = pyvirt_run("bench", console)  # warm-up, and the exact argv pyvirt uses
        direct_run(argv, run_dir, console)  # warm-up
        p_ret, p_mark, d_ret, d_mark = [], [], [], []
        for _ in range(args.runs):
            r, m, _ = pyvirt_run("bench", console)
            p_ret.append(r)
            p_mark.append(m)
            r, m = direct_run(argv, run_dir, console)
            d_ret.append(r)
            d_mark.append(m)
            import shutil

            shutil.rmtree(run_dir, ignore_errors=True)
    print(f"start_latency ({args.runs} interleaved runs, medians)")
    print(f"  {'':24}{'pyvirt':>11}{'direct':>11}{'ratio':>8}")
    print(
        f"  {'command returns':24}{ms(median(p_ret))}{ms(median(d_ret))}"
        f"{median(p_ret) / median(d_ret):8.2f}"
    )
    print(
        f"  {'start -> marker':24}{ms(median(p_mark))}{ms(median(d_mark))}"
        f"{median(p_mark) / median(d_mark):8.2f}"
    )
    print(
        f"  target: pyvirt start returns < 120 ms: {'OK' if median(p_ret) < 0.12 else 'MISSED'};"
        f" marker ratio <= 1.05: {'OK' if median(p_mark) / median(d_mark) <= 1.05 else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
