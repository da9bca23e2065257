"""Live migration seen from inside the guest: a ticker prints a counter and its uptime to the
serial console every 10 ms, and the host notes when each line arrives (from the source's and
then the destination's console). The counting goes on at the destination with no reboot and
no gap above the bound; the migration can be tuned while it runs (``migrate-setmaxdowntime``,
``-setspeed``, ``-compcache``, ``domjobinfo``) and the user's downtime wins over the
policy's; ``domjobabort`` halfway leaves the guest on the source; a guest dirtying memory
faster than a low bandwidth converges through the policy."""

from __future__ import annotations

import itertools
import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.errors import PyvirtError
from pyvirt.progress import CancelledError
from tests.conftest import Pyvirt
from tests.consolehelp import connect_serial
from tests.daemonhelp import free_port, pyvirtd
from tests.integration.migratehelp import other
from tests.integration.nethelp import NsPyvirt
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import (
    MARKER,
    console_log,
    define,
    state,
    wait_for,
    wait_marker,
)
from tests.integration.test_migrate_hosts import ADDR_B, _token, hosts, roots  # noqa: F401
from tests.integration.test_save_restore import _disk

__all__ = ["other"]  # a fixture (tests take it by name)

pytestmark = pytest.mark.qemu

#: the largest gap in the ticker's lines a migration may cause here (the benchmark holds
#: pyvirt to 300 ms on a quiet machine; tests run on a shared, busy one)
GAP_BOUND = 2.0
#: seconds a guest dirtying memory faster than the bandwidth takes to converge here
CONVERGE_BOUND = 60.0
TICKER = (
    "(i=0; while :; do read u r < /proc/uptime; echo TICK $i $u; i=$((i+1)); usleep 10000; "
    "done) > /dev/console 2>&1 & echo $! > /tmp/ticker.pid"
)
_TICK = re.compile(rb"TICK (\d+) ([\d.]+)")


