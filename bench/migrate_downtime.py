"""bench/migrate_downtime: how long a live migration stops the guest, as the guest's ticker
shows it, and how long the whole move takes: pyvirt against the same migration driven by raw
QMP commands (issue #15: downtime <= 300 ms and <= 1.2x raw; total <= 1.1x raw).

The guest: the tiny image with a shell ticker run at boot (``pyvirt.run=``) printing ``TICK
N`` to the serial console every 10 ms. A watcher process polls the console logs every 1 ms
and keeps the host's arrival time of each line; the downtime is the longest interval between two
consecutive counters (the source's last line to the destination's first), the idle floor
(the ticker's own jitter) printed beside it. Guest clocks stop while the VM is stopped, so
only the host sees the pause.

Two hosts are two state directories on this machine (``pyvirt:///embed?root=``; the stream
goes over a unix socket, as between two hosts sharing one machine):

* ``pyvirt``: ``Domain.migrate(dest)`` in this process (prepare, perform, finish, confirm),
  A to B and back;
* ``raw``: a second copy of the guest, its QEMU started from the same command line pyvirt
  built (paths moved to another directory, ``-daemonize``/``-runas``/the event socket left
  out); each move starts the destination QEMU with ``-S -incoming defer`` and runs
  ``migrate-incoming``, ``migrate``, waits for the source's ``MIGRATION completed`` event,
  ``cont`` on the destination (once its own ``MIGRATION completed`` came) and ``quit`` on
  the source (bench/_qmp.py: one socket, no asyncio).

The two guests run side by side; the moves are interleaved (pyvirt A->B, raw S->D, pyvirt
B->A, raw D->S per round; a first round is not counted). Total time: from the start of
the move to the source QEMU gone and the guest running at the destination.

    sudo .venv/bin/python bench/migrate_downtime.py --runs 3

``--raw-own-session``: each raw QEMU in a session of its own, as ``-daemonize`` puts pyvirt's.
Where the kernel shares CPU time by session (``kernel.sched_autogroup_enabled``, processes in
the root CPU cgroup), a QEMU alone in its session competes with every other session at full
weight; on a machine loaded by other sessions the two placements differ (measured: the raw
copy's ticker gap 72-91 ms in the bench's session, 231 ms in its own; pyvirt's 205-238 ms).

``--jitter J`` (default 2): wait a random 0-J seconds before each move (seeded: ``--seed``).
A move's destination QEMU writes ~100 MB of guest RAM into memory it allocates as it goes
(transparent huge pages, zeroed on first touch); in a VM whose host backs memory on demand
and takes back what the guest kernel reports free (virtio-balloon free page reporting, a
report every ~2 s: this machine), memory freed since the last report is still backed and
the rest costs a host fault per page: the switch-over's last huge pages load 5-20 times
slower from it. Back to back (``--jitter 0``), a round of two moves takes ~1.9 s, close to
that 2 s cycle: the reports lock onto the rounds' rhythm and land in one column's moves
more than the other's (measured: that column's ``stop>done`` 18-24 ms against 7-9 ms; a 40
MB allocation added to each raw move swapped the columns; with transparent huge pages off,
11.5 / 9.8 ms). The random wait spreads both columns' moves over the cycle alike (measured:
``stop>done`` 20.2 / 20.8 ms over 16 moves each).

``--settle S``: wait S seconds more before each move: every move then starts after a report
(all freed memory taken back), the same state for both columns.

``--ab FILE``: an interleaved A/B of a variant of pyvirt inside one run. FILE is a Python
file defining ``on()`` and ``off()``; the bench calls ``on()`` before the pyvirt moves of
every other round (one move each way: the directions differ, A holding the definition) and
``off()`` before the rest, and reports both arms (``pyvirt:on``, ``pyvirt:off``) beside
the raw column, with the ratio of the two arms. A bench column's median moves by ±3% from
run to run on this machine, which hides a change worth 5-10 ms; within one run both arms
meet the same host state. The variant is whatever the functions switch: a monkeypatch of
this process (pyvirt runs in it), an environment variable a spawned process reads. Give it
rounds: ``--runs 12`` is 12 moves per arm; a FILE whose functions do nothing read 0.62× pause
and 0.94× total with 2 moves per arm.

``--tunnelled``: instead, both hosts get a pyvirtd with a TLS listener on loopback (a token
each, their self-signed certificates as CAs), and the source daemon drives every move
(``migrate --p2p``): ``direct`` (QEMU to QEMU over a TCP port on 127.0.0.1) against
``tunnelled`` (the stream through the daemons: socket pair, chunked POST over the
destination daemon's TLS, its incoming QEMU's unix socket), interleaved so that each kind
moves both ways (direct A->B, tunnelled B->A, tunnelled A->B, direct B->A per round).
"""

