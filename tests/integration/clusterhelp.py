"""A cluster of "hosts" for tests (issue 16): each host a network namespace with its veth on
one bridge, an etcd member on its address and a pyvirtd joined to the cluster.

:func:`cluster_lab` builds it and tears it all down (daemons, watchdogs, guests, etcd, links,
namespaces) when the block ends. The bridge lives in this (the root) namespace without an
address: the hosts' traffic stays among the namespaces. :meth:`Lab.partition` cuts a host off
(an nftables table inside its namespace dropping everything in and out of its veth);
:meth:`Lab.heal` deletes that table. :class:`Sampler` watches, every 50 ms over ``/proc``,
which hosts run a guest's QEMU and which processes have its disk open.

The loopback cluster tests (several pyvirtd on this machine, one etcd on loopback) share the
rest: :func:`cli` on a state root, :func:`form_cluster` (init on the first host, join the
others), :func:`crash` (a host's daemon, watchdog and guest QEMUs killed at once),
:func:`wait_owner_running` (the failover wait) and the clean-up helpers.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.daemonhelp import RunningDaemon, pyvirtds
from tests.integration.etcdhelp import EtcdCluster, etcd_cluster
from tests.integration.nethelp import guest_xml, netns

#: the hosts' subnet (a private /24 no other test uses); host i is SUBNET.(i + 1)
SUBNET = "10.231.16"
#: the bridge's address in the root namespace with ``cluster_lab(reach=True)``
ROOT_ADDRESS = f"{SUBNET}.254"
#: the nftables table a partition adds inside the host's namespace
PARTITION_TABLE = "pyvirt_partition"


@dataclass
class Host:
    """One host: its name in the cluster, namespace, address, state root and pyvirtd."""

    name: str
    ns: str
    address: str
    root: Path
    daemon: RunningDaemon | None = None

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """``pyvirt ARGS`` inside the host's namespace, on its state root."""
        env = {**os.environ, "PYVIRT_STATE_DIR": str(self.root)}
        res = subprocess.run(
            ["ip", "netns", "exec", self.ns, sys.executable, "-m", "pyvirt.cli", *args],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if check:
            assert res.returncode == 0, f"{self.name}: pyvirt {' '.join(args)}: {res.stderr}"
        return res

    def hosts(self) -> dict[str, dict[str, Any]]:
        """``cluster list --json`` as seen from this host, by name."""
        return {h["name"]: h for h in json.loads(self.cli("cluster", "list", "--json").stdout)}

    def owners(self) -> dict[str, str]:
        """Each cluster domain's owner ("" when none), as seen from this host."""
        out = self.cli("cluster", "domains", "--json").stdout
        return {d["name"]: d["owner"] for d in json.loads(out)}

    def runs(self, name: str) -> bool:
        return "running" in self.cli("domstate", name, check=False).stdout

    def netns_inode(self) -> int:
        return os.stat(f"/run/netns/{self.ns}").st_ino


@dataclass
class Lab:
    """The hosts (by cluster name) and their etcd."""

    hosts: dict[str, Host]
    etcd: EtcdCluster
    partitioned: set[str] = field(default_factory=set)

    def partition(self, name: str) -> None:
        """Drop everything in and out of host *name*'s veth (inside its namespace)."""
        ruleset = (
            f"table inet {PARTITION_TABLE} {{\n"
            "  chain in { type filter hook input priority -300; policy accept;"
            ' iifname "eth0" drop; }\n'
            "  chain out { type filter hook output priority -300; policy accept;"
            ' oifname "eth0" drop; }\n'
            "}\n"
        )
        subprocess.run(["ip", "netns", "exec", self.hosts[name].ns, "nft", "-f", "-"],
                       input=ruleset, text=True, check=True)  # fmt: skip
        self.partitioned.add(name)

    def heal(self, name: str) -> None:
        """Remove host *name*'s partition."""
        subprocess.run(["ip", "netns", "exec", self.hosts[name].ns, "nft", "delete", "table",
                        "inet", PARTITION_TABLE], check=True)  # fmt: skip
        self.partitioned.discard(name)

    def etcd_leader(self) -> str:
        """The host whose etcd member leads etcd now ("" when no member says)."""
        for h, member in zip(self.hosts.values(), self.etcd.members, strict=True):
            out = subprocess.run(
                ["ip", "netns", "exec", h.ns, "curl", "-sm2", "-d", "{}",
                 member.client_url + "/v3/maintenance/status"],
                capture_output=True, text=True, timeout=10,
            ).stdout  # fmt: skip
            with contextlib.suppress(ValueError, KeyError):
                status = json.loads(out)
                if status["leader"] == status["header"]["member_id"]:
                    return h.name
        return ""

    def wait_state(self, seen_from: str, host: str, state: str, timeout: float) -> float:
        """Wait until *seen_from* lists *host* in *state*; the seconds it took."""
        began = time.monotonic()
        while True:
            with contextlib.suppress(AssertionError, ValueError):
                if self.hosts[seen_from].hosts().get(host, {}).get("state") == state:
                    return time.monotonic() - began
            assert time.monotonic() - began < timeout, f"{host} not {state} within {timeout} s"
            time.sleep(0.2)


@contextlib.contextmanager
def cluster_lab(
    tmp: Path, names: tuple[str, ...] = ("ha", "hb", "hc"), *, reach: bool = False
) -> Iterator[Lab]:
    """One namespace, etcd member and pyvirtd per name, on one bridge; the first host inits
    the cluster (default timings), the others join it. With *reach*, the bridge gets the
    address :data:`ROOT_ADDRESS`: the test itself (the root namespace) reaches the hosts' etcd
    members (a partition, dropping in the host's namespace, cuts the test off it too)."""
    tag = uuid.uuid4().hex[:6]
    bridge = f"pvcb{tag}"
    with contextlib.ExitStack() as stack:
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True)
        stack.callback(subprocess.run, ["ip", "link", "del", bridge], check=False)
        # bridged frames are not the root namespace's firewall's business
        subprocess.run(["ip", "link", "set", bridge, "type", "bridge", "nf_call_iptables", "0"],
                       check=False, capture_output=True)  # fmt: skip
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True)
        if reach:
            subprocess.run(["ip", "addr", "add", f"{ROOT_ADDRESS}/24", "dev", bridge], check=True)
        hosts: dict[str, Host] = {}
        for i, name in enumerate(names):
            ns = stack.enter_context(netns())
            veth = f"pvc{tag}{i}"
            subprocess.run(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                            "netns", ns], check=True)  # fmt: skip
            stack.callback(subprocess.run, ["ip", "link", "del", veth], check=False,
                           capture_output=True)  # fmt: skip
            subprocess.run(["ip", "link", "set", veth, "master", bridge, "up"], check=True)
            address = f"{SUBNET}.{i + 1}"
            inside = ["ip", "netns", "exec", ns, "ip"]
            subprocess.run([*inside, "addr", "add", f"{address}/24", "dev", "eth0"], check=True)
            subprocess.run([*inside, "link", "set", "eth0", "up"], check=True)
            hosts[name] = Host(name, ns, address, tmp / name)
        etcd = stack.enter_context(
            etcd_cluster(tmp / "etcd", netns=[(h.ns, h.address) for h in hosts.values()])
        )
        # after the daemons stopped (callbacks run last-in first-out): their watchdogs
        stack.callback(kill_watchdogs, tmp)
        roots = {n: h.root for n, h in hosts.items()}
        daemons = stack.enter_context(pyvirtds(roots, netns={n: h.ns for n, h in hosts.items()}))
        for h in hosts.values():
            h.daemon = daemons[h.name]
        first, *others = hosts.values()
        assert first.daemon is not None
        first.cli("cluster", "init", "--etcd", etcd.endpoints, "--host", first.name,
                  "--name", "lab", "--address", first.daemon.uri)  # fmt: skip
        for h in others:
            assert h.daemon is not None
            h.cli("cluster", "join", "--etcd", etcd.endpoints, "--host", h.name,
                  "--address", h.daemon.uri)  # fmt: skip
        yield Lab(hosts, etcd)


