"""Eager stop: when QEMU exits for any reason, its after-stop work runs at once, done by the
domain's reaper process, without any pyvirt command looking at the domain.

A tiny guest with a tap NIC on a bridge (in a network namespace of the test) and a cgroup
of its own (``<cputune><shares>``) powers itself off from inside, or its QEMU is killed with
SIGKILL. Within 2 s of QEMU's exit its tap, cgroup and run directory are gone and the
domain's last state says shut off with the right reason.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PYVIRT, Result
from tests.integration.nethelp import NsPyvirt, define, guest_xml, netns

pytestmark = [pytest.mark.qemu, pytest.mark.root]

#: how long the stop work may take after QEMU is gone
DEADLINE = 2.0


class NetOnlyPyvirt(NsPyvirt):
    """The CLI in the namespace's network only: ``ip netns exec`` would also remount /sys,
    hiding the host's cgroup file systems from pyvirt."""

    def __call__(self, *args: str, check: bool = True, input: str | None = None) -> Result:
        proc = subprocess.run(
            ["nsenter", f"--net=/run/netns/{self.ns}", *PYVIRT, *args],
            env=self.env, capture_output=True, text=True, input=input, timeout=120,
        )  # fmt: skip
        res = Result(proc.returncode, proc.stdout, proc.stderr)
        if check and proc.returncode != 0:
            raise AssertionError(f"pyvirt {' '.join(args)} failed ({proc.returncode}): {res.err}")
        return res


def _needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("taps, bridges and cgroups need root")


def _tuned_guest(image: Any, name: str, run: str | None) -> str:
    nic = (
        "<interface type='bridge'><source bridge='pvbr0'/><mac address='52:54:00:ee:00:01'/>"
        "<model type='virtio'/></interface>"
    )
    xml = guest_xml(image, name, nic, run=run, dhcp=False)
    return xml.replace("<vcpu>1</vcpu>", "<vcpu>1</vcpu><cputune><shares>512</shares></cputune>")


def _pid_cgroups(pid: int) -> list[Path]:
    """The pyvirt-made cgroup directories QEMU ``pid`` is in (v1 controllers or v2)."""
    out = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "pyvirt" not in path:
            continue
        if ctrls:
            for ctrl in ctrls.split(","):
                if ctrl in ("cpu", "memory", "cpuset"):
                    out.append(Path("/sys/fs/cgroup") / ctrl / path.lstrip("/"))
        else:
            out.append(Path("/sys/fs/cgroup") / path.lstrip("/"))
    return out


def _taps(pv: NsPyvirt) -> list[str]:
    return pv.sh("ip -o link show master pvbr0 | awk -F': ' '{print $2}'").split()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def _started(pv: NsPyvirt, name: str) -> tuple[int, list[Path], list[str]]:
    pv("start", name)
    rec = json.loads((pv.root / "run" / "qemu" / name / "runtime.json").read_text())
    pid = int(rec["pid"])
    cgroups = _pid_cgroups(pid)
    taps = _taps(pv)
    assert cgroups and all(c.is_dir() for c in cgroups), "the domain has no cgroup of its own"
    assert len(taps) == 1, f"expected one tap on pvbr0, found {taps}"
    return pid, cgroups, taps


def _check_cleaned(
    pv: NsPyvirt, name: str, gone_at: float, cgroups: list[Path], reason: str
) -> None:
    """Within DEADLINE of ``gone_at``: no tap, no cgroup, no run dir, last state recorded."""
    run_dir = pv.root / "run" / "qemu" / name
    last = pv.root / "run" / "qemu" / f"{name}.last.json"

    def leftovers() -> list[str]:
        left = [f"tap {t}" for t in _taps(pv)]
        left += [f"cgroup {c}" for c in cgroups if c.exists()]
        if run_dir.exists():
            left.append(f"run dir {sorted(p.name for p in run_dir.iterdir())}")
        if not last.exists():
            left.append("no last state")
        return left

    while True:
        left = leftovers()
        if not left:
            break
        if time.monotonic() - gone_at > DEADLINE:
            raise AssertionError(f"{DEADLINE} s after QEMU exited, still there: {left}")
        time.sleep(0.02)
    assert json.loads(last.read_text())["reason"] == reason
    log = (pv.root / "log" / "qemu" / name / "qemu.log").read_text(errors="replace")
    assert f"pyvirt-watch: QEMU gone: {reason}" in log  # the reaper saw it, not a command
    print(f"{name}: cleaned up {time.monotonic() - gone_at:.3f} s after QEMU exited")
    # and the CLI agrees (the first pyvirt command since the start)
    assert pv("domstate", name, "--reason").out.strip() == f"shut off ({reason})"


def _wait_gone(pid: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"QEMU pid {pid} still runs after {timeout} s")
        time.sleep(0.01)
    return time.monotonic()


def test_guest_poweroff_cleans_up_at_once(state_root: Path, tiny_image: Any) -> None:
    _needs_root()
    with netns() as ns:
        pv = NetOnlyPyvirt(state_root, ns)
        pv.sh("ip link add pvbr0 type bridge && ip link set pvbr0 up")
        define(pv, _tuned_guest(tiny_image, "es1", run="sleep 1; poweroff -f"), "es1")
        pid, cgroups, _ = _started(pv, "es1")
        gone_at = _wait_gone(pid, 120)
        _check_cleaned(pv, "es1", gone_at, cgroups, "shutdown")


def test_sigkill_of_qemu_cleans_up_at_once(state_root: Path, tiny_image: Any) -> None:
    _needs_root()
    with netns() as ns:
        pv = NetOnlyPyvirt(state_root, ns)
        pv.sh("ip link add pvbr0 type bridge && ip link set pvbr0 up")
        define(pv, _tuned_guest(tiny_image, "es2", run=None), "es2")
        pid, cgroups, _ = _started(pv, "es2")
        os.kill(pid, signal.SIGKILL)
        gone_at = _wait_gone(pid, 10)
        _check_cleaned(pv, "es2", gone_at, cgroups, "crashed")
        # a second start works on the cleaned-up host (same tap name, same cgroup)
        pid2, _, _ = _started(pv, "es2")
        pv("destroy", "es2")
        assert not _alive(pid2)
