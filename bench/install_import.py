"""bench/install_import: `pyvirt install --import` of the tiny guest to its marker line, and a
linked clone end to end.

Baselines measured in the same run: the same guest by `pyvirt define` + `pyvirt start`, and
by its QEMU argv launched directly. virt-install (virtinst) is not installed on this machine,
so there is no virt-install figure. Medians of --runs (default 5), interleaved. The linked
clone target (issue 6) is < 200 ms end to end (the `pyvirt clone --linked` command).
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
from _common import median, ms, pv, state_root, tiny_image, wait_marker


def install_args(name: str, kernel: Path, initrd: Path) -> list[str]:
    return ["install", "--name", name, "--memory", "128", "--import", "--virt-type", "qemu",
            "--machine", "pc", "--boot", f'kernel={kernel},initrd={initrd},kernel_args="'
            'console=ttyS0 quiet"', "--disk", "none", "--network", "none", "--graphics",
            "none", "--noautoconsole", "--os-variant", "generic", "-q"]  # fmt: skip


def run_install(root: Path, kernel: Path, initrd: Path) -> float:
    console = root / "log/qemu/inst/console.log"
    console.unlink(missing_ok=True)
    t0 = time.perf_counter()
    pv(*install_args("inst", kernel, initrd))
    took = wait_marker(console, t0)
    pv("destroy", "inst")
    pv("undefine", "inst")
    return took


def run_define_start(root: Path, xml: Path) -> tuple[float, list[str]]:
    console = root / "log/qemu/ds/console.log"
    console.unlink(missing_ok=True)
    t0 = time.perf_counter()
    pv("define", str(xml))
    pv("start", "ds")
    took = wait_marker(console, t0)
    argv = json.loads((root / "run/qemu/ds/runtime.json").read_text())["argv"]
    pv("destroy", "ds")
    pv("undefine", "ds")
    return took, argv


def run_direct(root: Path, argv: list[str]) -> float:
    run_dir, console = root / "run/qemu/ds", root / "log/qemu/ds/console.log"
    run_dir.mkdir(parents=True, exist_ok=True)
    console.unlink(missing_ok=True)
    t0 = time.perf_counter()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    took = wait_marker(console, t0)
    os.kill(int((run_dir / "qemu.pid").read_text()), signal.SIGKILL)
    time.sleep(0.1)
    return took


def linked_clone(root: Path, kernel: Path, runs: int) -> list[float]:
    disk = root / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "4G"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 64M", str(disk)], check=True,
                   capture_output=True)  # fmt: skip
    pv("install", "-n", "base", "--import", "--disk", str(disk), "--network", "none",
       "--graphics", "none", "--virt-type", "qemu", "--boot", f"kernel={kernel}",
       "--noautoconsole", "-q")  # fmt: skip
    pv("destroy", "base")
    out = []
    for i in range(runs):
        t0 = time.perf_counter()
        pv("clone", "-o", "base", "-n", f"lc{i}", "--linked", "--auto-clone", "-q")
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    kernel, initrd = tiny_image()
    inst, ds, direct = [], [], []
    with state_root() as root:
        xml = root / "ds.xml"
        printed = subprocess.run(
            [str(Path(sys.executable).parent / "pyvirt"), *install_args("ds", kernel, initrd),
             "--print-xml"], capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        xml.write_text(printed)
        _, argv = run_define_start(root, xml)  # warm-up, and the exact argv pyvirt runs
        run_install(root, kernel, initrd)
        for _ in range(args.runs):
            inst.append(run_install(root, kernel, initrd))
            took, argv = run_define_start(root, xml)
            ds.append(took)
            direct.append(run_direct(root, argv))
        clones = linked_clone(root, kernel, args.runs)
    print(f"install --import to marker     median {ms(median(inst))}")
    print(f"define + start to marker       median {ms(median(ds))}")
    print(f"direct QEMU to marker          median {ms(median(direct))}")
    print(f"ratio install/define+start     {median(inst) / median(ds):.2f}")
    print(f"ratio install/direct           {median(inst) / median(direct):.2f}")
    print("virt-install: not installed on this machine (no virtinst/libvirt); no figure")
    print(f"clone --linked (CLI, end to end) median {ms(median(clones))}  (target < 200 ms)")


if __name__ == "__main__":
    main()
