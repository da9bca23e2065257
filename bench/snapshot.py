"""bench/snapshot: internal snapshot create / revert of a running 256 MiB guest through pyvirt
against the same QMP commands issued directly, interleaved, in one run (issue #12: <= 1.2x).

The tiny guest (TCG, ``--memory`` MiB, one empty 1 GiB qcow2 disk vda) is booted once; then
for each of ``--runs`` rounds, in alternating order:

* create: ``pyvirt snapshot-create-as DOMAIN pN`` (the CLI: process start-up, the snapshot
  XML, QMP ``snapshot-save`` job with the VM state in vda, the metadata written),
  ``Domain.snapshot_create_as("aN")`` in-process (what pyvirtd runs), and a raw QMP client
  (bench/_qmp.py: connect, ``qmp_capabilities``, ``snapshot-save`` job, wait for its
  ``JOB_STATUS_CHANGE`` concluded, ``query-jobs``, ``job-dismiss``);
* revert: ``pyvirt snapshot-revert DOMAIN pN``, ``Domain.snapshot_revert("aN")``, and the
  raw client doing ``stop``, the ``snapshot-load`` job, ``cont``.

Each way's create is followed by its revert, the ways' order alternates between rounds.
Each snapshot holds the guest's RAM (~70 MiB of a 256 MiB tiny guest: zero pages are not
written), so QEMU's own work dominates and varies with the host's page cache writeback:
use ``--runs`` >= 5 on a shared machine. Run with bytecode caching on (no
``PYTHONDONTWRITEBYTECODE``), or the CLI compiles pyvirt on every command.

Medians are printed with the ratios pyvirt / raw.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, domain_xml, median, ms, pv, state_root, timed, tiny_image, wait_marker
from _qmp import RawQmp


def disk(path: Path) -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/><target dev='vda' bus='virtio'/></disk>")  # fmt: skip


def vda_node(sock: str) -> str:
    with RawQmp(sock) as q:
        for dev in q.cmd("query-block"):
            ins = dev.get("inserted") or {}
            if ins.get("file", "").endswith("vda.qcow2"):
                return str(ins["node-name"])
    raise SystemExit("no vda node")


def raw_save(sock: str, node: str, tag: str) -> None:
    with RawQmp(sock) as q:
        q.job("snapshot-save", f"bench-{tag}", tag=tag, vmstate=node, devices=[node])


def raw_load(sock: str, node: str, tag: str) -> None:
    with RawQmp(sock) as q:
        q.cmd("stop")
        q.job("snapshot-load", f"bench-{tag}", tag=tag, vmstate=node, devices=[node])
        q.cmd("cont")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", type=int, default=256, help="guest RAM in MiB")
    args = ap.parse_args()
    import pyvirt.api

    kernel, initrd = tiny_image()
    name = "snapbench"
    with state_root() as root:
        img = root / "vda.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "1G"], check=True)
        xml = domain_xml(name, kernel, initrd, memory_mib=args.memory)
        (root / "dom.xml").write_text(xml.replace("<devices>", "<devices>" + disk(img)))
        pv("define", str(root / "dom.xml"))
        pv("start", name)
        wait_marker(root / "log" / "qemu" / name / "console.log", time.perf_counter())
        sock = str(root / "run" / "qemu" / name / "qmp.sock")
        node = vda_node(sock)
        dom = pyvirt.api.open(None).domains.get(name)
        cli_cmd = (PYVIRT, "snapshot-create-as", name)
        ways = {
            "cli": (
                lambda i: subprocess.run([*cli_cmd, f"p{i}"], check=True, capture_output=True),
                lambda i: pv("snapshot-revert", name, f"p{i}"),
            ),
            "api": (
                lambda i: dom.snapshot_create_as(f"a{i}"),
                lambda i: dom.snapshot_revert(f"a{i}"),
            ),
            "raw": (
                lambda i: raw_save(sock, node, f"r{i}"),
                lambda i: raw_load(sock, node, f"r{i}"),
            ),
        }
        create: dict[str, list[float]] = {k: [] for k in ways}
        revert: dict[str, list[float]] = {k: [] for k in ways}
        order = list(ways)
        for i in range(args.runs):
            seq = order if i % 2 == 0 else order[::-1]
            for way in seq:  # each create follows a revert (QEMU's state alike for all)
                create[way].append(timed(lambda way=way, i=i: ways[way][0](i)))
                revert[way].append(timed(lambda way=way, i=i: ways[way][1](i)))
        state = pv("domstate", name).stdout.strip()
        assert state == "running", state
        print(f"guest: {args.memory} MiB, TCG, qcow2 vda; medians of {args.runs} interleaved runs")
        for label, times in (("create", create), ("revert", revert)):
            raw = median(times["raw"])
            print(f"  {label}: raw QMP {ms(raw)}")
            for way, what in (("cli", "pyvirt CLI"), ("api", "pyvirt API")):
                t = median(times[way])
                print(f"  {label}: {what:<10} {ms(t)}   ratio {t / raw:5.2f}x (target <= 1.2x)")
            all_runs = "  ".join(f"{k}=" + ",".join(f"{x * 1000:.0f}" for x in v)
                                 for k, v in times.items())  # fmt: skip
            print(f"    runs (ms): {all_runs}")


if __name__ == "__main__":
    main()