from __future__ import annotations

import argparse
import base64
import itertools
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import contextlib

from _common import PYVIRT, median, pv, state_root, tiny_image
from _qmp import RawQmp

#: the wall-clock arrivals of the last watched gap's two ticker lines
GAP_ENDS: list[float] = [0.0, 0.0]
#: {kind: [the PHASES of each move]}
SWITCH: dict[str, list[dict[str, float]]] = {}
TICKER = "i=0; while :; do echo TICK $i; i=$((i+1)); usleep 10000; done\n"


def domain(name: str, kernel: Path, initrd: Path) -> str:
    run = base64.b64encode(TICKER.encode()).decode()
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel><initrd>{initrd}</initrd>
    <cmdline>console=ttyS0 quiet pyvirt.run={run}</cmdline></os>
  <features><acpi/></features>
  <devices><serial type='pty'><target port='0'/></serial></devices>
</domain>
"""


class Tail(threading.Thread):
    """Polls console logs every 1 ms from their current ends; keeps (arrival, counter)."""

    def __init__(self, *logs: Path) -> None:
        super().__init__(daemon=True)
        self.logs = logs
        self.start_at = {log: log.stat().st_size if log.exists() else 0 for log in logs}
        self.ticks: list[tuple[float, int]] = []
        #: counter -> wall-clock arrival (to set the gap against QEMU's event times)
        self.walls: dict[int, float] = {}
        self.stop = False

    def run(self) -> None:
        files: dict[Path, object] = {}
        bufs = dict.fromkeys(self.logs, b"")
        while not self.stop:
            for log in self.logs:
                f = files.get(log)
                if f is None:
                    if not log.exists():
                        continue
                    f = files[log] = open(log, "rb")  # noqa: SIM115  (closed below)
                    f.seek(self.start_at[log])  # type: ignore[attr-defined]
                chunk = f.read()  # type: ignore[attr-defined]
                if chunk:
                    now, wall = time.monotonic(), time.time()
                    *done, bufs[log] = (bufs[log] + chunk).split(b"\n")
                    for line in done:
                        parts = line.split()
                        if len(parts) == 2 and parts[0] == b"TICK" and parts[1].isdigit():
                            self.ticks.append((now, int(parts[1])))
                            self.walls[int(parts[1])] = wall
            time.sleep(0.001)
        for f in files.values():
            f.close()  # type: ignore[attr-defined]

    def gap(self) -> tuple[float, float, float]:
        """The longest interval between consecutive counters (seconds), and the wall-clock
        arrivals of its two lines."""
        ticks = sorted(self.ticks, key=lambda t: t[1])
        pairs = list(itertools.pairwise(ticks))
        if not pairs:
            return 0.0, 0.0, 0.0
        a, b = max(pairs, key=lambda p: p[1][0] - p[0][0])
        return b[0] - a[0], self.walls[a[1]], self.walls[b[1]]


#: the phases of a switch-over in QEMU's own event timestamps (ms): the source's STOP to its
#: MIGRATION completed (what QEMU reports as downtime, roughly), that to the destination's
#: completed (its load of the last part), that to its RESUME (the manager's ``cont``), and
#: the source's STOP to the destination's RESUME (the guest's stop as QEMU sees it); then
#: the ticker's last line before the gap to the STOP and the RESUME to its first line after
#: (the host's wall clock against QEMU's: the guest's output path and its first steps)
PHASES = ("stop>done", "done>in", "in>cont", "stop>cont", "tick>stop", "cont>tick")


def phases(src: list[tuple[str, dict[str, Any], float]],
           dst: list[tuple[str, dict[str, Any], float]]) -> dict[str, float] | None:  # fmt: skip
    """The :data:`PHASES` of one move from each side's events (name, data, QEMU's time)."""

    def at(events: list[tuple[str, dict[str, Any], float]], name: str, **match: str) -> float:
        found = [
            t for n, d, t in events if n == name and all(d.get(k) == v for k, v in match.items())
        ]
        if not found:
            raise LookupError(name)
        return found[-1]

    try:
        stop = at(src, "STOP")
        done = at(src, "MIGRATION", status="completed")
        came = at(dst, "MIGRATION", status="completed")
        cont = at(dst, "RESUME")
    except LookupError:
        return None
    last, first = GAP_ENDS  # the ticker's gap: its last line before, its first after
    return {k: v * 1000 for k, v in zip(PHASES, (done - stop, came - done, cont - came,
            cont - stop, stop - last, first - cont), strict=True)}  # fmt: skip


def log_events(log: Path, start: int) -> list[tuple[str, dict[str, Any], float]]:
    """The QMP events a watcher logged in domain log *log* from byte *start* on."""
    import calendar
    import json

    out = []
    with log.open("rb") as f:
        f.seek(start)
        for raw in f.read().decode(errors="replace").splitlines():
            head, sep, rest = raw.partition("Z: event ")
            if not sep:
                continue
            name, _, data = rest.partition(" ")
            day, frac = head.split(".")
            when = calendar.timegm(time.strptime(day, "%Y-%m-%d %H:%M:%S")) + float("0." + frac)
            out.append((name, json.loads(data or "{}"), when))
    return out


def qmp_events(q: RawQmp) -> list[tuple[str, dict[str, Any], float]]:
    """The events a raw session kept, with QEMU's timestamps."""
    return [(e["event"], e.get("data", {}),
             e["timestamp"]["seconds"] + e["timestamp"]["microseconds"] / 1e6)
            for _, e in q.events]  # fmt: skip


