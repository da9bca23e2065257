"""The run directory's owner: live XML, runtime record and versioned hook data; and the
service's stop work on it (idempotent, only for the QEMU that exited)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.process import starttime
from pyvirt.drivers.qemu.rundir import HOOKS_VERSION, HookData, RunDir, upgrade_hooks
from pyvirt.drivers.qemu.runtime import RuntimeRecord, read_exit
from pyvirt.errors import NotFoundError, OperationFailedError


def test_live_xml_and_record(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "d")
    run.create()
    with pytest.raises(NotFoundError):
        run.live_xml()
    run.write_live_xml("<domain/>")
    assert run.live_xml() == b"<domain/>"
    assert run.record() is None
    rec = RuntimeRecord(name="d", uuid="u", pid=1, starttime=None, qmp_socket="q",
                        events_socket="e", log_path="l", argv=["qemu"])  # fmt: skip
    run.save_record(rec)
    assert run.record() == rec
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []  # no temp left
    run.create()  # a fresh start removes leftovers
    assert list(run.path.iterdir()) == []
    run.remove()
    run.remove()
    assert not run.exists()


def _swept(root: Path) -> bool:
    """Whether the removal's thread has deleted every tombstone under *root* (in 5 s)."""
    deadline = time.monotonic() + 5
    while list(root.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return not list(root.iterdir())


def test_remove_frees_the_name_at_once_and_sweeps_leftovers(tmp_path: Path) -> None:
    """The name is free at once and the directory is deleted off the caller's path; a
    watcher's late write through its descriptor of the old directory fails cleanly once it
    is gone (the watcher expects that); a tombstone a write kept from going (a file made
    while it was deleted) goes with the next removal."""
    run = RunDir(tmp_path / "d")
    run.create()
    run.write_live_xml("<domain/>")
    late = os.open(run.path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        run.remove()
        assert not run.exists()
        assert _swept(tmp_path)
        with pytest.raises(FileNotFoundError):
            os.open("exit.json", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=late)
    finally:
        os.close(late)
    left = tmp_path / ".gone-1-2"
    left.mkdir()
    (left / "exit.json").write_text("{}")
    run.create()
    assert list(run.path.iterdir()) == []
    run.remove()
    assert _swept(tmp_path)  # the leftover tombstone went too
    run.remove()  # removed already: nothing to do


def test_hook_data_round_trip_and_update(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "d")
    run.create()
    assert run.hooks() == HookData()
    run.save_hooks(HookData(sections={"network": {"nics": [{"tap": "vnet0"}]}}))
    run.update_hooks("network", lambda old: {**old, "nics": [*old["nics"], {"tap": "vnet1"}]})
    run.update_hooks("disks", lambda old: {**old, "disks": []})
    data = json.loads((run.path / "hooks.json").read_text())
    assert data["version"] == HOOKS_VERSION
    assert run.hooks().sections == {
        "network": {"nics": [{"tap": "vnet0"}, {"tap": "vnet1"}]},
        "disks": {"disks": []},
    }


def test_hook_data_v0_is_upgraded_on_read(tmp_path: Path) -> None:
    """Before versioning, hooks.json was the bare map hook name -> data."""
    run = RunDir(tmp_path / "d")
    run.create()
    (run.path / "hooks.json").write_text(json.dumps({"tuning": {"cgroup": "x"}}))
    assert run.hooks() == HookData(sections={"tuning": {"cgroup": "x"}})
    assert upgrade_hooks({"tuning": {}})["version"] == HOOKS_VERSION


def test_hook_data_from_newer_pyvirt_is_refused() -> None:
    with pytest.raises(OperationFailedError, match="newer than this pyvirt"):
        HookData.from_dict({"version": HOOKS_VERSION + 1, "sections": {}})
    with pytest.raises(OperationFailedError, match="sections"):
        HookData.from_dict({"version": HOOKS_VERSION, "sections": []})


# -- stop work ---------------------------------------------------------------------------------
class _RecordingHook:
    name = "test-recorder"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def compile(self, mgr: Any, dom: Any) -> None:
        return None

    def before_launch(self, mgr: Any, name: str, data: dict[str, Any]) -> None:
        pass

    def after_launch(self, mgr: Any, name: str, pid: int, data: dict[str, Any]) -> None:
        pass

    def after_stop(self, mgr: Any, name: str, data: dict[str, Any]) -> None:
        self.calls.append((name, data))


def test_stop_work_once_and_only_for_the_exited_qemu(tmp_path: Path) -> None:
    from pyvirt.service import hooks
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.state.paths import StatePaths

    hook = _RecordingHook()
    hooks.register_hook(hook)
    mgr = DomainManager(StatePaths.from_root(tmp_path))
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    pid, start = proc.pid, starttime(proc.pid)
    proc.wait()  # gone: this is the QEMU that exited
    run = mgr.rundir("d")
    run.create()
    run.save_record(RuntimeRecord(name="d", uuid="u", pid=pid, starttime=start, qmp_socket="q",
                                  events_socket="e", log_path="l", argv=[]))  # fmt: skip
    run.save_hooks(HookData(sections={"test-recorder": {"tap": "vnet7"}}))

    assert not mgr.stop_work("d", pid + 1, start)  # another QEMU: not ours to clean
    assert run.exists() and hook.calls == []
    assert mgr.stop_work("d", pid, start)
    assert hook.calls == [("d", {"tap": "vnet7"})]
    assert not run.exists()
    last = json.loads(mgr.paths.domain_last_state("d").read_text())
    assert last["state"] == "shut off" and last["reason"] == "crashed"
    assert not mgr.stop_work("d", pid, start)  # idempotent
    assert len(hook.calls) == 1
    assert read_exit(run.path) is None


def test_a_look_never_tears_down_what_the_reaper_owns(tmp_path: Path) -> None:
    """``list``/``dominfo`` on a domain whose QEMU just exited leave the stop work to its
    live reaper (no race on taps and cgroups); they report the recorded reason."""
    from pyvirt.drivers.qemu.runtime import ExitInfo, write_exit
    from pyvirt.service import hooks
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.service.domain.types import Reason, State
    from pyvirt.state.paths import StatePaths

    hook = _RecordingHook()
    hooks.register_hook(hook)
    mgr = DomainManager(StatePaths.from_root(tmp_path))
    mgr.define(
        "<domain type='qemu'><name>d</name><memory>65536</memory><os><type>hvm</type></os></domain>"
    )
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    pid, start = proc.pid, starttime(proc.pid)
    proc.wait()
    run = mgr.rundir("d")
    run.create()
    run.save_record(RuntimeRecord(name="d", uuid="u", pid=pid, starttime=start, qmp_socket="q",
                                  events_socket="e", log_path="l", argv=[]))  # fmt: skip
    run.save_hooks(HookData(sections={"test-recorder": {}}))
    me = os.getpid()  # this process plays the live reaper
    (run.path / "watch.json").write_text(
        json.dumps({"pid": me, "starttime": starttime(me), "connected": True})
    )
    write_exit(run.path, ExitInfo("shutdown", "guest-shutdown", guest=True))
    [status] = mgr.list_all()
    assert (status.state, status.reason) == (State.SHUTOFF, Reason.SHUTDOWN)
    assert run.exists() and hook.calls == []  # the reaper's job, not the look's
    assert mgr.stop_work("d", pid, start)
    assert hook.calls == [("d", {})]
