"""pyvirtd owns the running guests, and killing it is harmless (three tiny guests).

Guests ``a`` and ``b`` are started by the embedded CLI before the daemon runs (each gets a
reaper); ``c`` is autostarted by the daemon (no reaper at all). The daemon takes ``a`` and
``b`` over from their reapers. Then it is killed with SIGKILL: the guests keep running.
During the outage ``a`` powers itself off from its serial console (QEMU, started with
``-no-shutdown``, waits in run state ``shutdown``) and ``b``'s QEMU is killed. The restarted
daemon reports ``a`` shut off (shutdown) and ``b`` shut off (crashed), both cleaned up (run
directory, tap), and supervises ``c``, whose power-off it then cleans up at once.

Each guest has a tap on a bridge in a network namespace of the test; the daemon and the CLI
run in that namespace (network only, like tests/integration/test_eager_stop.py).

A second test starts guests with the embedded CLI while the daemon runs (no reaper; the
daemon finds them), checks the suspend/resume/destroy events, and stops the daemon cleanly:
its guests go back to reaper processes.
"""

from __future__ import annotations

import json
import os
import signal
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

from tests.consolehelp import connect_serial
from tests.daemonhelp import RunningDaemon, pyvirtd
from tests.integration.nethelp import define, guest_xml, netns
from tests.integration.test_eager_stop import NetOnlyPyvirt, _alive, _taps
from tests.integration.test_lifecycle import wait_for, wait_marker
from tests.integration.test_supervision import _qmp

pytestmark = [pytest.mark.qemu, pytest.mark.root]

#: how long the stop work may take once QEMU is gone, with the daemon watching
DEADLINE = 2.0


def _in_ns(ns: str) -> dict[str, Any]:
    """The daemon of these tests: in ``ns`` (network only, like the CLI), with autostart,
    started by the test itself."""
    return {"netns": ns, "net_only": True, "autostart": True, "timeout": 60.0, "started": False}


def _xml(image: Any, name: str, mac: str) -> str:
    nic = (
        f"<interface type='bridge'><source bridge='pvbr0'/><mac address='{mac}'/>"
        "<model type='virtio'/></interface>"
    )
    return guest_xml(image, name, nic, dhcp=False)


def _watcher_pid(pv: NetOnlyPyvirt, name: str) -> int | None:
    with suppress(OSError, ValueError):
        return int(json.loads((pv.root / "run/qemu" / name / "watch.json").read_text())["pid"])
    return None


def _qemu_pid(pv: NetOnlyPyvirt, name: str) -> int:
    return int(json.loads((pv.root / "run/qemu" / name / "runtime.json").read_text())["pid"])


def _reapers(root: Path) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            cmd = (entry / "cmdline").read_bytes()
            if b"pyvirt.service.domain.reaper" in cmd and str(root).encode() in cmd:
                out.append(int(entry.name))
    return out


def _poweroff_from_inside(pv: NetOnlyPyvirt, name: str) -> None:
    """Type ``poweroff -f`` on the guest's serial console (slowly: the UART is small)."""
    with connect_serial(pv.root, name) as s:
        for ch in b"\npoweroff -f\n":
            s.sendall(bytes([ch]))
            time.sleep(0.01)
        time.sleep(0.5)


def _state(pv: NetOnlyPyvirt, name: str) -> str:
    return pv("domstate", name, "--reason").out.strip()


