"""bench/cli_latency: define, destroy, `list --all` and dominfo with 1, 100 and 1000 domains.

Each figure is the median wall time of the real CLI (a new Python process each time, as a
user runs it). The baseline printed alongside is `python -c pass` in this same run: the cost
of the interpreter alone, which no Python CLI can beat. Targets (issue 2): define < 50 ms,
destroy < 50 ms, `list --all` at 1000 domains no slower than libvirt's at 500 (70 ms).
"""

from __future__ import annotations

import argparse
import functools
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    PYVIRT,
    domain_xml,
    median,
    ms,
    pv,
    state_root,
    timed,
    tiny_image,
    wait_marker,
)


def run(*args: str) -> None:
    subprocess.run([PYVIRT, *args], capture_output=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--sizes", default="1,100,1000")
    args = ap.parse_args()
    kernel, initrd = tiny_image()
    sizes = [int(s) for s in args.sizes.split(",")]
    baseline = median(
        [timed(lambda: subprocess.run([sys.executable, "-c", "pass"])) for _ in range(args.runs)]
    )
    print(f"cli_latency (medians of {args.runs}); python -c pass = {ms(baseline).strip()}")
    print(f"  {'domains':>8}{'define':>12}{'destroy':>12}{'list --all':>12}{'dominfo':>12}")
    for size in sizes:
        with state_root() as root:
            from pyvirt.service.connection import open_connection

            mgr = open_connection(f"pyvirt:///embed?root={root}").domains
            for i in range(size - 1):
                mgr.define(domain_xml(f"vm{i:04d}", kernel, initrd))
            xml = root / "x.xml"
            xml.write_text(domain_xml("probe", kernel, initrd))
            define_t = []
            define_probe = functools.partial(run, "define", str(xml))
            for _ in range(args.runs):
                define_t.append(timed(define_probe))
                run("undefine", "probe")
            run("define", str(xml))
            list_t = [timed(lambda: run("list", "--all")) for _ in range(args.runs)]
            info_t = [timed(lambda: run("dominfo", "probe")) for _ in range(args.runs)]
            destroy_t = []
            console = root / "log/qemu/probe/console.log"
            for _ in range(max(3, args.runs // 2)):
                console.unlink(missing_ok=True)
                pv("start", "probe")
                wait_marker(console, 0)
                destroy_t.append(timed(lambda: run("destroy", "probe")))
        print(
            f"  {size:>8}{ms(median(define_t)):>12}{ms(median(destroy_t)):>12}"
            f"{ms(median(list_t)):>12}{ms(median(info_t)):>12}"
        )


if __name__ == "__main__":
    main()
