"""20 clients defining, starting, destroying and undefining domains through one pyvirtd at
once: no lost or duplicated definitions, and at the end the daemon's list, the definition
files and the QEMU processes agree.

Each client owns two domain names and keeps a model of them; after every verb it reads the
state back through the API and compares (nobody else touches its domains, so any difference
is a lost or phantom change). All clients also race for four shared names with their own
UUIDs: exactly one UUID may win each name. Guests are started paused (QEMU ``-S``, 64 MiB,
no devices): 20-40 booting TCG guests would starve the 2 cores and test the CPU, not the
daemon. ``PYVIRT_CONCURRENCY_SECONDS`` (default 60) and ``PYVIRT_CONCURRENCY_CLIENTS``
(default 20) size the run.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from pyvirt.state.paths import StatePaths
from tests.daemonhelp import RunningDaemon
from tests.daemonhelp import daemon as daemon  # a fixture

SECONDS = float(os.environ.get("PYVIRT_CONCURRENCY_SECONDS", "60"))
CLIENTS = int(os.environ.get("PYVIRT_CONCURRENCY_CLIENTS", "20"))
SHARED = [f"shared{j}" for j in range(4)]
D = "/api/v1/domains"

XML = """<domain type='qemu'>{uuid}<name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>"""


def qemu_guests(root: Path) -> set[str]:
    """Names of the QEMU processes whose command line points into ``root``."""
    out = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if not argv or b"qemu-system" not in argv[0] or str(root).encode() not in b" ".join(argv):
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == b"-name":
                out.add(argv[i + 1].decode().split(",")[0].removeprefix("guest="))
    return out


class Client(threading.Thread):
    """One API client with its own domains and its model of them."""

    def __init__(self, d: RunningDaemon, index: int, stop_at: float) -> None:
        super().__init__(name=f"client{index}", daemon=True)
        self.d = d
        self.index = index
        self.stop_at = stop_at
        self.uuid = str(uuid.UUID(int=index + 1, version=4))
        self.model = {f"c{index}x{k}": "absent" for k in range(2)}
        self.won: set[str] = set()
        self.problems: list[str] = []
        self.ops: Counter[str] = Counter()
        self.latency: list[float] = []
        self.rng = random.Random(index)

    def call(self, verb: str, method: str, url: str, body: object = None) -> int:
        t0 = time.monotonic()
        r = self.d.request(method, url, body)  # type: ignore[arg-type]
        self.latency.append(time.monotonic() - t0)
        self.ops[verb] += 1
        if r.status >= 500:
            self.problems.append(f"{verb} {url}: {r.status} {r.body[:200]!r}")
        return r.status

    def expect(self, verb: str, status: int, want: int, url: str) -> None:
        """``want`` exactly, except that any 2xx does for a 204 (a verb may answer the state)."""
        if status != want and not (want == 204 and 200 <= status < 300):
            self.problems.append(f"{self.name}: {verb} {url}: {status}, expected {want}")

    def claim(self, name: str) -> None:
        """Define a shared name with this client's UUID: 201 only for the one owner."""
        status = self.call("define-shared", "POST", D, XML.format(
            uuid=f"<uuid>{self.uuid}</uuid>", name=name))  # fmt: skip
        if status == 201:
            self.won.add(name)
        elif status != 409:
            self.problems.append(f"{self.name}: define {name}: {status}")

    def check(self, name: str) -> None:
        r = self.d.request("GET", f"{D}/{name}/state")
        want = self.model[name]
        got = "absent" if r.status == 404 else r.json().get("state")
        if r.status not in (200, 404) or got != {"shutoff": "shut off"}.get(want, want):
            self.problems.append(f"{self.name}: {name} is {got!r} ({r.status}), model {want!r}")

    def run(self) -> None:
        try:
            for name in self.rng.sample(SHARED, len(SHARED)):
                self.claim(name)
            while time.monotonic() < self.stop_at and len(self.problems) < 5:
                if self.rng.random() < 0.1:
                    self.claim(self.rng.choice(SHARED))
                    continue
                if self.rng.random() < 0.1:
                    self.expect("list", self.call("list", "GET", f"{D}?all=true"), 200, D)
                    continue
                name = self.rng.choice(sorted(self.model))
                self.step(name)
                self.check(name)
        except Exception as err:  # a dead client is a failure, never a hang
            self.problems.append(f"{self.name}: {type(err).__name__}: {err}")

    def step(self, name: str) -> None:
        state, url = self.model[name], f"{D}/{name}"
        if state == "absent":
            self.expect("define", self.call("define", "POST", D, XML.format(uuid="", name=name)),
                        201, url)  # fmt: skip
            self.model[name] = "shutoff"
        elif state == "shutoff" and self.rng.random() < 0.6:
            status = self.call("start", "POST", f"{url}/start", {"paused": True})
            self.expect("start", status, 200, url)
            self.model[name] = "paused"
        elif state == "shutoff":
            self.expect("undefine", self.call("undefine", "DELETE", url), 204, url)
            self.model[name] = "absent"
        else:
            status = self.call("destroy", "POST", f"{url}/destroy", {"graceful": False})
            self.expect("destroy", status, 204, url)
            self.model[name] = "shutoff"


