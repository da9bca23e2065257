"""Simulated hosts for the network benchmark: one network namespace + one pyvirt state root each.

Everything a :class:`SimHost` makes lives inside its namespace (bridges, taps, dnsmasq, QEMU
and its watcher, since they inherit the namespace of the ``pyvirt`` command that starts them),
so deleting the namespace after killing its processes leaves nothing on the real host.
Between two hosts, :func:`veth_link` is the "physical" cable.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pyvirt.errors import HostCommandError


def run(argv: list[str], *, timeout: float = 60.0, check: bool = True) -> str:
    """Run a command; return its stdout.

    :raises HostCommandError: it failed (with ``check``)
    """
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise HostCommandError(
            f"'{' '.join(argv[:6])}' failed", argv=argv, returncode=proc.returncode,
            stderr=proc.stderr or proc.stdout,
        )  # fmt: skip
    return proc.stdout


class SimHost:
    """One simulated host: network namespace ``ns`` and state root ``root``."""

    def __init__(self, ns: str, root: Path) -> None:
        self.ns = ns
        self.root = root
        self.env = {**os.environ, "PYVIRT_STATE_DIR": str(root)}

    def create(self) -> None:
        """Create the namespace (loopback up) and the state root."""
        run(["ip", "netns", "add", self.ns])
        self.ip("link", "set", "lo", "up")
        self.root.mkdir(parents=True, exist_ok=True)

    def ip(self, *args: str) -> str:
        """``ip -n NS ARGS``."""
        return run(["ip", "-n", self.ns, *args])

    def exec(self, *argv: str, timeout: float = 60.0, check: bool = True) -> str:
        """Run ``argv`` inside the namespace."""
        return run(["ip", "netns", "exec", self.ns, *argv], timeout=timeout, check=check)

    def popen(self, *argv: str) -> subprocess.Popen[str]:
        """Start ``argv`` inside the namespace without waiting."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.ns, *argv],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    def pyvirt(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """The ``pyvirt`` CLI inside the namespace, against this host's state root."""
        argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "pyvirt.cli", *args]
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=self.env, check=False
        )
        if check and proc.returncode != 0:
            raise HostCommandError(
                f"pyvirt {' '.join(args[:3])} on {self.ns} failed",
                argv=argv, returncode=proc.returncode, stderr=proc.stderr,
            )  # fmt: skip
        return proc.stdout

    def console_log(self, domain: str) -> Path:
        """The serial console log of ``domain``."""
        return self.root / "log" / "qemu" / domain / "console.log"

    def pids(self) -> list[int]:
        """Processes running in the namespace."""
        out = run(["ip", "netns", "pids", self.ns], check=False)
        return [int(p) for p in out.split() if p.isdigit()]

    def destroy(self, domains: list[str], networks: list[str]) -> None:
        """Destroy the guests and networks, kill what is left in the namespace, delete it."""
        for dom in domains:
            self.pyvirt("destroy", dom, check=False, timeout=30)
        for net in networks:
            self.pyvirt("net-destroy", net, check=False, timeout=30)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            pids = self.pids()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + 3
            while pids and self.pids() and time.monotonic() < deadline:
                time.sleep(0.05)
        run(["ip", "netns", "del", self.ns], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def veth_link(a: SimHost, b: SimHost, name: str, *, mtu: int = 1550) -> tuple[str, str]:
    """A veth pair ``NAMEa`` (in ``a``) <-> ``NAMEb`` (in ``b``), both up; returns the names."""
    end_a, end_b = f"{name}a", f"{name}b"
    run(["ip", "link", "add", end_a, "netns", a.ns, "type", "veth", "peer", end_b,
         "netns", b.ns])  # fmt: skip
    for host, end in ((a, end_a), (b, end_b)):
        host.ip("link", "set", end, "mtu", str(mtu), "up")
    return end_a, end_b


def vxlan_port(host: SimHost, name: str, *, vni: int, local: str, remote: str, dev: str,
               bridge: str) -> None:  # fmt: skip
    """A VXLAN tunnel ``name`` to ``remote`` over ``dev``, enslaved to ``bridge``."""
    host.ip("link", "add", name, "type", "vxlan", "id", str(vni), "local", local,
            "remote", remote, "dev", dev, "dstport", "4789")  # fmt: skip
    host.ip("link", "set", name, "master", bridge, "up")


def host_bridge(host: SimHost, name: str) -> None:
    """A plain host bridge (the admin's ``br0``) that a ``<forward mode='bridge'>`` network uses."""
    host.ip("link", "add", name, "type", "bridge")
    host.ip("link", "set", name, "up")
