"""bench/blockcommit: ``pyvirt blockcommit --active --pivot`` of a running guest's disk
against ``qemu-img commit`` of the same chain (offline), in one run.

The chain: an empty qcow2 base and a qcow2 overlay holding ``--mib`` MiB of random data
(written with qemu-io; 512 MiB by default, so that the fixed costs of either side do not
decide the ratio). A pyvirtd serves the benchmark's state directory (as
bench/daemon_latency.py starts it). Each run copies the pristine chain five times, the ways
in alternating order: two copies are committed with ``qemu-img commit -d`` (``-d``: the
overlay is not emptied afterwards, as a live active commit leaves it), once with its default
cache (writeback, one flush of the base when it closes) and once with ``-t unsafe`` (no
flush); the tiny guest boots on each other copy (one disk, vda, pyvirt's default cache:
writeback, no O_DIRECT, no detect-zeroes, like qemu-img), then the commit is timed

* ``pyvirtd``: ``pyvirt blockcommit DOMAIN vda --active --pivot`` as a user on the host runs
  it: the CLI asks the local pyvirtd, which runs the commit as a job, and waits for its end;
* ``embedded``: the same command with ``-c pyvirt:///embed`` (the CLI process does the work);
* ``api``: ``Domain.block_commit("vda", active=True)`` in this process (what pyvirtd's job
  runs).

Like with like: both run the same QEMU mirror code (``qemu-img commit`` is an active commit
job too). The live job leaves the base's new data in the host's page cache (the guest's
writeback cache), qemu-img flushes it on close: so the ratio is given both ways, page cache
to page cache (``-t unsafe``) and to disk (each side's time plus an ``fsync`` of the base).
Every timed commit starts after ``sync`` (no writeback of the fresh copies competes); the
overlay's data is in the page cache for all (just copied). Medians (and the best) of
``--runs``; throughput = data / time. Target >= 0.8x.
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
from _common import PYVIRT, domain_xml, median, pv, state_root, timed, tiny_image, wait_marker
from daemon_latency import pyvirtd

MIB = 1 << 20
WAYS = ("qemu-img", "qemu-img-unsafe", "pyvirtd", "embedded", "api")
LABELS = {
    "qemu-img": "qemu-img commit -d (writeback, flush at close)",
    "qemu-img-unsafe": "qemu-img commit -d -t unsafe (no flush)",
    "pyvirtd": "pyvirt blockcommit --active --pivot (CLI through pyvirtd)",
    "embedded": "pyvirt blockcommit --active --pivot (CLI embedded)",
    "api": "Domain.block_commit(active, pivot) (API in-process)",
}


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


def fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=512, help="MiB of data in the overlay")
    args = ap.parse_args()
    # the CLI as on a host: with its bytecode cache (else every command compiles pyvirt)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import pyvirt.api

    kernel, initrd = tiny_image()
    commands = {
        "pyvirtd": [PYVIRT],
        "embedded": [PYVIRT, "-c", "pyvirt:///embed"],
    }
    with state_root() as root, pyvirtd(root):
        assert "pyvirt:///system" in pv("uri").stdout, "the CLI does not use the pyvirtd"
        pristine = make_chain(root, args.mib)
        times: dict[str, list[float]] = {w: [] for w in WAYS}
        durable: dict[str, list[float]] = {w: [] for w in WAYS}
        loads: list[float] = []
        t_start = time.perf_counter()
        for i in range(args.runs):
            loads.append(os.getloadavg()[0])
            for way in WAYS if i % 2 == 0 else WAYS[::-1]:
                name = f"{way.replace('-', '')}{i}"
                base, top = fresh(pristine, root / name)
                if way.startswith("qemu-img"):
                    cache = ["-t", "unsafe"] if way.endswith("unsafe") else []
                    os.sync()  # no writeback of the fresh copies during the timed commit
                    argv = ["qemu-img", "commit", "-q", "-d", *cache, str(top)]
                    t = timed(lambda argv=argv: subprocess.run(argv, check=True))
                else:
                    (root / f"{name}.xml").write_text(domain_xml(name, kernel, initrd).replace(
                        "<devices>", "<devices>" + disk(top, "vda")))  # fmt: skip
                    pv("define", str(root / f"{name}.xml"))
                    pv("start", name)
                    wait_marker(root / "log" / "qemu" / name / "console.log", time.perf_counter())
                    dom = pyvirt.api.open("pyvirt:///embed").domains.get(name)
                    os.sync()
                    if way == "api":
                        t = timed(lambda dom=dom: dom.block_commit("vda", active=True))
                    else:
                        argv = [*commands[way], "blockcommit", name, "vda", "--active", "--pivot"]
                        t = timed(lambda argv=argv: subprocess.run(
                            argv, check=True, capture_output=True))  # fmt: skip
                    assert f"<source file='{base}'/>" in pv("dumpxml", name).stdout
                times[way].append(t)
                # the data on disk: qemu-img flushed on close already (unless unsafe)
                durable[way].append(t + timed(lambda base=base: fsync(base)))
                if not way.startswith("qemu-img"):
                    pv("destroy", name)
                shutil.rmtree(root / name)
        load = f"{min(loads):.2f}-{max(loads):.2f} (1 min, {os.cpu_count()} CPUs)"
        print(f"chain: {args.mib} MiB of random data in the overlay, empty base; medians (best) "
              f"of {args.runs} interleaved runs ({time.perf_counter() - t_start:.0f} s); load "
              f"average {load}")  # fmt: skip
        for way in WAYS:
            t, d = median(times[way]), median(durable[way])
            print(f"  {LABELS[way]:<58} {t:6.3f} s ({min(times[way]):6.3f}) "
                  f"{args.mib / t:6.0f} MiB/s; + fsync(base) {d:6.3f} s")  # fmt: skip
        for stat, pick in (("median", median), ("best", min)):
            base_t = pick(times["qemu-img-unsafe"])
            base_d = pick(durable["qemu-img"])
            for way in ("pyvirtd", "embedded", "api"):
                print(f"  {stat:>6} {way:<8} throughput vs qemu-img: to disk (+fsync) "
                      f"{base_d / pick(durable[way]):.2f}x; page cache (-t unsafe) "
                      f"{base_t / pick(times[way]):.2f}x (target >= 0.8x)")  # fmt: skip
        runs = "  ".join(f"{w}=" + ",".join(f"{x:.2f}" for x in times[w]) for w in WAYS)
        print(f"    runs (s): {runs}")


if __name__ == "__main__":
    main()
