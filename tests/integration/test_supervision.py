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
from tests.integration.test_lifecycle import define, state, wait_for, wait_marker

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
    assert not (pyvirt.root / "run" / "qemu" / "t1").exists()  # stop work done by the reaper


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
