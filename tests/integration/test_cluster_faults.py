"""Randomized fault injection on the cluster (issue 16): three hosts, each a network
namespace with its etcd member and pyvirtd (tests/integration/clusterhelp.py), three HA
guests, and a seeded random loop of faults — a crashed host (pyvirtd, its watchdog and its
QEMUs killed, the host back later), a daemon killed or stopped and restarted within the TTL or
after it, a hung daemon (SIGSTOP, SIGCONT later), a lost etcd member (restarted later) and a
network partition (nftables drop inside the host's namespace: its pyvirtd and etcd member cut
off; healed before the fence deadline, in the middle of the failover, or after it). After
each fault every HA guest must run exactly once again (within a bound) and every definition
be in etcd. A sampler looks every 50 ms at all hosts' QEMUs and at the processes holding each
guest's disk open: a guest on two hosts, or its disk open on two hosts, is a double run.

    PYVIRT_FAULTS=100 PYVIRT_FAULT_BUDGET=3600 PYVIRT_FAULT_SEED=1234 pytest -s ...

``PYVIRT_FAULTS`` (default 8) faults, stopping early when ``PYVIRT_FAULT_BUDGET`` seconds
(default 600) have passed; ``PYVIRT_FAULT_SEED`` replays a run (the seed is printed)."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.etcd import Etcd
from tests.daemonhelp import RunningDaemon
from tests.integration.clusterhelp import Lab, cluster_lab, kill_watchdog
from tests.integration.etcdhelp import EtcdMember
from tests.integration.nethelp import guest_xml

FAULTS = int(os.environ.get("PYVIRT_FAULTS", "8"))
BUDGET = float(os.environ.get("PYVIRT_FAULT_BUDGET", "600"))
pytestmark = [pytest.mark.qemu, pytest.mark.timeout(int(BUDGET) + 300)]

HOSTS = ("ha", "hb", "hc")
GUESTS = ("f1", "f2", "f3")
TTL = 8  # the defaults: TTL 8 s, renewal every 1 s, fence 2 s before the lease can expire
SETTLE = 60.0  # seconds a fault may take until every HA guest runs once again
#: fault kinds and their weights: the quick ones (no failover) are the more frequent
KINDS = {
    "crash": 2,  # pyvirtd, watchdog and QEMUs killed; the host comes back after the failover
    "restart": 3,  # kill -9 of pyvirtd, restarted at once (its watchdog holds the lease)
    "restart-late": 1,  # kill -9 of pyvirtd, restarted after the TTL (the same: nothing moves)
    "sigterm": 2,  # SIGTERM of pyvirtd, restarted at once or after the TTL
    "hang": 2,  # SIGSTOP of pyvirtd for 1-12 s, then SIGCONT
    "etcd": 3,  # one etcd member killed for 2-8 s, then restarted
    "partition": 3,  # a host cut off (nftables in its namespace), healed after a bounded time
}
#: how a partition ends: healed before the fence deadline (nothing moves), at a random time
#: in the middle of the failover, or once its guests run elsewhere
PARTITIONS = {"short": 1, "mid": 1, "long": 2}


def _host_of(pidfile: str, under: Path) -> str:
    return pidfile[len(f"{under}/") :].split("/", 1)[0]


class Sampler:
    """Every 50 ms: which hosts run each guest (QEMU processes by pid file, i.e. by state
    directory) and which hosts' processes hold each guest's disk open."""

    def __init__(self, under: Path, disks: dict[str, Path]) -> None:
        self.under = under
        self.disks = {str(p): name for name, p in disks.items()}
        self.now: dict[str, set[str]] = {}  # guest -> hosts running it, at the last sample
        #: guest -> (its host, its QEMU's pid, since when)
        self.since: dict[str, tuple[str, int, float]] = {}
        self.doubles: list[str] = []
        self.samples = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def sample(self) -> None:
        running: dict[str, set[str]] = {}
        pids: dict[str, int] = {}
        opened: dict[str, set[str]] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                if not argv or b"qemu-system" not in argv[0] or b"-pidfile" not in argv:
                    continue
                with open(f"/proc/{entry.name}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        continue
                pidfile = argv[argv.index(b"-pidfile") + 1].decode()
                if not pidfile.startswith(f"{self.under}/"):
                    continue
                host = _host_of(pidfile, self.under)
                name = next(
                    (a.split(b"guest=")[1].split(b",")[0].decode() for a in argv if b"guest=" in a),
                    "",
                )
                running.setdefault(name, set()).add(host)
                pids[name] = max(pids.get(name, 0), int(entry.name))  # -daemonize's child
                for fd in os.listdir(f"/proc/{entry.name}/fd"):
                    with contextlib.suppress(OSError):
                        target = os.readlink(f"/proc/{entry.name}/fd/{fd}")
                        if target in self.disks:
                            opened.setdefault(self.disks[target], set()).add(host)
            except (OSError, IndexError, ValueError):
                continue
        stamp = time.strftime("%H:%M:%S")
        now = time.monotonic()
        with self.lock:
            self.samples += 1
            for name, where in running.items():
                if len(where) > 1:
                    self.doubles.append(f"{stamp}: {name} runs on {sorted(where)}")
            for name, where in opened.items():
                if len(where) > 1:
                    self.doubles.append(f"{stamp}: {name}'s disk is open on {sorted(where)}")
            for name, where in running.items():
                if len(where) == 1:
                    host = next(iter(where))
                    if self.since.get(name, ("", 0, 0.0))[:2] != (host, pids[name]):
                        self.since[name] = (host, pids[name], now)
            self.now = running

    def run(self) -> None:
        while not self.stop.wait(0.05):
            self.sample()

    def where(self) -> dict[str, set[str]]:
        with self.lock:
            return {n: set(h) for n, h in self.now.items()}

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


class Cluster:
    """The three hosts, their daemons and etcd, with the faults the loop injects."""

    def __init__(self, tmp: Path, lab: Lab, sampler: Sampler) -> None:
        self.tmp = tmp
        self.lab = lab
        self.etcd = lab.etcd
        self.d: dict[str, RunningDaemon] = {}
        for h in HOSTS:
            daemon = lab.hosts[h].daemon
            assert daemon is not None
            self.d[h] = daemon
        self.sampler = sampler
        # from the root namespace, through the bridge's address (cluster_lab(reach=True))
        self.client = Etcd(self.etcd.endpoints.split(","), timeout=1.0, retry_for=5.0)

    def root(self, host: str) -> Path:
        return self.tmp / host

    def guests_on(self, host: str) -> list[str]:
        return sorted(n for n, h in self.sampler.where().items() if host in h)

    # facts from etcd -------------------------------------------------------------------

    def prefix(self, prefix: str) -> dict[str, dict[str, Any]]:
        return {e.key[len(prefix) :]: json.loads(e.value) for e in self.client.get_prefix(prefix)}

    def definitions(self) -> set[str]:
        return set(self.prefix("/pyvirt/domains/"))

    def hosts_up(self) -> set[str]:
        return set(self.prefix("/pyvirt/alive/"))

    def owners(self) -> dict[str, str]:
        return {n: v["host"] for n, v in self.prefix("/pyvirt/owners/").items()}

    # waiting ---------------------------------------------------------------------------

    def settled(self, down: str = "") -> str:
        """'' when every HA guest runs once on its owner, every host (but *down*) is up and
        every definition is in etcd; otherwise what is not so yet."""
        where = self.sampler.where()
        bad = {n: sorted(where.get(n, ())) for n in GUESTS if len(where.get(n, ())) != 1}
        if bad:
            return f"not running once: {bad}"
        try:
            if self.definitions() != set(GUESTS):
                return f"definitions: {sorted(self.definitions())}"
            if self.hosts_up() != set(HOSTS) - {down}:
                return f"hosts up: {sorted(self.hosts_up())}"
            owners = self.owners()
        except Exception as err:  # etcd busy electing: not settled yet
            return f"etcd: {err}"
        wrong = {n: (owners.get(n), sorted(where[n])) for n in GUESTS}
        wrong = {n: w for n, w in wrong.items() if [w[0]] != w[1]}
        return f"owner is not where it runs: {wrong}" if wrong else ""

    def wait_settled(self, what: str, down: str = "") -> float:
        began = time.monotonic()
        while (why := self.settled(down)) and time.monotonic() - began < SETTLE:
            time.sleep(0.2)
        if why:
            raise AssertionError(f"{what}: not settled within {SETTLE:.0f} s: {why}")
        return time.monotonic() - began

    def wait_healthy(self) -> None:
        self.etcd.wait_healthy(timeout=60)

    # faults ----------------------------------------------------------------------------

    def crash(self, host: str) -> None:
        qemus = self.qemus_of(host)
        self.d[host].kill()
        kill_watchdog(self.root(host))
        for pid in qemus:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def qemus_of(self, host: str) -> list[int]:
        pids = []
        for entry in Path("/proc").iterdir():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes()
                if b"qemu-system" in argv and f"{self.root(host)}/".encode() in argv:
                    pids.append(int(entry.name))
        return pids

    def member_down(self, member: EtcdMember) -> None:
        member.stop()

    def member_up(self, member: EtcdMember) -> None:
        self.etcd.start(member, state="existing")
        self.etcd.wait_healthy([member], timeout=60)


def _summary(log: list[dict[str, Any]], doubles: list[str], seed: int, samples: int) -> str:
    kinds = Counter(f["kind"] for f in log)
    fo = sorted(f["failover"] for f in log if f["failover"] is not None)
    lines = [
        f"seed {seed}: {len(log)} faults ("
        + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        + ")",
        f"double runs: {len(doubles)} over {samples} samples",
        f"settle after each fault: max {max((f['settle'] for f in log), default=0):.1f} s",
    ]
    if fo:
        lines.append(
            f"failovers: {len(fo)}, min {fo[0]:.1f} s, median {statistics.median(fo):.1f} s, "
            f"max {fo[-1]:.1f} s"
        )
    for kind in sorted(kinds):
        times = sorted(f["failover"] for f in log if f["kind"] == kind and f["failover"])
        if times:
            lines.append(f"  {kind}: failover {times[0]:.1f}-{times[-1]:.1f} s ({len(times)})")
    return "\n".join(lines)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    with cluster_lab(tmp_path, HOSTS, reach=True) as lab:
        try:
            yield lab
        finally:
            for h in lab.partitioned.copy():
                lab.heal(h)
            for host in lab.hosts.values():
                if host.daemon is not None and host.daemon.proc.poll() is None:
                    for guest in GUESTS:
                        host.cli("destroy", guest, check=False)


def test_random_faults(tmp_path: Path, lab: Lab, tiny_image: Any) -> None:
    count, budget = FAULTS, BUDGET
    seed = int(os.environ.get("PYVIRT_FAULT_SEED") or random.randrange(1 << 31))
    print(f"fault injection: seed {seed} (PYVIRT_FAULT_SEED={seed} replays it)")
    rng = random.Random(seed)
    disks = {g: tmp_path / "shared" / f"{g}.img" for g in GUESTS}
    disks["f1"].parent.mkdir()
    for disk in disks.values():
        subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk), "4M"], check=True)
    log: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        for guest, host in zip(GUESTS, HOSTS, strict=True):
            disk = (
                "<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='{disks[guest]}'/><target dev='vda' bus='virtio'/></disk>"
            )
            xml = tmp_path / f"{guest}.xml"
            xml.write_text(guest_xml(tiny_image, guest, disk, dhcp=False))
            lab.hosts["ha"].cli("cluster", "define", str(xml), "--ha")
            lab.hosts["ha"].cli("cluster", "start", guest, "--host", host)
        sampler = stack.enter_context(Sampler(tmp_path, disks))
        c = Cluster(tmp_path, lab, sampler)
        c.wait_settled("start")
        began = time.monotonic()
        try:
            for i in range(count):
                if time.monotonic() - began > budget:
                    print(f"budget of {budget:.0f} s spent after {i} faults")
                    break
                force = i == count - 2 and not any("partition" in f["kind"] for f in log)
                log.append(_inject(c, rng, i, "partition" if force else ""))
        finally:
            print(_summary(log, sampler.doubles, seed, sampler.samples))
            for line in sampler.doubles[:20]:
                print("DOUBLE", line)
        assert c.settled() == ""
        assert c.definitions() == set(GUESTS), "a definition was lost"
    assert sampler.doubles == [], f"seed {seed}: double runs: {sampler.doubles[:5]}"


def _inject(c: Cluster, rng: random.Random, i: int, kind: str = "") -> dict[str, Any]:
    """One random fault (of *kind* when given), then wait until everything is settled; what
    happened."""
    kind = kind or rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
    busy = [h for h in HOSTS if c.guests_on(h)]
    quiet = kind in ("restart", "sigterm", "etcd") or (kind == "partition" and rng.random() < 0.2)
    host = rng.choice(list(HOSTS) if quiet or not busy else busy)
    before = {n: (h, pid) for n, (h, pid, _) in c.sampler.since.items()}
    t0 = time.monotonic()
    detail = host
    if kind == "crash":
        c.crash(host)
        c.wait_settled(f"fault {i} ({kind} {host})", down=host)
        c.d[host].start()  # the crashed host comes back: it must not start its guests again
    elif kind == "restart":
        c.d[host].kill()
        c.d[host].start()
    elif kind == "restart-late":
        c.d[host].kill()
        time.sleep(TTL + 2)
        c.d[host].start()
    elif kind == "sigterm":
        late = rng.random() < 0.3
        c.d[host].stop()
        if late:
            time.sleep(TTL + 2)
        c.d[host].start()
        detail += " late" if late else ""
    elif kind == "hang":
        pause = rng.uniform(1.0, 12.0)
        os.kill(c.d[host].pid, signal.SIGSTOP)
        try:
            time.sleep(pause)
        finally:
            os.kill(c.d[host].pid, signal.SIGCONT)
        detail += f" {pause:.1f} s"
    elif kind == "partition":
        how, detail = _partition(c, rng, host, i)
        kind = f"partition-{how}"
    else:
        member = rng.choice(c.etcd.members)
        pause = rng.uniform(2.0, 8.0)
        c.member_down(member)
        time.sleep(pause)
        c.member_up(member)
        detail = f"{member.name} {pause:.1f} s"
    settle = c.wait_settled(f"fault {i} ({kind} {detail})")
    moved = {}
    for name, (where, pid, since) in c.sampler.since.items():
        if before.get(name) not in (None, (where, pid)):
            moved[name] = (where, since - t0)  # restarted: on another host, or on this one
    failover = max((s for _, s in moved.values()), default=None)
    took = time.monotonic() - t0
    print(f"fault {i:3d}: {kind:12s} {detail:18s} done in {took:5.1f} s"
          + (f"; restarted {', '.join(f'{n}->{h} {s:.1f} s' for n, (h, s) in moved.items())}"
             if moved else ""))  # fmt: skip
    return {"kind": kind, "detail": detail, "settle": settle, "failover": failover}


def _partition(c: Cluster, rng: random.Random, host: str, i: int) -> tuple[str, str]:
    """Cut *host* off (its pyvirtd and its etcd member) and heal it: before its fence deadline
    (``short``), at a random time in the failover (``mid``) or once its guests run elsewhere
    (``long``); how, and the partition's description."""
    how = rng.choices(list(PARTITIONS), weights=list(PARTITIONS.values()))[0]
    led = c.lab.etcd_leader() == host
    cut = time.monotonic()
    c.lab.partition(host)
    try:
        if how == "short":
            time.sleep(rng.uniform(0.5, 4.0))
        elif how == "mid":
            time.sleep(rng.uniform(5.0, 14.0))
        else:
            c.wait_settled(f"fault {i} (partition {host}, until recovered)", down=host)
    finally:
        c.lab.heal(host)
    return how, f"{host} {time.monotonic() - cut:.1f} s" + (" leader" if led else "")