class Ticks:
    """Host arrival times of the ticker's lines, read from serial console sockets."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def follow(self, root: Path, name: str) -> None:
        """Read domain *name*'s console under state root *root* (waiting for the domain to
        run there) until :meth:`stop`."""
        t = threading.Thread(target=self._read, args=(root, name), daemon=True)
        t.start()
        self._threads.append(t)

    def _read(self, root: Path, name: str) -> None:
        sock: socket.socket | None = None
        while not self._stop.is_set():
            try:  # its pty is known once the domain runs there (the runtime record)
                sock = connect_serial(root, name)
                break
            except (OSError, ValueError, KeyError, IndexError, PyvirtError):
                time.sleep(0.002)
        if sock is None:
            return
        sock.settimeout(0.05)
        buf = b""
        with sock:
            while not self._stop.is_set():
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not chunk:
                    return
                now = time.monotonic()
                *lines, buf = (buf + chunk).split(b"\n")
                for line in lines:
                    m = _TICK.search(line)
                    if m:
                        self.seen.append((now, int(m[1]), float(m[2])))

    def stop(self) -> None:
        """Stop reading."""
        self._stop.set()
        for t in self._threads:
            t.join(5)

    def largest_gap(self) -> float:
        """The longest the host waited between two consecutive lines (seconds)."""
        ticks = sorted(self.seen, key=lambda t: t[1])
        return max((b[0] - a[0] for a, b in itertools.pairwise(ticks)), default=0.0)


def _uri(pv: Pyvirt) -> str:
    return f"pyvirt:///embed?root={pv.root}"


def _ticking(pyvirt: Pyvirt, tiny_image: Any) -> None:
    disk = pyvirt.root / "d.img"
    disk.write_bytes(b"\0" * (1 << 20))
    define(pyvirt, tiny_image, extra_devices=_disk(disk))
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    guest(pyvirt, "t1", TICKER)


def _migrating(src: Any, dest: Any, **kw: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``src.migrate(dest, **kw)`` in a thread; the list gets its result or error."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(src.migrate(dest, **kw))
        except BaseException as err:
            out.append(err)

    t = threading.Thread(target=run)
    t.start()
    return t, out


def test_ticker_keeps_counting_on_the_destination(
    pyvirt: Pyvirt, other: Pyvirt, tiny_image: Any
) -> None:
    _ticking(pyvirt, tiny_image)
    ticks = Ticks()
    ticks.follow(pyvirt.root, "t1")
    ticks.follow(other.root, "t1")
    wait_for(lambda: len(ticks.seen) > 20, 20, "the ticker")
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    result = src.migrate(pyvirt_api.open(_uri(other)), persistent=True, undefine_source=True)
    assert result is not None and result.downtime_ms is not None
    last_src = max(t[1] for t in ticks.seen)
    wait_for(lambda: max(t[1] for t in ticks.seen) > last_src + 20, 20, "ticks on B")
    ticks.stop()
    # it counts on from where it was, without a reboot (the uptime goes on too)
    counters = sorted(t[1] for t in ticks.seen)
    assert counters[-1] > last_src + 20
    after = [t for t in ticks.seen if t[1] > last_src]
    before = [t for t in ticks.seen if t[1] <= last_src]
    assert min(t[2] for t in after) >= max(t[2] for t in before)
    assert ticks.largest_gap() <= GAP_BOUND, f"the guest stood still {ticks.largest_gap():.3f} s"
    assert state(other, "t1") == "running (migrated)"
    assert MARKER not in console_log(other, "t1").read_text(errors="replace")
    assert pyvirt("list", "--all", "--name").out.strip() == ""

    # back, while the guest rewrites ~4 MiB of random pages in a loop, faster than the
    # 4 MiB/s allowed: the policy raises the downtime limit and throttles the vCPUs
    guest(other, "t1", "(while :; do dd if=/dev/urandom of=/dev/null bs=4M count=8 "
                       "2>/dev/null; done) & echo started")  # fmt: skip
    policy = pyvirt_api.MigrationPolicy(
        bandwidth=4 << 20, auto_converge=True, stall_passes=1, max_passes=40
    )
    t0 = time.monotonic()
    back = pyvirt_api.open(_uri(other)).domains.get("t1")
    result = back.migrate(pyvirt_api.open(_uri(pyvirt)), policy=policy)
    took = time.monotonic() - t0
    assert result is not None and result.passes > 1
    assert took < CONVERGE_BOUND, f"{took:.1f} s, {result.passes} passes"
    assert state(pyvirt, "t1") == "running (migrated)"
    print(f"converged in {took:.1f} s: {result.passes} passes, limit {result.downtime_limit_ms} ms")


def test_tuning_while_it_runs_then_cancel(pyvirt: Pyvirt, other: Pyvirt, tiny_image: Any) -> None:
    _ticking(pyvirt, tiny_image)
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    dest = pyvirt_api.open(_uri(other))
    # 1 MiB/s: it runs until the bandwidth is raised
    slow = pyvirt_api.MigrationPolicy(bandwidth=1 << 20)
    thread, out = _migrating(src, dest, policy=slow)
    try:
        wait_for(lambda: src.migration_status().transferred > 0, 30, "the migration")
        # the tuning commands work from other processes while the perform loop runs
        assert pyvirt("migrate-getspeed", "t1").out == "1\n"
        # post-copy's own bandwidth (virsh's --postcopy flag): unlimited until set
        assert pyvirt("migrate-getspeed", "--postcopy", "t1").out == "0\n"
        pyvirt("migrate-setspeed", "t1", "--postcopy", "--bandwidth", "3")
        assert pyvirt("migrate-getspeed", "--postcopy", "t1").out == "3\n"
        assert pyvirt("migrate-getspeed", "t1").out == "1\n"
        pyvirt("migrate-setmaxdowntime", "t1", "--downtime", "777")
        assert pyvirt("migrate-getmaxdowntime", "t1").out == "777\n"
        res = pyvirt("migrate-compcache", "t1", "--size", str(32 << 20))
        assert res.out == "Compression cache: 32.000 MiB\n"
        info = pyvirt("domjobinfo", "t1").out
        assert "Operation:        Outgoing migration" in info
        assert re.search(r"Data processed:\s+\d", info) and "Iteration:" in info
        assert "Expected downtime:" in info and "Dirty rate:" in info
        res = pyvirt("migrate-postcopy", "t1", check=False)
        assert res.rc == 1 and "--postcopy" in res.err
        pyvirt("migrate-setspeed", "t1", "--bandwidth", "4096")
    finally:
        thread.join(120)
    result = out[0]
    assert not isinstance(result, BaseException), result
    # the user's downtime stayed (the policy did not raise it)
    assert result.downtime_limit_ms == 777
    assert state(other, "t1") == "running (migrated)"
    # back to A at 1 MiB/s, cancelled halfway with domjobabort: it runs on at B
    pyvirt("undefine", "t1", check=False)
    back_src = dest.domains.get("t1")
    thread, out = _migrating(back_src, pyvirt_api.open(_uri(pyvirt)), policy=slow)
    try:
        wait_for(lambda: back_src.migration_status().transferred > 0, 30, "the migration")
        other("domjobabort", "t1")
    finally:
        thread.join(60)
    assert isinstance(out[0], CancelledError), out
    assert state(other, "t1") == "running (migrated)"
    assert pyvirt("list", "--all", "--name").out.strip() == ""
    res = other("domjobabort", "t1", check=False)
    assert res.rc == 1 and "no job is active" in res.err


def test_same_mac_and_ip_answer_in_the_destination_namespace(
    hosts: tuple[str, str],  # noqa: F811  (test_migrate_hosts' fixtures)
    roots: tuple[Path, Path],  # noqa: F811
    tiny_image: Any,
) -> None:
    """Two hosts as network namespaces (pyvirtd in each, the stream over their veth), each
    with a bridge on the same subnet: after the move the guest's NIC exchanges pings with
    B's bridge on the same MAC and IP, and its ticker counts on."""
    ns_a, ns_b = hosts
    root_a, root_b = roots
    for ns in hosts:
        sh = ["ip", "netns", "exec", ns, "ip"]
        # one subnet, and one gateway MAC as on a real network (the guest's ARP cache
        # moves with it)
        subprocess.run([*sh, "link", "add", "pvmig0", "address", BRIDGE_MAC, "type", "bridge"],
                       check=True)  # fmt: skip
        subprocess.run([*sh, "addr", "add", "10.232.9.1/24", "dev", "pvmig0"], check=True)
        subprocess.run([*sh, "link", "set", "pvmig0", "up"], check=True)
    port = free_port()
    nic = ("<interface type='bridge'><source bridge='pvmig0'/>"
           f"<mac address='{GUEST_MAC}'/><model type='virtio'/></interface>")  # fmt: skip
    with (
        pyvirtd(root_a, netns=ns_a),
        pyvirtd(root_b, netns=ns_b, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
    ):
        a, b = NsPyvirt(root_a, ns_a), NsPyvirt(root_b, ns_b)
        define(a, tiny_image, extra_devices=nic)
        a("start", "t1")
        wait_marker(a, "t1")
        guest(a, "t1", "ip addr add 10.232.9.2/24 dev eth0 && ip link set eth0 up")
        _pings(a)
        guest(a, "t1", TICKER)
        ticks = Ticks()
        ticks.follow(a.root, "t1")
        ticks.follow(b.root, "t1")
        wait_for(lambda: len(ticks.seen) > 20, 20, "the ticker")
        a.env["PYVIRT_TOKEN"] = _token(db)
        a("migrate", "--live", "--listen-address", ADDR_B, "t1",
          f"pyvirt+tls://{ADDR_B}:{port}/?ca={db.cert}")  # fmt: skip
        last_src = max(t[1] for t in ticks.seen)
        wait_for(lambda: max(t[1] for t in ticks.seen) > last_src + 20, 20, "ticks on B")
        ticks.stop()
        assert state(b, "t1") == "running (migrated)"
        assert ticks.largest_gap() <= GAP_BOUND, f"stood still {ticks.largest_gap():.3f} s"
        # it talks with B's bridge from the same MAC and IP (the host has no ping binary:
        # the guest pings, and B's neighbour table shows who answered)
        _pings(b)
        assert GUEST_MAC in b.sh("ip neigh show 10.232.9.2")


GUEST_MAC = "52:54:00:15:0b:02"
BRIDGE_MAC = "02:00:00:15:0b:01"


def _pings(pv: NsPyvirt) -> None:
    """The guest and its host's bridge exchange an echo request and reply."""
    guest(pv, "t1", "ping -c1 -W5 10.232.9.1 >/dev/null")
    assert GUEST_MAC in pv.sh("ip neigh show 10.232.9.2")
