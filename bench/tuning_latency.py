"""bench/tuning_latency: vcpupin/emulatorpin latency and balloon time on a running tiny guest.

Figures (medians):

* ``vcpupin DOMAIN 0 CPU --live`` and ``emulatorpin DOMAIN CPU --live`` through the real CLI
  (a new Python process each), against the baseline of ``taskset -p -c CPU TID`` (the direct
  command on the same thread) measured in the same run; the in-process API call
  (:func:`pyvirt.service.tuning.cpu.vcpu_pin`) and ``pyvirt domstate`` (the floor of any CLI
  call: interpreter and imports) are shown too.
* balloon: time from ``setmem`` (API call) until QEMU's ``query-balloon`` actual reaches the
  new size, shrinking and growing by 32 MiB.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, median, ms, pv, state_root, timed, tiny_image, wait_marker


def run(*args: str) -> None:
    subprocess.run(args, capture_output=True, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    kernel, initrd = tiny_image()
    with state_root() as root:
        from pyvirt.service.connection import open_connection
        from pyvirt.service.tuning import cpu as tuning
        from pyvirt.service.tuning import memory as tuning_memory

        xml = f"""<domain type='qemu'><name>bt</name><memory unit='MiB'>160</memory>
  <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type>
  <kernel>{kernel}</kernel><initrd>{initrd}</initrd><cmdline>console=ttyS0 quiet</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'><target port='0'/></serial><memballoon model='virtio'/></devices>
</domain>"""
        (root / "bt.xml").write_text(xml)
        pv("define", str(root / "bt.xml"))
        t0 = time.perf_counter()
        pv("start", "bt")
        wait_marker(root / "log" / "qemu" / "bt" / "console.log", t0)
        mgr = open_connection().domains
        tid = str(tuning.vcpu_info(mgr, "bt")[0]["thread"])
        cpus = ["0", "1"]
        base, cli_pin, cli_emu, api, noop = [], [], [], [], []
        for i in range(args.runs):
            cpu = cpus[i % 2]
            base.append(timed(lambda c=cpu: run("taskset", "-p", "-c", c, tid)))  # type: ignore[misc]
            noop.append(timed(lambda: run(PYVIRT, "domstate", "bt")))
            cli_pin.append(timed(lambda c=cpu: run(PYVIRT, "vcpupin", "bt", "0", c, "--live")))  # type: ignore[misc]
            cli_emu.append(timed(lambda c=cpu: run(PYVIRT, "emulatorpin", "bt", c, "--live")))  # type: ignore[misc]
            api.append(timed(lambda c=cpu: tuning.vcpu_pin(mgr, "bt", 0, c, live=True)))  # type: ignore[misc]
        b = median(base)
        print(f"taskset -p (baseline)     {ms(b)}")
        for label, xs in (
            ("vcpupin --live (CLI)", cli_pin),
            ("emulatorpin --live (CLI)", cli_emu),
            ("vcpu_pin() (API)", api),
            ("domstate (any CLI call)", noop),
        ):
            print(f"{label:<26}{ms(median(xs))}  x{median(xs) / b:5.1f}")
        for target in (128 * 1024, 160 * 1024, 128 * 1024, 160 * 1024):
            t0 = time.perf_counter()
            tuning_memory.set_mem(mgr, "bt", target, live=True)
            while tuning_memory.balloon_kib(mgr, "bt") != target:
                if time.perf_counter() - t0 > 30:
                    raise TimeoutError("balloon did not reach the target")
                time.sleep(0.005)
            print(f"balloon to {target // 1024} MiB: {ms(time.perf_counter() - t0)}")


if __name__ == "__main__":
    main()
