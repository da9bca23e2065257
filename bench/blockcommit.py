"""bench/blockcommit: ``pyvirt blockcommit --active --pivot`` of a running guest's disk
against ``qemu-img commit`` of the same chain (offline), in one run.

The chain: an empty qcow2 base and a qcow2 overlay holding ``--mib`` MiB of random data
(written with qemu-io). Each run copies the pristine chain three times: one copy is committed
with ``qemu-img commit``; the tiny guest boots on each other copy (one disk, vda), then
``pyvirt blockcommit DOMAIN vda --active --pivot`` is timed through the real CLI (process
start-up, QMP job, pivot, XML update included), or ``Domain.block_commit("vda",
active=True)`` in-process (what pyvirtd's job runs). Each timed commit starts after
``sync`` (no writeback of the fresh copies competes). Best of ``--runs``; throughput =
data / time. Target >= 0.8x.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, domain_xml, pv, state_root, timed, tiny_image, wait_marker

MIB = 1 << 20


def make_chain(where: Path, mib: int) -> tuple[Path, Path]:
    base, top = where / "base.qcow2", where / "top.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), f"{2 * mib}M"],
                   check=True)  # fmt: skip
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(top)], check=True)  # fmt: skip
    data = where / "data.raw"
    with open(data, "wb") as f:
        for _ in range(mib // 16):
            f.write(os.urandom(16 * MIB))
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", f"write -s {data} 0 {mib}M", str(top)],
                   check=True, capture_output=True)  # fmt: skip
    data.unlink()
    return base, top


def fresh(pristine: tuple[Path, Path], where: Path) -> tuple[Path, Path]:
    where.mkdir(parents=True, exist_ok=True)
    base, top = where / "base.qcow2", where / "top.qcow2"
    shutil.copyfile(pristine[0], base)
    shutil.copyfile(pristine[1], top)
    subprocess.run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(top)], check=True)  # fmt: skip
    return base, top


def disk(top: Path, target: str) -> str:
    return (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{top}'/><target dev='{target}' bus='virtio'/></disk>")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=1024, help="MiB of data in the overlay")
    args = ap.parse_args()
    import pyvirt.api

    kernel, initrd = tiny_image()
    with state_root() as root:
        pristine = make_chain(root, args.mib)
        qemu_img, cli, api = [], [], []
        for i in range(args.runs):
            _, top = fresh(pristine, root / f"q{i}")
            os.sync()  # no writeback of the copies during the timed commits
            qemu_img.append(timed(lambda top=top: subprocess.run(
                ["qemu-img", "commit", "-q", str(top)], check=True)))  # fmt: skip
            for way, times in (("cli", cli), ("api", api)):
                name = f"{way}{i}"
                base, top = fresh(pristine, root / name)
                (root / f"{name}.xml").write_text(domain_xml(name, kernel, initrd).replace(
                    "<devices>", "<devices>" + disk(top, "vda")))  # fmt: skip
                pv("define", str(root / f"{name}.xml"))
                pv("start", name)
                wait_marker(root / "log" / "qemu" / name / "console.log", time.perf_counter())
                dom = pyvirt.api.open(None).domains.get(name)
                os.sync()
                if way == "cli":
                    times.append(timed(lambda name=name: subprocess.run(
                        [PYVIRT, "blockcommit", name, "vda", "--active", "--pivot"],
                        check=True, capture_output=True)))  # fmt: skip
                else:
                    times.append(timed(lambda dom=dom: dom.block_commit("vda", active=True)))
                assert f"<source file='{base}'/>" in pv("dumpxml", name).stdout
                pv("destroy", name)
        q, c, a = min(qemu_img), min(cli), min(api)
        print(f"chain: {args.mib} MiB of data in the overlay, best of {args.runs}")
        for label, secs in (("qemu-img commit (offline)", q),
                            ("pyvirt blockcommit --active --pivot (CLI)", c),
                            ("Domain.block_commit(active, pivot) (API)", a)):  # fmt: skip
            print(f"  {label:<44} {secs:7.3f} s  {args.mib / secs:7.1f} MiB/s")
        print(f"  ratio CLI / qemu-img throughput: {q / c:.2f}x; API: {q / a:.2f}x "
              "(target >= 0.8x)")  # fmt: skip


if __name__ == "__main__":
    main()
