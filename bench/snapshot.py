"""bench/snapshot: internal snapshot create / revert of a running 256 MiB guest through pyvirt
against the same QMP commands issued directly, interleaved, in one run (issue #12: <= 1.2x).

The tiny guest (TCG, ``--memory`` MiB, one empty 1 GiB qcow2 disk vda) is booted once, with a
pyvirtd started for the benchmark's state directory (as bench/daemon_latency.py does); then for
each of ``--runs`` rounds, in alternating order, each way takes a snapshot and reverts to it:

* ``raw``: a raw QMP client in this process (bench/_qmp.py: connect, ``qmp_capabilities``,
  the ``snapshot-save`` job to its ``JOB_STATUS_CHANGE`` concluded, ``query-jobs``,
  ``job-dismiss``; for revert ``stop``, the ``snapshot-load`` job, ``cont``); the node name
  is looked up once, before the rounds. This is the target's baseline;
* ``raw-proc``: the same client as a new ``python3 -I -S`` process per command (what issuing
  the QMP commands from a shell costs at least; for comparing the CLI columns);
* ``pyvirtd``: ``pyvirt snapshot-create-as DOMAIN pN`` / ``pyvirt snapshot-revert DOMAIN pN``
  as a user on the host runs them: the CLI finds the local pyvirtd and asks it;
* ``embedded``: the same commands with ``-c pyvirt:///embed`` (no daemon: the CLI process
  does the work itself, Python start-up and imports included);
* ``api``: ``Domain.snapshot_create_as`` / ``snapshot_revert`` in this process on an embedded
  connection (what pyvirtd runs for a request).

Every timed command starts after ``sync`` (the last one's writeback does not compete), and
each snapshot is deleted right after its revert (not timed): every create finds the image as
the one before it did (a create that must grow the qcow2 file took 10-30x longer under load
than one that reuses freed clusters, which made the ways' order decide the figures; one
snapshot is taken and deleted before the rounds for that). Each snapshot holds the guest's
RAM (~70 MiB of a 256 MiB tiny guest: zero pages are not written), so QEMU's own work
dominates create and varies with the host's page cache writeback: use ``--runs`` >= 5 on a
shared machine. The CLI runs with its bytecode cache
(``PYTHONDONTWRITEBYTECODE`` is dropped for the commands: else each compiles pyvirt).

Medians are printed with the ratios to ``raw`` (and the CLI columns' to ``raw-proc``), and,
less noisy than the ratios, each way's **overhead beyond QEMU's job**: the command's wall time
less the job's own time on QEMU's clock (its ``JOB_STATUS_CHANGE`` ``created`` to
``concluded``, from the events pyvirtd logs to the domain's qemu.log): what the way itself
costs (start-up, round trips, bookkeeping, metadata writes), whatever QEMU's job took.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import PYVIRT, domain_xml, median, ms, pv, state_root, timed, tiny_image, wait_marker
from _qmp import RawQmp
from daemon_latency import pyvirtd

QMP_SCRIPT = str(Path(__file__).resolve().parent / "_qmp.py")
WAYS = ("raw", "raw-proc", "pyvirtd", "embedded", "api")
LABELS = {
    "raw": "raw QMP (in-process; baseline)",
    "raw-proc": "raw QMP (python3 -I -S process)",
    "pyvirtd": "pyvirt CLI through pyvirtd",
    "embedded": "pyvirt CLI embedded (-c pyvirt:///embed)",
    "api": "pyvirt API in-process (as pyvirtd)",
}


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


def raw_delete(sock: str, node: str, tag: str) -> None:
    with RawQmp(sock) as q:
        q.job("snapshot-delete", f"bench-d{tag}", tag=tag, devices=[node])


#: a job's status change as pyvirtd logs QEMU's events (QEMU's timestamp first)
JOB_EVENT = re.compile(
    r"^(\S+ \S+)Z: event JOB_STATUS_CHANGE \{\"id\": \"[^\"]+\", "
    r"\"status\": \"(created|concluded)\""
)


def qemu_job_time(log: Path, offset: int) -> float | None:
    """Seconds from the first job's ``created`` to its ``concluded`` on QEMU's clock, from
    *log* past *offset* (waits a moment for pyvirtd to log them; None if it does not)."""
    deadline = time.monotonic() + 2.0
    while True:
        seen: dict[str, float] = {}
        with log.open() as f:
            f.seek(offset)
            for line in f:
                m = JOB_EVENT.match(line)
                if m:
                    when = datetime.datetime.fromisoformat(m.group(1)).timestamp()
                    seen.setdefault(m.group(2), when)
        if "created" in seen and "concluded" in seen:
            return seen["concluded"] - seen["created"]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--memory", type=int, default=256, help="guest RAM in MiB")
    args = ap.parse_args()
    # the CLI as on a host: with its bytecode cache (else every command compiles pyvirt)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    import pyvirt.api

    kernel, initrd = tiny_image()
    name = "snapbench"
    with state_root() as root, pyvirtd(root):
        img = root / "vda.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(img), "1G"], check=True)
        xml = domain_xml(name, kernel, initrd, memory_mib=args.memory)
        (root / "dom.xml").write_text(xml.replace("<devices>", "<devices>" + disk(img)))
        pv("define", str(root / "dom.xml"))
        pv("start", name)
        wait_marker(root / "log" / "qemu" / name / "console.log", time.perf_counter())
        assert "pyvirt:///system" in pv("uri").stdout, "the CLI does not use the pyvirtd"
        sock = str(root / "run" / "qemu" / name / "qmp.sock")
        node = vda_node(sock)
        dom = pyvirt.api.open("pyvirt:///embed").domains.get(name)
        proc = [sys.executable, "-I", "-S", QMP_SCRIPT, sock, node]
        emb = (PYVIRT, "-c", "pyvirt:///embed")
        ways: dict[str, tuple[Callable[[str], object], Callable[[str], object]]] = {
            "raw": (lambda t: raw_save(sock, node, t), lambda t: raw_load(sock, node, t)),
            "raw-proc": (lambda t: run(*proc, "save", t), lambda t: run(*proc, "load", t)),
            "pyvirtd": (lambda t: run(PYVIRT, "snapshot-create-as", name, t),
                        lambda t: run(PYVIRT, "snapshot-revert", name, t)),
            "embedded": (lambda t: run(*emb, "snapshot-create-as", name, t),
                         lambda t: run(*emb, "snapshot-revert", name, t)),
            "api": (lambda t: dom.snapshot_create_as(t), lambda t: dom.snapshot_revert(t)),
        }  # fmt: skip
        create: dict[str, list[float]] = {k: [] for k in WAYS}
        revert: dict[str, list[float]] = {k: [] for k in WAYS}
        loads: list[float] = []
        beyond: dict[str, dict[str, list[float]]] = {
            "create": {k: [] for k in WAYS}, "revert": {k: [] for k in WAYS}
        }  # fmt: skip
        log = root / "log" / "qemu" / name / "qemu.log"
        raw_save(sock, node, "warm-up")
        raw_delete(sock, node, "warm-up")
        t_start = time.perf_counter()
        for i in range(args.runs):
            loads.append(os.getloadavg()[0])
            for way in WAYS if i % 2 == 0 else WAYS[::-1]:
                tag = f"{way.replace('-', '')}{i}"
                for label, times, fn in (("create", create, ways[way][0]),
                                         ("revert", revert, ways[way][1])):  # fmt: skip
                    os.sync()  # no writeback of the last snapshot competes with this one
                    offset = log.stat().st_size
                    times[way].append(timed(lambda fn=fn, tag=tag: fn(tag)))
                    job = qemu_job_time(log, offset)
                    if job is not None:
                        beyond[label][way].append(times[way][-1] - job)
                # not timed: every create finds the image as the last one did (freed space)
                if way.startswith("raw"):
                    raw_delete(sock, node, tag)
                else:
                    dom.snapshot_delete(tag)
        state = pv("domstate", name).stdout.strip()
        assert state == "running", state
        print(f"guest: {args.memory} MiB, TCG, qcow2 vda; medians of {args.runs} interleaved "
              f"runs ({time.perf_counter() - t_start:.0f} s); load average "
              f"{min(loads):.2f}-{max(loads):.2f} (1 min, {os.cpu_count()} CPUs)")  # fmt: skip
        for label, times in (("create", create), ("revert", revert)):
            raw, raw_proc = median(times["raw"]), median(times["raw-proc"])
            for way in WAYS:
                t = median(times[way])
                extra = ""
                if way != "raw":
                    extra = f"  {t / raw:5.2f}x raw"
                if way in ("pyvirtd", "embedded"):
                    extra += f"  ({t / raw_proc:4.2f}x raw-proc)"
                print(f"  {label}: {LABELS[way]:<42} {ms(t)}{extra}")
            runs = "  ".join(f"{k}=" + ",".join(f"{x * 1000:.0f}" for x in v)
                             for k, v in times.items())  # fmt: skip
            print(f"    runs (ms): {runs}")
            over = "  ".join(f"{k}={median(v) * 1000:.1f}" for k, v in beyond[label].items() if v)
            print(f"    overhead beyond QEMU's job, medians (ms): {over}")
        print("  target: pyvirt / raw QMP <= 1.2x (issue #12)")


if __name__ == "__main__":
    main()
