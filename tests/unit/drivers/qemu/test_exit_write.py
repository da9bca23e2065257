"""The watcher writes ``exit.json`` through its run directory's descriptor: a destroy that
removed the directory (it does not wait for the watcher) and a start that made a new one of
the same name never get a stale exit record."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pyvirt.drivers.qemu.runtime import ExitInfo, read_exit, write_exit_at


def test_exit_is_written_through_the_descriptor(tmp_path: Path) -> None:
    run = tmp_path / "d"
    run.mkdir()
    fd = os.open(run, os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert write_exit_at(fd, ExitInfo("shutdown", "guest-shutdown", guest=True))
    finally:
        os.close(fd)
    info = read_exit(run)
    assert info is not None and info.reason == "shutdown"
    assert sorted(p.name for p in run.iterdir()) == ["exit.json"]


def test_a_removed_and_remade_run_directory_gets_nothing(tmp_path: Path) -> None:
    run = tmp_path / "d"
    run.mkdir()
    fd = os.open(run, os.O_RDONLY | os.O_DIRECTORY)
    try:
        shutil.rmtree(run)
        run.mkdir()  # the next start's run directory
        assert not write_exit_at(fd, ExitInfo("destroyed", "no-shutdown-event"))
    finally:
        os.close(fd)
    assert list(run.iterdir()) == []
