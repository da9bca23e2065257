"""The reaper leaves the stop work to the command that stopped QEMU and said it does it (a
destroy, a migration's confirm): no import burst on a host where a guest just resumed; if
that command dies first, the reaper does the work after its grace."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from pyvirt.drivers.qemu import runtime
from pyvirt.drivers.qemu.watch import lower_priority, restore_priority, write_watcher
from pyvirt.service.domain import reaper


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "d"
    run.mkdir()
    write_watcher(run, connected=True)  # this process plays the reaper
    return run


def test_a_plain_destroy_intent_leaves_the_work_to_the_reaper(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    runtime.mark_destroying(run)  # a fence kills and leaves the stop work to the reaper
    assert runtime.is_destroying(run) and not runtime.destroyer_does_stop_work(run)
    started = time.monotonic()
    assert not reaper._done_by_destroyer(run, 1, None)
    assert time.monotonic() - started < 0.5  # no grace to wait for


def test_the_destroyer_that_does_the_work_is_left_to_it(tmp_path: Path) -> None:
    run = _run_dir(tmp_path)
    runtime.mark_destroying(run, stop_work_here=True)
    assert runtime.is_destroying(run) and runtime.destroyer_does_stop_work(run)
    timer = threading.Timer(0.2, shutil.rmtree, args=(run,))  # the destroyer's reap
    timer.start()
    try:
        assert reaper._done_by_destroyer(run, 1, None)
    finally:
        timer.join()


def test_a_destroyer_that_died_leaves_the_work_to_the_reaper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _run_dir(tmp_path)
    runtime.mark_destroying(run, stop_work_here=True)
    monkeypatch.setattr(reaper, "DESTROYER_GRACE", 0.2)
    assert not reaper._done_by_destroyer(run, 1, None)  # the run directory stayed


def test_the_watcher_yields_and_does_the_stop_work_at_normal_priority() -> None:
    """The watcher runs at nice 10; once QEMU is gone the stop work runs at normal priority
    again (as root)."""
    pid = os.fork()
    if pid == 0:  # a child: this test process keeps its priority
        code = 1
        try:
            lower_priority()
            ok = os.getpriority(os.PRIO_PROCESS, 0) == 10
            restore_priority()
            if os.geteuid() == 0:
                ok = ok and os.getpriority(os.PRIO_PROCESS, 0) == 0
            code = 0 if ok else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