def watched(fn: object, *logs: Path, after: float = 0.3) -> tuple[float, float]:
    """(total seconds of ``fn()``, the guest's longest stall) with the consoles *logs*,
    watched by a process of its own (in this one, pyvirt's Python would hold the GIL
    while the lines arrive and delay their reading)."""
    watcher = subprocess.Popen(
        [sys.executable, __file__, "--watch", *map(str, logs)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watcher.stdout is not None and watcher.stdin is not None
    watcher.stdout.readline()  # ready
    time.sleep(0.1)
    t0 = time.monotonic()
    fn()  # type: ignore[operator]
    total = time.monotonic() - t0
    time.sleep(after)
    out, _ = watcher.communicate("stop\n", timeout=30)
    gap, *GAP_ENDS[:] = map(float, out.split() or (0, 0, 0))
    return total, gap


def watch(logs: list[str]) -> None:
    """``--watch LOG...``: tail the logs until a line on stdin, then print the gap."""
    tail = Tail(*map(Path, logs))
    tail.start()
    print("ready", flush=True)
    sys.stdin.readline()
    tail.stop = True
    tail.join()
    print(*tail.gap(), flush=True)


# -- the raw QMP baseline -----------------------------------------------------------------------
class RawGuest:
    """A QEMU started from pyvirt's command line, moved between two directories by hand."""

    def __init__(
        self, argv: list[str], pyvirt_root: Path, where: Path, *, own_session: bool = False
    ) -> None:
        self.argv, self.pyvirt_root, self.where = argv, str(pyvirt_root), where
        #: each QEMU in a session of its own, as ``-daemonize`` puts pyvirt's
        self.own_session = own_session
        self.proc: subprocess.Popen[bytes] | None = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.side = "S"
        #: the :data:`PHASES` of the last move
        self.last: dict[str, float] | None = None
        #: the last move's events (source's, destination's)
        self.events: tuple[list[tuple[str, dict[str, Any], float]], ...] = ([], [])

    def phases(self) -> dict[str, float] | None:
        """The :data:`PHASES` of the last move (after its ticker gap was read)."""
        return phases(*self.events)

    def _argv(self, side: str, incoming: bool) -> list[str]:
        root = str(self.where / side)
        out: list[str] = []
        skip = 0
        for i, arg in enumerate(self.argv):
            if skip:
                skip -= 1
                continue
            if arg == "-daemonize":
                continue
            if arg in ("-runas", "-D", "-pidfile"):
                skip = 1
                continue
            if arg == "-qmp" and "events.sock" in self.argv[i + 1]:
                skip = 1
                continue
            out.append(arg.replace(self.pyvirt_root, root))
        if incoming:
            out += ["-S", "-incoming", "defer"]
        return out

    def _paths(self, side: str) -> tuple[str, Path]:
        run = self.where / side / "run" / "qemu" / "b1"
        log = self.where / side / "log" / "qemu" / "b1"
        run.mkdir(parents=True, exist_ok=True)
        log.mkdir(parents=True, exist_ok=True)
        return str(run / "qmp.sock"), log / "console.log"

    def console(self, side: str) -> Path:
        return self._paths(side)[1]

    def _launch(self, side: str, incoming: bool) -> tuple[subprocess.Popen[bytes], RawQmp]:
        sock, _ = self._paths(side)
        Path(sock).unlink(missing_ok=True)
        proc = subprocess.Popen(self._argv(side, incoming), stdin=subprocess.DEVNULL,
                                start_new_session=self.own_session)  # fmt: skip
        self.procs.append(proc)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"raw QEMU exited with {proc.returncode}")
            try:
                return proc, RawQmp(sock)
            except (FileNotFoundError, ConnectionRefusedError):
                time.sleep(0.001)

    def boot(self) -> None:
        self.proc, q = self._launch(self.side, incoming=False)
        q.close()

    def move(self) -> None:
        """Migrate to the other directory."""
        assert self.proc is not None
        dest_side = "D" if self.side == "S" else "S"
        src = RawQmp(self._paths(self.side)[0])
        proc, dst = self._launch(dest_side, incoming=True)
        uri = f"unix:{self.where / dest_side / 'migrate.sock'}"
        Path(uri[5:]).unlink(missing_ok=True)
        caps = [{"capability": "events", "state": True}]
        dst.cmd("migrate-set-capabilities", capabilities=caps)
        src.cmd("migrate-set-capabilities", capabilities=caps)
        dst.cmd("migrate-incoming", uri=uri)
        src.cmd("migrate", uri=uri)
        done = src.wait_event("MIGRATION", status="completed")
        came = dst.wait_event("MIGRATION", status="completed")
        dst.cmd("cont")
        src.events.append((0.0, done))
        dst.events.append((0.0, came))
        self.events = qmp_events(src), qmp_events(dst)
        with contextlib.suppress(EOFError, OSError):
            src.cmd("quit")
        self.proc.wait(10)
        src.close()
        dst.close()
        self.proc, self.side = proc, dest_side

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def ticking(*logs: Path, timeout: float = 120.0) -> None:
    """Wait until every console in *logs* shows the ticker (the guests booted)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(log.exists() and b"TICK" in log.read_bytes() for log in logs):
            time.sleep(0.5)
            return
        time.sleep(0.1)
    raise TimeoutError("the guests' tickers did not start")


def rounds(
    runs: int,
    a: Path,
    b: Path,
    raw: RawGuest,
    settle: float = 0.0,
    jitter: float = 0.0,
    seed: int = 1,
    ab: Any = None,
) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The interleaved moves: (the idle floor, {kind: [(total, downtime)]}); before each, a
    wait of *settle* plus a random 0-*jitter* seconds. With *ab* (a module with ``on()`` and
    ``off()``), the pyvirt moves alternate between the two arms."""
    import random

    rng = random.Random(seed)
    import pyvirt.api

    conns = {"A": pyvirt.api.open(f"pyvirt:///embed?root={a}"),
             "B": pyvirt.api.open(f"pyvirt:///embed?root={b}")}  # fmt: skip
    logs = {"A": a / "log/qemu/b1/console.log", "B": b / "log/qemu/b1/console.log"}
    ticking(logs["A"], raw.console("S"))
    _, floor = watched(lambda: time.sleep(1.0), logs["A"], raw.console("S"), after=0)
    qlogs = {"A": a / "log/qemu/b1/qemu.log", "B": b / "log/qemu/b1/qemu.log"}
    arms = ["pyvirt:on", "pyvirt:off"] if ab is not None else ["pyvirt"]
    rows: dict[str, list[tuple[float, float]]] = {arm: [] for arm in arms}
    rows["raw"] = []
    where = "A"
    for i in range(runs * 2 + 2):  # the first round warms up (imports, caches)
        to = "B" if where == "A" else "A"
        dom = conns[where].domains.get("b1")
        sizes = {k: p.stat().st_size if p.exists() else 0 for k, p in qlogs.items()}
        arm = arms[i // 2 % len(arms)]  # a round each: both directions in both arms
        if ab is not None:
            (ab.on if arm == "pyvirt:on" else ab.off)()
        time.sleep(settle + rng.uniform(0, jitter))
        mine = watched(lambda d=dom, t=to: d.migrate(conns[t]), logs[where], logs[to])
        mine_phases = phases(log_events(qlogs[where], sizes[where]),
                             log_events(qlogs[to], sizes[to]))  # fmt: skip
        where = to
        time.sleep(settle + rng.uniform(0, jitter))
        theirs = watched(raw.move, raw.console("S"), raw.console("D"))
        raw.last = raw.phases()
        if i >= 2:
            rows[arm].append(mine)
            rows["raw"].append(theirs)
            for kind, ph in ((arm, mine_phases), ("raw", raw.last)):
                if ph is not None:
                    SWITCH.setdefault(kind, []).append(ph)
    if where == "B":  # home again, so that A's clean-up finds it
        conns["B"].domains.get("b1").migrate(conns["A"])
    return floor, rows


# -- --tunnelled: direct against tunnelled, both driven by the source's pyvirtd ----------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def daemon(root: Path, port: int) -> Iterator[tuple[str, int]]:
    """A pyvirtd on *root* with a TLS listener on 127.0.0.1:*port*; yields a token for it
    and its pid."""
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}
    log = (root / "pyvirtd.log").open("wb")
    cmd = [sys.executable, "-m", "pyvirt.daemon", "--no-autostart",
           "--listen-tcp", f"127.0.0.1:{port}"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"pyvirtd did not start: {(root / 'pyvirtd.log').read_text()}")
            time.sleep(0.05)
        made = subprocess.run([PYVIRT, "token-create", "bench"], env=env, capture_output=True,
                              text=True, check=True)  # fmt: skip
        yield made.stdout.strip(), proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def tunnel_rounds(
    runs: int, a: Path, b: Path
) -> tuple[float, dict[str, list[tuple[float, float]]]]:
    """The interleaved moves of ``--tunnelled``: (idle floor, {kind: [(total, downtime)]})."""
    import pyvirt.api
    from pyvirt.api.migrate_p2p import Destination, migrate_p2p

    ports = {"A": _free_port(), "B": _free_port()}
    roots = {"A": a, "B": b}
    logs = {"A": a / "log/qemu/b1/console.log", "B": b / "log/qemu/b1/console.log"}
    rows: dict[str, list[tuple[float, float]]] = {"direct": [], "tunnelled": []}
    #: {kind: [(the source daemon's CPU seconds, the destination's)]}
    cpu: dict[str, list[tuple[float, float]]] = {"direct": [], "tunnelled": []}
    with daemon(a, ports["A"]) as (tok_a, pid_a), daemon(b, ports["B"]) as (tok_b, pid_b):
        tokens = {"A": tok_a, "B": tok_b}
        pids = {"A": pid_a, "B": pid_b}
        conns = {k: pyvirt.api.open(f"pyvirt+unix://{r}/run/pyvirtd.sock")
                 for k, r in roots.items()}  # fmt: skip
        dests = {k: Destination(f"pyvirt+tls://127.0.0.1:{ports[k]}/", token=tokens[k],
                                ca_pem=(roots[k] / "lib/daemon/server-cert.pem").read_text())
                 for k in roots}  # fmt: skip
        ticking(logs["A"])
        _, floor = watched(lambda: time.sleep(1.0), logs["A"], after=0)
        where = "A"
        for i in range(runs * 4 + 4):  # the first round warms up
            to = "B" if where == "A" else "A"
            kind = "direct" if i % 4 in (0, 3) else "tunnelled"
            move = partial(migrate_p2p, conns[where], "b1", dests[to],
                           tunnelled=kind == "tunnelled")  # fmt: skip
            before = _cpu(pids[where]), _cpu(pids[to])
            res = watched(move, logs[where], logs[to])
            used = _cpu(pids[where]) - before[0], _cpu(pids[to]) - before[1]
            where = to
            if i >= 4:
                rows[kind].append(res)
                cpu[kind].append(used)
        if where == "B":
            migrate_p2p(conns["B"], "b1", dests["A"])
    for kind, used in cpu.items():
        print(f"{kind}: CPU per move (median) of the source daemon "
              f"{median([u[0] for u in used]):.2f} s, of the destination's "
              f"{median([u[1] for u in used]):.2f} s")  # fmt: skip
    return floor, rows


def _cpu(pid: int) -> float:
    """CPU seconds (user + system) process *pid* used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    if sys.argv[1:2] == ["--watch"]:
        watch(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="rounds (4 moves each)")
    ap.add_argument("--raw-own-session", action="store_true",
                    help="each raw QEMU in a session of its own, as -daemonize puts pyvirt's "
                    "(the kernel's autogroups share CPU time by session)")  # fmt: skip
    ap.add_argument("--settle", type=float, default=0.0, metavar="S",
                    help="seconds to wait before each move (the host takes freed memory "
                    "back after ~2 s: every move then starts from the same state)")  # fmt: skip
    ap.add_argument("--jitter", type=float, default=2.0, metavar="J",
                    help="a random 0-J s wait before each move (0: back to back, in step "
                    "with the host's ~2 s memory reports; see the docstring)")  # fmt: skip
    ap.add_argument("--seed", type=int, default=1, help="of --jitter's waits")
    ap.add_argument("--ab", type=Path, metavar="FILE",
                    help="a Python file with on() and off(): pyvirt's moves alternate "
                    "between the two by round (see the docstring)")  # fmt: skip
    ap.add_argument("--tunnelled", action="store_true",
                    help="direct against tunnelled, through two pyvirtd")  # fmt: skip
    args = ap.parse_args()
    if args.ab is not None and args.tunnelled:
        raise SystemExit("--ab compares pyvirt with itself: not with --tunnelled")
    ab = _load_ab(args.ab)  # before anything starts: a bad file fails at once
    kernel, initrd = tiny_image()
    if args.tunnelled:
        with state_root() as a, state_root() as b:
            xml = a / "b1.xml"
            xml.write_text(domain("b1", kernel, initrd))
            os.environ["PYVIRT_STATE_DIR"] = str(a)
            pv("define", str(xml))
            pv("start", "b1")
            floor, rows = tunnel_rounds(args.runs, a, b)
        report(floor, rows, "tunnelled", "direct", "")
        return
    raw_dir = Path(tempfile.mkdtemp(prefix="pvraw", dir="/tmp"))
    with state_root() as a:
        xml = a / "b1.xml"
        xml.write_text(domain("b1", kernel, initrd))
        pv("define", str(xml))
        pv("start", "b1")
        pid = int((a / "run" / "qemu" / "b1" / "qemu.pid").read_text())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
        raw = RawGuest(argv, a, raw_dir, own_session=args.raw_own_session)
        try:
            raw.boot()
            with state_root() as b:  # the destination (its QEMUs destroyed on the way out)
                floor, rows = rounds(args.runs, a, b, raw, args.settle, args.jitter,
                                     args.seed, ab)  # fmt: skip
        finally:
            raw.stop()
            shutil.rmtree(raw_dir, ignore_errors=True)
    if args.ab is not None:
        report(floor, rows, "pyvirt:on", "pyvirt:off", "")
        return
    report(floor, rows, "pyvirt", "raw", " (target <= 1.2x)")


def _load_ab(path: Path | None) -> Any:
    """The ``--ab`` file as a module (None without one)."""
    if path is None:
        return None
    if not path.is_file():
        raise SystemExit(f"--ab: no file {path}")
    import importlib.util

    spec = importlib.util.spec_from_file_location("pyvirt_bench_ab", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--ab: cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name in ("on", "off"):
        if not callable(getattr(module, name, None)):
            raise SystemExit(f"--ab: {path} defines no {name}()")
    return module


def report(
    floor: float, rows: dict[str, list[tuple[float, float]]], mine: str, base: str, target: str
) -> None:
    """Print the table and the ratios of *mine* to *base*."""
    print(f"guest ticker idle floor (largest gap over 1 s): {floor * 1000:.0f} ms")
    print(f"{'':9} {'downtime (median, max)':>24} {'total (median)':>16}   moves")
    for kind, vals in rows.items():
        gaps = [g for _, g in vals]
        totals = [t for t, _ in vals]
        print(f"{kind:9} {median(gaps) * 1000:10.0f} ms {max(gaps) * 1000:7.0f} ms "
              f"{median(totals) * 1000:13.0f} ms   {len(vals)}")  # fmt: skip
    if SWITCH:
        print("switch-over in QEMU's event times (medians, ms): " + ", ".join(PHASES))
        for kind, moves in SWITCH.items():
            print(f"{kind:9} " + " ".join(f"{median([m[k] for m in moves]):9.1f}" for k in PHASES))
    p, r = rows[mine], rows[base]
    down = median([g for _, g in p]) / median([g for _, g in r])
    total = median([t for t, _ in p]) / median([t for t, _ in r])
    print(f"{mine}/{base}: downtime {down:.2f}x{target}, total {total:.2f}x"
          f"{' (<= 1.1x)' if target else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
