"""Helpers of the network integration tests: a network namespace per test, the CLI run inside
it, tiny guests with NICs, and the guest's serial shell."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from tests.conftest import PYVIRT, Pyvirt, Result
from tests.consolehelp import connect_serial
from tests.integration.conftest import TINY_CMDLINE


class NsPyvirt(Pyvirt):
    """The CLI run inside network namespace ``ns`` (bridges, taps, dnsmasq, QEMU live there)."""

    def __init__(self, root: Path, ns: str) -> None:
        super().__init__(root)
        self.ns = ns

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        proc = subprocess.run(
            ["ip", "netns", "exec", self.ns, *PYVIRT, *args],
            env=self.env,
            capture_output=True,
            text=True,
            input=input,
            timeout=120,
        )
        res = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"pyvirt {' '.join(args)} failed ({proc.returncode}): {res.err}")
        return res

    def sh(self, cmd: str) -> str:
        """Run a shell command in the namespace; returns stdout."""
        return subprocess.run(
            ["ip", "netns", "exec", self.ns, "sh", "-c", cmd],
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout


@contextmanager
def netns() -> Iterator[str]:
    """A fresh network namespace, deleted afterwards (with every process left in it)."""
    name = f"pvt{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"], check=True)
    try:
        yield name
    finally:
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with suppress(ProcessLookupError):
                os.kill(int(pid), 9)
        subprocess.run(["ip", "netns", "del", name], check=False)


def guest_xml(image: Any, name: str, nics: str, run: str | None = None, dhcp: bool = True) -> str:
    """A tiny guest with the given ``<interface>`` XML; ``run`` is a shell command."""
    cmdline = TINY_CMDLINE
    if dhcp:
        cmdline += " pyvirt.dhcp=1"
    if run:
        cmdline += " pyvirt.run=" + base64.b64encode(run.encode()).decode()
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    {nics}
  </devices>
</domain>
"""


def nic(network: str, mac: str, model: str = "virtio") -> str:
    """An ``<interface type='network'>``."""
    return (
        f"<interface type='network'><source network='{network}'/><mac address='{mac}'/>"
        f"<model type='{model}'/></interface>"
    )


def define(pv: NsPyvirt, xml: str, name: str) -> None:
    path = pv.root / f"{name}.xml"
    path.write_text(xml)
    pv("define", str(path))


def console(pv: Pyvirt, name: str) -> str:
    log = pv.root / "log" / "qemu" / name / "console.log"
    return log.read_text(errors="replace") if log.exists() else ""


def wait_run(pv: Pyvirt, name: str, timeout: float = 120.0) -> tuple[int, str]:
    """Wait for the guest's ``pyvirt.run`` command; returns (rc, output)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(r"PYVIRT-RUN-BEGIN\r?\n(.*?)PYVIRT-RUN-END rc=(\d+)", console(pv, name), re.S)
        if m:
            return int(m.group(2)), m.group(1)
        time.sleep(0.2)
    raise AssertionError(f"guest {name} did not finish its command:\n{console(pv, name)[-2000:]}")


def wait_for(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def shell(pv: Pyvirt, name: str, cmd: str, timeout: float = 30.0) -> str:
    """Run ``cmd`` in the guest's serial root shell; returns its output."""
    tag = uuid.uuid4().hex[:8]
    with connect_serial(pv.root, name) as s:
        s.settimeout(0.5)
        s.sendall(f"\n{cmd}; echo END-{tag}-$?\n".encode())
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                continue
            buf += chunk
            text = buf.decode(errors="replace")
            m = re.search(rf"\n(.*)END-{tag}-\d+", text, re.S)
            if m and text.count(f"END-{tag}") >= 2:
                return text
        raise AssertionError(f"no answer from {name}'s shell: {buf[-500:]!r}")
