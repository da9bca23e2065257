"""bench/snapshot_pause: how long a running guest stalls while pyvirt takes an external
(``--disk-only``) snapshot, measured from a ticker inside the guest (issue #12: <= 50 ms).

The ticker: a static C program (compiled here with gcc, added to a copy of the tiny guest's
initramfs as ``/bin/pvtick``, run at boot through ``pyvirt.run=``) sleeps 1 ms at a time,
reads ``CLOCK_MONOTONIC`` after each sleep and prints, every 10 ms, a line ``PVTICK <guest
us> <longest gap us>`` on the serial console. Two views of one stall:

* guest side: the longest gap the guest saw between two consecutive 1 ms ticks. Resolution:
  the 1 ms sleep plus the TCG timer slack (the idle floor is printed). It shows a vCPU
  held up while QEMU's main loop works (the block layer drained for the transaction)
  but *not* a ``stop``/``cont``: every guest clock (TSC, HPET, ACPI PM) is frozen while the
  VM is stopped, so the guest cannot see that time pass;
* host side: the longest interval between two consecutive ticker lines arriving in the
  console log (a thread polls it every 1 ms; lines are due every 10 ms), minus the 10 ms
  period. It sees both kinds of stall, with the watcher's and the poll's jitter.

For each of ``--runs`` rounds: ``pyvirt snapshot-create-as DOMAIN dN --disk-only`` (CLI),
then, as the baseline, the same QMP ``transaction`` of ``blockdev-snapshot-sync`` issued by
a raw client (bench/_qmp.py) on an overlay made with qemu-img (on a second disk, vdb, that
pyvirt's snapshots leave out: pyvirt's definition does not know the raw overlays); each
measured over a window from just before the command to 150 ms after it returned, and an
idle window (the noise floor). ``Domain.snapshot_create_as(..., disk_only=True)`` runs
in-process too, with pyvirt's ``transaction`` call timed by a wrapper: the stall right
around the switch is then told apart from the rest of the command (the CLI's start-up and
qemu-img compete with the vCPU for the host's CPUs on a busy host). ``--memory`` adds an
internal snapshot with the VM state (QEMU stops the guest for the RAM copy: the host side
shows that pause).
"""

from __future__ import annotations

import argparse
import base64
import gzip
import itertools
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, median, pv, state_root, tiny_image, wait_marker
from _qmp import RawQmp

TICKER_C = r"""
#include <stdio.h>
#include <time.h>
static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000LL + t.tv_nsec;
}
int main(void) {
    struct timespec tick = {0, 1000000};
    long long prev = now_ns(), last = prev, worst = 0;
    for (;;) {
        nanosleep(&tick, NULL);
        long long t = now_ns();
        if (t - prev > worst) worst = t - prev;
        prev = t;
        if (t - last >= 10000000LL) {
            printf("PVTICK %lld %lld\n", t / 1000, worst / 1000);
            fflush(stdout);
            worst = 0;
            last = t;
        }
    }
}
"""
PERIOD_US = 10_000
#: (start, end) of each QMP transaction, pyvirt's (recorded by a wrapper) or the raw one's
SWITCHES: list[tuple[float, float]] = []


def ticker_initrd(where: Path, initrd: Path) -> Path:
    """The tiny initramfs with ``/bin/pvtick`` appended (a second gzip'd newc archive)."""
    src, binary = where / "pvtick.c", where / "tree" / "bin" / "pvtick"
    src.write_text(TICKER_C)
    binary.parent.mkdir(parents=True)
    subprocess.run(["gcc", "-O2", "-static", "-o", str(binary), str(src)], check=True)
    archive = subprocess.run(
        ["cpio", "-o", "-H", "newc", "--quiet"],
        input=b"bin\nbin/pvtick\n",
        cwd=where / "tree",
        capture_output=True,
        check=True,
    ).stdout
    out = where / "initrd-ticker.img"
    with open(out, "wb") as f:
        f.write(initrd.read_bytes())
        f.write(gzip.compress(archive))
    return out


def domain(name: str, kernel: Path, initrd: Path, image: Path) -> str:
    run = base64.b64encode(b"exec /bin/pvtick\n").decode()
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet pyvirt.run={run}</cmdline></os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{image}'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file='{image.with_name("vdb.qcow2")}'/><target dev='vdb' bus='virtio'/></disk>
    <serial type='pty'><target port='0'/></serial>
  </devices>