def _kill_watchdogs(env_has: bytes) -> None:
    """SIGKILL every cluster watchdog process whose environment contains *env_has*."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError):
            if b"pyvirt.service.cluster.watchdog" not in (entry / "cmdline").read_bytes():
                continue
            if env_has in (entry / "environ").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)


def kill_watchdogs(under: Path) -> None:
    """SIGKILL every cluster watchdog process whose state directory is under *under* (they
    outlive their daemons by design)."""
    _kill_watchdogs(f"PYVIRT_STATE_DIR={under}/".encode())


def kill_watchdog(root: Path) -> None:
    """SIGKILL the watchdog process of the state directory *root* (a crashed host's)."""
    _kill_watchdogs(f"PYVIRT_STATE_DIR={root}\0".encode())


def stop_watchdogs(roots: list[Path]) -> None:
    for root in roots:
        kill_watchdog(root)


@pytest.fixture
def no_watchdog_left(tmp_path: Path) -> Iterator[None]:
    """pyvirtd's watchdog processes outlive their daemons (by design): end this test's (a
    module makes it autouse with ``pytestmark = pytest.mark.usefixtures(...)``)."""
    yield
    kill_watchdogs(tmp_path)


# -- the loopback cluster: pyvirtd on this machine's state roots, etcd on loopback ---------


@pytest.fixture
def etcd(tmp_path: Path) -> Iterator[EtcdCluster]:
    """Three etcd members on loopback."""
    with etcd_cluster(tmp_path / "etcd") as cluster:
        yield cluster


@pytest.fixture
def etcd1(tmp_path: Path) -> Iterator[EtcdCluster]:
    """One etcd member on loopback."""
    with etcd_cluster(tmp_path / "etcd", size=1) as cluster:
        yield cluster


def cli(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``pyvirt ARGS`` on the state root *root*."""
    env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}
    res = subprocess.run([sys.executable, "-m", "pyvirt.cli", *args], env=env,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    if check:
        assert res.returncode == 0, f"pyvirt {' '.join(args)}: {res.stderr}"
    return res


def hosts(root: Path) -> dict[str, dict[str, Any]]:
    """``cluster list --json`` as seen from *root*, by host name."""
    return {h["name"]: h for h in json.loads(cli(root, "cluster", "list", "--json").stdout)}


def wait_state(root: Path, host: str, state: str, timeout: float) -> float:
    """Wait until *root* lists *host* in *state*; the seconds it took."""
    began = time.monotonic()
    while hosts(root).get(host, {}).get("state") != state:
        assert time.monotonic() - began < timeout, f"{host} not {state} within {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - began


def form_cluster(roots: dict[str, Path], address: dict[str, str], init: list[str],
                 join: list[str] | None = None) -> None:  # fmt: skip
    """The first of *roots* runs ``cluster init INIT``, the others ``cluster join JOIN``
    (*join* defaults to *init*), each as the host named by its key, published at
    *address*."""
    first, *others = roots
    cli(roots[first], "cluster", "init", *init, "--host", first, "--address", address[first])
    for h in others:
        cli(roots[h], "cluster", "join", *(init if join is None else join), "--host", h,
            "--address", address[h])  # fmt: skip


def ha_cluster(stack: contextlib.ExitStack, tmp: Path, roots: dict[str, Path], etcd: str,
               image: Any, name: str, on: str, size: str = "4M",
               cluster_args: Sequence[str] = (),
               ) -> dict[str, RunningDaemon]:  # fmt: skip
    """The HA set-up of the failover tests: a pyvirtd on each of *roots*, in one cluster on
    *etcd* (each host's ``cluster init``/``join`` given *cluster_args* too, e.g.
    ``("--daemon-hold", "0")``), and HA guest *name* (its disk ``tmp/shared.img``: one file
    all hosts see, the "shared storage") defined and started on host *on*. The daemons stop,
    the guest is destroyed everywhere and the watchdogs are killed when *stack* closes."""
    disk = tmp / "shared.img"
    subprocess.run(["qemu-img", "create", "-q", "-f", "raw", str(disk), size], check=True)
    disk_xml = (f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
                f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>")  # fmt: skip
    stack.callback(stop_watchdogs, list(roots.values()))  # after the daemons stopped
    d = stack.enter_context(pyvirtds(roots))
    form_cluster(roots, {h: d[h].uri for h in roots}, ["--etcd", etcd, *cluster_args])
    xml = tmp / f"{name}.xml"
    xml.write_text(guest_xml(image, name, disk_xml, dhcp=False))
    first = next(iter(roots))
    cli(roots[first], "cluster", "define", str(xml), "--ha")
    cli(roots[first], "cluster", "start", name, "--host", on)
    stack.callback(destroy_everywhere, roots, name)
    assert "running" in cli(roots[on], "domstate", name).stdout
    return d


def qemus(name: str, under: Path | None = None) -> list[tuple[int, str]]:
    """(pid, pid file) of each live QEMU of guest *name* (whose pid file is *under* a test's
    directory); the pid file names its host."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not argv or b"qemu-system" not in argv[0]:
            continue
        if f"guest={name}".encode() not in b" ".join(argv) or b"-pidfile" not in argv:
            continue
        pidfile = argv[argv.index(b"-pidfile") + 1].decode()
        if under is None or pidfile.startswith(f"{under}/"):
            found.append((int(entry.name), pidfile))
    return found


def hosts_running(name: str, under: Path) -> int:
    """On how many hosts guest *name* runs (QEMU's -daemonize parent and child are one)."""
    return len({pidfile for _, pidfile in qemus(name, under)})


def crash(daemon: RunningDaemon, root: Path, name: str) -> None:
    """A crashed host: its daemon, its watchdog and guest *name*'s QEMU die at once."""
    pids = [pid for pid, _ in qemus(name, root)]
    assert pids, f"{name} does not run on {root.name}"
    daemon.kill()
    kill_watchdog(root)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def owner_of(root: Path, name: str) -> str:
    doms = {d["name"]: d for d in json.loads(cli(root, "cluster", "domains", "--json").stdout)}
    return str(doms[name]["owner"])


def wait_owner_running(roots: dict[str, Path], name: str, timeout: float, *,
                       not_on: str = "") -> tuple[str, float]:  # fmt: skip
    """Wait until a host other than *not_on* owns *name* and runs it; (host, seconds)."""
    began = time.monotonic()
    while True:
        with contextlib.suppress(AssertionError):
            owner = owner_of(next(r for h, r in roots.items() if h != not_on), name)
            if owner and owner != not_on and "running" in cli(roots[owner], "domstate", name,
                                                              check=False).stdout:  # fmt: skip
                return owner, time.monotonic() - began
        assert time.monotonic() - began < timeout, f"{name} not running elsewhere in {timeout} s"
        time.sleep(0.2)


def destroy_everywhere(roots: dict[str, Path], name: str) -> None:
    for root in roots.values():
        cli(root, "destroy", name, check=False)


@dataclass
class Sample:
    """What one look over ``/proc`` saw: the hosts running the guest's QEMU and the
    (host, pid) of each process holding its disk open."""

    at: float
    running: frozenset[str]
    disk: frozenset[tuple[str, int]]


class Sampler:
    """Every 50 ms: on which hosts (network namespaces) guest *name*'s QEMU lives, and which
    processes have *disk* open (``/proc/PID/fd``). Keeps the changes, the largest counts and
    the first time anything ran or was open twice."""

    def __init__(self, lab: Lab, name: str, disk: Path, period: float = 0.05) -> None:
        self.name = name.encode()
        self.disk = str(disk)
        self.period = period
        self.by_inode = {h.netns_inode(): h.name for h in lab.hosts.values()}
        self.changes: list[Sample] = []
        self.samples = 0
        self.most_hosts = 0
        self.most_open = 0
        self.twice = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def look(self) -> Sample:
        running: set[str] = set()
        disk: set[tuple[str, int]] = set()
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                host = self.by_inode.get(os.stat(f"/proc/{entry.name}/ns/net").st_ino)
                if host is None:
                    continue
                argv = Path(f"/proc/{entry.name}/cmdline").read_bytes().split(b"\0")
                if b"qemu-system" in argv[0] and any(
                    a.startswith(b"guest=" + self.name + b",") or a == b"guest=" + self.name
                    for a in argv
                ):
                    running.add(host)
                fds = f"/proc/{entry.name}/fd"
                for fd in os.listdir(fds):
                    with contextlib.suppress(OSError):
                        if os.readlink(f"{fds}/{fd}") == self.disk:
                            disk.add((host, int(entry.name)))
            except OSError:
                continue  # gone meanwhile
        return Sample(time.monotonic(), frozenset(running), frozenset(disk))

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.monotonic()
            s = self.look()
            self.samples += 1
            last = self.changes[-1] if self.changes else None
            if last is None or (s.running, s.disk) != (last.running, last.disk):
                self.changes.append(s)
            self.most_hosts = max(self.most_hosts, len(s.running))
            self.most_open = max(self.most_open, len({h for h, _ in s.disk}))
            if not self.twice and (len(s.running) > 1 or len({h for h, _ in s.disk}) > 1):
                self.twice = f"{time.strftime('%H:%M:%S')}: {s}"
            self._stop.wait(max(0.0, self.period - (time.monotonic() - began)))

    def first(self, pred: Any, after: float = 0.0) -> float | None:
        """The monotonic time of the first change after *after* where *pred(sample)*."""
        return next((s.at for s in self.changes if s.at >= after and pred(s)), None)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