def test_twenty_clients_at_once(daemon: RunningDaemon) -> None:
    if "/api/v1/domains" not in daemon.request("GET", "/openapi.json").json()["paths"]:
        pytest.skip("this pyvirtd has no domain routes (routes/domains.py)")
    stop_at = time.monotonic() + SECONDS
    clients = [Client(daemon, i, stop_at) for i in range(CLIENTS)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(timeout=SECONDS + 120)
    assert not any(c.is_alive() for c in clients), "a client hung"
    problems = [p for c in clients for p in c.problems]
    assert not problems, "\n".join(problems[:20])

    # each shared name went to exactly one client, and its definition carries that UUID
    for name in SHARED:
        owners = [c for c in clients if name in c.won]
        assert len(owners) == 1, (name, [c.name for c in owners])
    listed = {s["name"]: s for s in daemon.request("GET", f"{D}?all=true").json()}
    for name in SHARED:
        owner = next(c for c in clients if name in c.won)
        assert listed[name]["uuid"] == owner.uuid

    uuids = [s["uuid"] for s in listed.values()]
    assert len(set(uuids)) == len(uuids), "two domains share a UUID"

    # list == model == definition files == QEMU processes
    expected = {n: s for c in clients for n, s in c.model.items() if s != "absent"}
    expected.update(dict.fromkeys(SHARED, "shutoff"))
    assert set(listed) == set(expected)
    for name, want in expected.items():
        assert listed[name]["state"] == {"shutoff": "shut off"}.get(want, want), name
    paths = StatePaths.from_root(daemon.root)
    files = {p.stem for p in paths.domain_config_dir.glob("*.xml")}
    assert files == set(expected)
    running = {n for n, s in expected.items() if s == "paused"}
    assert qemu_guests(daemon.root) == running

    ops = sum((c.ops for c in clients), Counter())
    lat = sorted(x for c in clients for x in c.latency)
    p50, p95 = statistics.median(lat), lat[int(len(lat) * 0.95)]
    print(f"{CLIENTS} clients, {SECONDS:.0f} s: {dict(ops)}; {sum(ops.values())} requests, "
          f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms")  # fmt: skip

    # and everything can be torn down through the API
    for name in running:
        assert daemon.request("POST", f"{D}/{name}/destroy", {"graceful": False}).status < 300
    for name in expected:
        assert daemon.request("DELETE", f"{D}/{name}").status < 300
    assert daemon.request("GET", f"{D}?all=true").json() == []
    assert qemu_guests(daemon.root) == set()
