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
import sys
import time
from pathlib import Path

from pyvirt import hostcmd

#: every exit status (``check=False``)
_ANY_STATUS = range(-256, 256)


def run(argv: list[str], *, timeout: float = 60.0, check: bool = True) -> str:
    """Run a command; return its stdout.

    :raises HostCommandError: it failed (with ``check``) or timed out
    """
    ok = (0,) if check else _ANY_STATUS
    proc = hostcmd.run(argv, what=f"'{' '.join(argv[:6])}' failed", timeout=timeout, ok_codes=ok)
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

    def popen(self, *argv: str) -> hostcmd.Process:
        """Start ``argv`` inside the namespace without waiting."""
        return hostcmd.spawn(
            ["ip", "netns", "exec", self.ns, *argv], what=f"cannot start {argv[0]}"
        )

    def pyvirt(self, *args: str, timeout: float = 120.0, check: bool = True) -> str:
        """The ``pyvirt`` CLI inside the namespace, against this host's state root."""
        argv = ["ip", "netns", "exec", self.ns, sys.executable, "-m", "pyvirt.cli", *args]
        ok = (0,) if check else _ANY_STATUS
        what = f"pyvirt {' '.join(args[:3])} on {self.ns} failed"
        proc = hostcmd.run(argv, what=what, timeout=timeout, env=self.env, ok_codes=ok)
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