def _events(d: RunningDaemon, name: str) -> list[str]:
    return [
        f"{e['event']} {e['detail']}".strip()
        for e in d.get("/api/v1/supervisor")["events"]
        if e["name"] == name
    ]


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_killed_daemon_is_harmless(state_root: Path, tiny_image: Any) -> None:
    if os.geteuid() != 0:
        pytest.skip("taps and bridges need root")
    with netns() as ns, pyvirtd(state_root, **_in_ns(ns)) as daemon:
        pv = NetOnlyPyvirt(state_root, ns)
        pv.env["PYVIRT_DEFAULT_URI"] = "pyvirt:///embed"  # the CLI stays embedded
        pv.sh("ip link add pvbr0 type bridge && ip link set pvbr0 up")
        for i, name in enumerate("abc"):
            define(pv, _xml(tiny_image, name, f"52:54:00:ee:01:0{i}"), name)
        pv("net-autostart", "default", "--disable")  # only c is autostarted
        pv("autostart", "c")
        pv("start", "a")
        pv("start", "b")
        reapers = {n: _watcher_pid(pv, n) for n in "ab"}
        assert all(reapers.values())

        # the daemon autostarts c and takes a and b over from their reapers
        daemon.start()
        wait_for(lambda: daemon.get("/api/v1/supervisor")["domains"] == ["a", "b", "c"], 60,
                 "all three supervised")  # fmt: skip
        for name in "abc":
            assert _watcher_pid(pv, name) == daemon.pid, name
        assert all(not _alive(pid) for pid in reapers.values() if pid)
        assert _reapers(state_root) == []  # c never got one
        assert _events(daemon, "c") == ["Started Booted"]
        for name in "abc":
            wait_marker(pv, name)
        assert len(_taps(pv)) == 3
        print(f"pyvirtd RSS with 3 guests: {_rss_kib(daemon.pid) / 1024:.1f} MiB")

        # kill -9 the daemon: the guests run on
        qemus = {n: _qemu_pid(pv, n) for n in "abc"}
        daemon.kill()
        assert all(_alive(pid) for pid in qemus.values())
        # during the outage: a powers off from inside (QEMU waits), b's QEMU is killed
        _poweroff_from_inside(pv, "a")
        qmp_a = state_root / "run/qemu/a/qmp.sock"
        wait_for(lambda: _qmp(qmp_a, "query-status")["status"] == "shutdown", 60, "a off")
        os.kill(qemus["b"], signal.SIGKILL)
        wait_for(lambda: not _alive(qemus["b"]), 10, "b's QEMU gone")
        assert (state_root / "run/qemu/b").is_dir()  # nobody did b's stop work yet

        # the restarted daemon sorts it out while it starts
        began = time.monotonic()
        daemon.start()
        print(f"restarted pyvirtd answers /health after {time.monotonic() - began:.2f} s")
        wait_for(lambda: not (state_root / "run/qemu/a").exists(), 10, "a cleaned up")
        assert not (state_root / "run/qemu/b").exists()
        assert not _alive(qemus["a"]) and _alive(qemus["c"])
        assert _state(pv, "a") == "shut off (shutdown)"
        assert _state(pv, "b") == "shut off (crashed)"
        assert _state(pv, "c") == "running (booted)"
        assert len(_taps(pv)) == 1
        assert daemon.get("/api/v1/supervisor")["domains"] == ["c"]
        assert _watcher_pid(pv, "c") == daemon.pid
        assert _events(daemon, "a") == ["Shutdown Finished", "Stopped Shutdown"]
        assert _events(daemon, "b") == ["Stopped Failed"]
        assert _reapers(state_root) == []

        # c is still supervised: its power-off is cleaned up at once, by the daemon
        _poweroff_from_inside(pv, "c")
        deadline = time.monotonic() + 60
        while _alive(qemus["c"]):
            assert time.monotonic() < deadline, "c did not power off"
            time.sleep(0.01)
        gone_at = time.monotonic()
        while (state_root / "run/qemu/c").exists() or _taps(pv):
            assert time.monotonic() - gone_at < DEADLINE, "c's stop work is late"
            time.sleep(0.02)
        print(f"c: cleaned up {time.monotonic() - gone_at:.3f} s after QEMU exited")
        assert _state(pv, "c") == "shut off (shutdown)"
        wait_for(lambda: "Stopped Shutdown" in _events(daemon, "c"), 5, "c's Stopped event")
        assert _events(daemon, "c") == ["Shutdown Finished", "Stopped Shutdown"]
        log = (state_root / "log/qemu/c/qemu.log").read_text(errors="replace")
        assert "pyvirtd: QEMU gone: shutdown (guest-shutdown)" in log
        log = daemon.log.read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]


def test_cli_start_while_daemon_runs_and_hand_back(state_root: Path, tiny_image: Any) -> None:
    """A guest started by an embedded CLI while the daemon runs gets no reaper; the daemon
    finds it, reports suspend/resume/destroy, and hands its guests to reapers on SIGTERM."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    with netns() as ns, pyvirtd(state_root, **_in_ns(ns)) as daemon:
        pv = NetOnlyPyvirt(state_root, ns)
        pv.env["PYVIRT_DEFAULT_URI"] = "pyvirt:///embed"
        for name in ("d", "e"):
            define(pv, guest_xml(tiny_image, name, "", dhcp=False), name)
        pv("net-autostart", "default", "--disable")
        daemon.start()
        pv("start", "d")
        assert _reapers(state_root) == []
        wait_for(lambda: daemon.get("/api/v1/supervisor")["domains"] == ["d"], 10, "d found")
        assert _watcher_pid(pv, "d") == daemon.pid
        pv("suspend", "d")
        pv("resume", "d")
        pv("destroy", "d")
        assert _state(pv, "d") == "shut off (destroyed)"
        wait_for(lambda: "Stopped Destroyed" in _events(daemon, "d"), 5, "d's Stopped event")
        assert _events(daemon, "d") == [
            "Started Booted", "Suspended Paused", "Resumed Unpaused", "Stopped Destroyed"
        ]  # fmt: skip

        pv("start", "e")
        wait_for(lambda: daemon.get("/api/v1/supervisor")["domains"] == ["e"], 10, "e found")
        assert daemon.proc is not None
        daemon.proc.terminate()  # a clean stop: e goes back to a reaper
        daemon.proc.wait(30)
        qemu = _qemu_pid(pv, "e")
        assert _alive(qemu)
        reapers = _reapers(state_root)
        assert len(reapers) == 1 and _watcher_pid(pv, "e") == reapers[0]
        assert not (state_root / "run" / "supervisor.json").exists()
        wait_marker(pv, "e")
        _poweroff_from_inside(pv, "e")
        wait_for(lambda: not (state_root / "run/qemu/e").exists(), 60, "e cleaned up by its reaper")
        assert _state(pv, "e") == "shut off (shutdown)"
        log = (state_root / "log/qemu/e/qemu.log").read_text(errors="replace")
        assert "pyvirt-watch: QEMU gone: shutdown (guest-shutdown)" in log
