"""A real etcd cluster for tests: Debian's ``etcd`` members on loopback, or one member per
network namespace on that namespace's address (``netns=``), started and stopped by the test
(issue 16)."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.daemonhelp import free_port


@dataclass
class EtcdMember:
    """One member: its name, ports, data directory and process."""

    name: str
    client_port: int
    peer_port: int
    data: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    #: the address it listens on (its namespace's, when it runs in one)
    address: str = "127.0.0.1"
    #: the network namespace it runs in (None: this one)
    netns: str | None = None

    @property
    def client_url(self) -> str:
        return f"http://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"

    def healthy(self) -> bool:
        url = self.client_url + "/health"
        if self.netns is not None:  # not reachable from here: ask from inside
            out = subprocess.run(["ip", "netns", "exec", self.netns, "curl", "-sm1", url],
                                 capture_output=True, timeout=10).stdout  # fmt: skip
            return b'"health":"true"' in out
        with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(url, timeout=1) as r:
            return b'"health":"true"' in r.read()
        return False

    def stop(self) -> None:
        """Stop the member (SIGKILL: a crashed member)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)


@dataclass
class EtcdCluster:
    """Members sharing one ``--initial-cluster``."""

    members: list[EtcdMember]

    @property
    def endpoints(self) -> str:
        """The members' client URLs, comma-separated (``--etcd``)."""
        return ",".join(m.client_url for m in self.members)

    def start(self, member: EtcdMember, *, state: str = "new") -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        argv = [
            "etcd", "--name", member.name, "--data-dir", str(member.data),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial, "--initial-cluster-state", state,
            "--initial-cluster-token", "pyvirt-test",
            # a loaded 2-core test machine: slower heartbeats than etcd's 100 ms default
            "--heartbeat-interval", "250", "--election-timeout", "2500",
            # a member cut off and back must not depose the leader (etcd 3.5's default)
            "--pre-vote",
        ]  # fmt: skip
        if member.netns is not None:
            argv = ["ip", "netns", "exec", member.netns, *argv]
        with member.log.open("ab") as out:
            member.proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip

    def wait_healthy(self, members: list[EtcdMember] | None = None, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for m in members or self.members:
            while not m.healthy():
                if m.proc is not None and m.proc.poll() is not None:
                    raise AssertionError(f"etcd {m.name} exited:\n{m.log.read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise AssertionError(f"etcd {m.name} not healthy:\n{m.log.read_text()[-3000:]}")
                time.sleep(0.1)

    def stop_all(self) -> None:
        for m in self.members:
            m.stop()


@contextlib.contextmanager
def etcd_cluster(
    tmp: Path, size: int = 3, *, netns: list[tuple[str, str]] | None = None
) -> Iterator[EtcdCluster]:
    """*size* etcd members on loopback until the block ends; with *netns* (namespace,
    address) pairs, one member in each namespace on its address (ports 2379 and 2380)."""
    if shutil.which("etcd") is None:
        pytest.skip("etcd is not installed (Debian's etcd-server; scripts/setup.sh installs it)")
    if netns is not None:
        members = [
            EtcdMember(f"e{i}", 2379, 2380, tmp / f"e{i}", tmp / f"e{i}.log", address=ip, netns=ns)
            for i, (ns, ip) in enumerate(netns)
        ]
    else:
        members = [
            EtcdMember(f"e{i}", free_port(), free_port(), tmp / f"etcd{i}", tmp / f"etcd{i}.log")
            for i in range(size)
        ]
    tmp.mkdir(parents=True, exist_ok=True)
    cluster = EtcdCluster(members)
    try:
        for m in members:
            cluster.start(m)
        cluster.wait_healthy()
        yield cluster
    finally:
        cluster.stop_all()
        for m in members:
            if m.log.exists():
                print(f"--- etcd {m.name} (last lines) ---\n{m.log.read_text()[-1500:]}")
