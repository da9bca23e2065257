"""The reaper is supervised, and a QEMU pyvirt lost track of is found again (tiny guest).

- The reaper of a running guest is killed; the next command (``list``) notices and starts a
  new one; a power-off then is recorded as ``shutdown``, not guessed as ``crashed``.
- The run directory of a running guest is removed by hand: ``start`` refuses to run a second
  QEMU, ``destroy`` stops the lost one.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt
from tests.integration.test_crash_points import _qemus
from tests.integration.test_lifecycle import define, domain_xml, state, wait_for, wait_marker

pytestmark = pytest.mark.qemu


def _watcher(pv: Pyvirt, name: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = json.loads(
            (pv.root / "run" / "qemu" / name / "watch.json").read_text()
        )
    except (OSError, ValueError):
        return None
    return data


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in "ZX"


def test_killed_reaper_is_respawned_and_shutdown_is_shutdown(
    pyvirt: Pyvirt, tiny_image: Any
) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    wait_for(lambda: (_watcher(pyvirt, "t1") or {}).get("connected"), 10, "reaper connected")
    old = _watcher(pyvirt, "t1")
    assert old is not None
    os.kill(old["pid"], signal.SIGKILL)
    wait_for(lambda: not _alive(old["pid"]), 5, "reaper gone")
    assert "running" in pyvirt("list").out  # notices the dead reaper, starts a new one
    new = _watcher(pyvirt, "t1")
    assert new is not None and new["pid"] != old["pid"] and _alive(new["pid"])
    wait_for(lambda: (_watcher(pyvirt, "t1") or {}).get("connected"), 10, "new reaper connected")
    pyvirt("shutdown", "t1")  # the guest powers itself off (ACPI)
    wait_for(lambda: state(pyvirt, "t1") == "shut off (shutdown)", 60, "clean shutdown")
    # the stop work is the reaper's: the state reads "shut off" as soon as QEMU is gone, the
    # reaper may still hold the domain lock for a moment while it cleans up
    run = pyvirt.root / "run" / "qemu" / "t1"
    wait_for(lambda: not run.exists(), 15, "the reaper removes the run directory")


def test_run_dir_removed_while_running_never_starts_a_second_qemu(
    pyvirt: Pyvirt, tiny_image: Any
) -> None:
    define(pyvirt, tiny_image)
    pyvirt("start", "t1")
    pids = list(_qemus(pyvirt.root))
    assert len(pids) == 1
    reaper = (_watcher(pyvirt, "t1") or {}).get("pid")
    shutil.rmtree(pyvirt.root / "run" / "qemu" / "t1")
    if reaper:
        time.sleep(0.2)
    res = pyvirt("start", "t1", check=False)
    assert res.rc == 1 and "lost track of" in res.err, res.err
    assert list(_qemus(pyvirt.root)) == pids
    pyvirt("destroy", "t1")
    wait_for(lambda: not _qemus(pyvirt.root), 10, "lost QEMU stopped")
    assert state(pyvirt, "t1") == "shut off (destroyed)"
    pyvirt("start", "t1")
    assert len(_qemus(pyvirt.root)) == 1
    pyvirt("destroy", "t1")


def _qmp(sock: Path, command: str) -> Any:
    """One QMP command on the domain's monitor socket, without pyvirt."""
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(sock))
        f = s.makefile("rw")
        f.readline()  # greeting
        for cmd in ("qmp_capabilities", command):
            f.write(json.dumps({"execute": cmd}) + "\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        return reply.get("return")


def test_poweroff_while_no_reaper_runs_is_restarted_by_the_new_one(
    pyvirt: Pyvirt, tiny_image: Any
) -> None:
    """on_poweroff='restart' needs the watcher: a guest that powered off while it was dead
    waits paused in run state 'shutdown'; the respawned watcher asks QEMU and restarts it."""
    path = pyvirt.root / "r.xml"
    xml = domain_xml(tiny_image, "r").replace(
        "<on_reboot>restart</on_reboot>", "<on_poweroff>restart</on_poweroff>"
    )
    path.write_text(xml)
    pyvirt("define", str(path))
    pyvirt("start", "r")
    wait_marker(pyvirt, "r")
    wait_for(lambda: (_watcher(pyvirt, "r") or {}).get("connected"), 10, "reaper connected")
    old = _watcher(pyvirt, "r")
    assert old is not None
    os.kill(old["pid"], signal.SIGKILL)
    wait_for(lambda: not _alive(old["pid"]), 5, "reaper gone")
    sock = pyvirt.root / "run" / "qemu" / "r" / "qmp.sock"
    _qmp(sock, "system_powerdown")
    wait_for(lambda: _qmp(sock, "query-status")["status"] == "shutdown", 60, "guest powered off")
    pyvirt("list")  # respawns the reaper, which finds the guest powered off and restarts it
    wait_marker(pyvirt, "r", count=2)
    assert state(pyvirt, "r").startswith("running")