</domain>
"""


class Tail(threading.Thread):
    """Polls the console log every 1 ms; keeps (host arrival time, guest gap us) per line."""

    def __init__(self, log: Path) -> None:
        super().__init__(daemon=True)
        self.log, self.lines, self.stop = log, [], False
        self.lines: list[tuple[float, int]]

    def run(self) -> None:
        with open(self.log, "rb") as f:
            f.seek(0, 2)
            buf = b""
            while not self.stop:
                chunk = f.read()
                now = time.monotonic()
                if chunk:
                    buf += chunk
                    *done, buf = buf.split(b"\n")
                    for line in done:
                        parts = line.strip().split()
                        if len(parts) == 3 and parts[0] == b"PVTICK":
                            self.lines.append((now, int(parts[2])))
                time.sleep(0.001)

    def window(self, t0: float, t1: float) -> tuple[float, float]:
        """(host-side stall ms, guest-side longest gap ms) of the lines in [t0, t1]; the
        first line after t1 closes the last interval."""
        inside = [x for x in self.lines if t0 <= x[0]]
        after = [x for x in inside if x[0] > t1]
        inside = [x for x in inside if x[0] <= t1] + after[:1]
        host = max((b[0] - a[0] for a, b in itertools.pairwise(inside)), default=0.0)
        guest = max((g for _, g in inside[1:]), default=0)
        return max(0.0, host * 1000 - PERIOD_US / 1000), guest / 1000


def measure(tail: Tail, action: object) -> tuple[float, float, float, float, float]:
    """Run *action*; (seconds it took, host stall ms, guest gap ms) over its window, then
    (host stall ms, guest gap ms) around the QMP transaction it ran, if any."""
    time.sleep(0.1)
    before = len(SWITCHES)
    t0 = time.monotonic()
    action()  # type: ignore[operator]
    t1 = time.monotonic()
    time.sleep(0.15)
    whole = tail.window(t0 - 0.02, t1 + 0.15)
    switch = (
        tail.window(SWITCHES[-1][0] - 0.01, SWITCHES[-1][1])
        if len(SWITCHES) > before
        else (0.0, 0.0)
    )
    return (t1 - t0, *whole, *switch)


def record_switches() -> None:
    """Wrap pyvirt's ``Monitor.snapshot_overlays`` (the transaction) to note its times."""
    from pyvirt.drivers.qemu.monitor.snapshots import SnapshotCommands

    real = SnapshotCommands.snapshot_overlays

    def timed_switch(self: SnapshotCommands, specs: object) -> None:
        t0 = time.monotonic()
        real(self, specs)  # type: ignore[arg-type]
        SWITCHES.append((t0, time.monotonic()))

    SnapshotCommands.snapshot_overlays = timed_switch  # type: ignore[method-assign]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", action="store_true", help="also an internal memory snapshot")
    args = ap.parse_args()
    kernel, initrd = tiny_image()
    name = "pausebench"
    with state_root() as root:
        initrd2 = ticker_initrd(root, initrd)
        image = root / "vda.qcow2"
        for disk in ("vda", "vdb"):
            subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(root / f"{disk}.qcow2"),
                            "1G"], check=True)  # fmt: skip
        (root / "dom.xml").write_text(domain(name, kernel, initrd2, image))
        pv("define", str(root / "dom.xml"))
        pv("start", name)
        log = root / "log" / "qemu" / name / "console.log"
        wait_marker(log, time.perf_counter())
        tail = Tail(log)
        tail.start()
        deadline = time.monotonic() + 30
        while len(tail.lines) < 50:  # the ticker runs
            if time.monotonic() > deadline:
                raise SystemExit("no ticker lines on the console")
            time.sleep(0.05)
        sock = str(root / "run" / "qemu" / name / "qmp.sock")
        import pyvirt.api

        record_switches()
        dom = pyvirt.api.open(None).domains.get(name)
        results: dict[str, list[tuple[float, float, float, float, float]]] = {
            "idle": [], "pyvirt CLI": [], "pyvirt API": [], "raw QMP": []}  # fmt: skip
        if args.memory:
            results["pyvirt internal+memory"] = []
        for i in range(args.runs):
            results["idle"].append(measure(tail, lambda: time.sleep(0.1)))
            results["pyvirt CLI"].append(measure(tail, lambda i=i: subprocess.run(
                [PYVIRT, "snapshot-create-as", name, f"d{i}", "--disk-only",
                 "--diskspec", "vdb,snapshot=no"],
                check=True, capture_output=True)))  # fmt: skip
            results["pyvirt API"].append(measure(tail, lambda i=i: dom.snapshot_create_as(
                f"e{i}", disk_only=True, diskspecs=["vdb,snapshot=no"])))  # fmt: skip
            results["raw QMP"].append(measure(tail, lambda i=i: raw_overlay(sock, root, i)))
            if args.memory:
                results["pyvirt internal+memory"].append(measure(tail, lambda i=i: subprocess.run(
                    [PYVIRT, "snapshot-create-as", name, f"m{i}", "--diskspec", "vdb,snapshot=no"],
                    check=True, capture_output=True)))  # fmt: skip
        tail.stop = True
        print(f"guest: 256 MiB, TCG; ticker 1 ms, lines every 10 ms; {args.runs} runs "
              "(median / worst)")  # fmt: skip
        for way, rs in results.items():
            took = median([r[0] for r in rs]) * 1000
            print(f"  {way:<24} command {took:7.1f} ms; whole command: " + stalls(rs, 1))
            if way in ("pyvirt API", "raw QMP"):
                print(f"  {'':<24} around the QMP transaction only: " + stalls(rs, 3))
        print("  target: stall <= 50 ms")


def stalls(rs: list[tuple[float, float, float, float, float]], at: int) -> str:
    host, guest = [r[at] for r in rs], [r[at + 1] for r in rs]
    return (f"host-side stall {median(host):5.1f} / {max(host):5.1f} ms, guest-side gap "
            f"{median(guest):5.1f} / {max(guest):5.1f} ms")  # fmt: skip


def raw_overlay(sock: str, root: Path, i: int) -> None:
    """The baseline: one QMP transaction putting a new overlay on vda's top node."""
    with RawQmp(sock) as q:
        top = next(
            d["inserted"]
            for d in q.cmd("query-block")
            if Path((d.get("inserted") or {}).get("file", "")).name.startswith(("vdb", "raw"))
        )
        overlay = root / f"raw{i}.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b",
                        top["file"], "-u", str(overlay), "1G"], check=True)  # fmt: skip
        shutil.chown(overlay, *owner(top["file"]))
        action = {
            "type": "blockdev-snapshot-sync",
            "data": {
                "node-name": top["node-name"],
                "snapshot-file": str(overlay),
                "snapshot-node-name": f"raw{i}",
                "format": "qcow2",
                "mode": "existing",
            },
        }
        t0 = time.monotonic()
        q.cmd("transaction", actions=[action])
        SWITCHES.append((t0, time.monotonic()))


def owner(path: str) -> tuple[int, int]:
    st = Path(path).stat()
    return st.st_uid, st.st_gid


if __name__ == "__main__":
    main()
