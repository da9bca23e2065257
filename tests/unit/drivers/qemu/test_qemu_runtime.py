"""Runtime records, exit classification and liveness checks (no QEMU needed)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from pyvirt.drivers.qemu import process, runtime, watch
from pyvirt.drivers.qemu.runtime import ExitInfo, RuntimeRecord
from pyvirt.errors import NotFoundError, OperationFailedError


def record(**kw: object) -> RuntimeRecord:
    base: dict[str, object] = dict(
        name="web1",
        uuid="c7a5fdbd-edaf-9455-926a-d65c16db1809",
        pid=1234,
        starttime=5678,
        qmp_socket="/run/pyvirt/qemu/web1/qmp.sock",
        events_socket="/run/pyvirt/qemu/web1/events.sock",
        log_path="/var/log/pyvirt/qemu/web1/qemu.log",
        argv=["qemu-system-x86_64", "-name", "guest=web1"],
        serial_sockets=["/run/pyvirt/qemu/web1/serial0.sock"],
        vnc_display=3,
        vnc_port=5903,
    )
    base.update(kw)
    return RuntimeRecord(**base)  # type: ignore[arg-type]


def test_record_round_trip(tmp_path: Path) -> None:
    rec = record(domain_id=7, paused=True, transient=True, reason="booted")
    rec.save(tmp_path)
    assert (tmp_path / "runtime.json").stat().st_mode & 0o777 == 0o600
    assert RuntimeRecord.load(tmp_path) == rec
    assert json.loads((tmp_path / "runtime.json").read_text())["version"] == 1


def test_record_missing(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        RuntimeRecord.load(tmp_path)
    assert RuntimeRecord.load_or_none(tmp_path) is None


def test_record_upgrade_from_v0(tmp_path: Path) -> None:
    v0 = {
        "name": "old",
        "uuid": "u",
        "pid": 42,
        "qmp": "/run/x/qmp.sock",
        "serial": "/run/x/serial0.sock",
        "vnc": 5901,
        "log": "/log/x/qemu.log",
        "paused_on_start": True,
    }
    (tmp_path / "runtime.json").write_text(json.dumps(v0))
    rec = RuntimeRecord.load(tmp_path)
    assert rec.version == runtime.CURRENT_VERSION
    assert rec.starttime is None
    assert rec.qmp_socket == "/run/x/qmp.sock"
    assert rec.events_socket == "/run/x/events.sock"
    assert rec.serial_sockets == ["/run/x/serial0.sock"]
    assert (rec.vnc_port, rec.vnc_display) == (5901, 1)
    assert rec.log_path == "/log/x/qemu.log"
    assert rec.paused is True


def test_record_newer_version_refused() -> None:
    with pytest.raises(OperationFailedError, match="newer"):
        RuntimeRecord.from_dict({**record().to_dict(), "version": 99})


def test_record_unknown_fields_ignored() -> None:
    rec = record()
    assert RuntimeRecord.from_dict({**rec.to_dict(), "future": 1}) == rec


def test_record_corrupt(tmp_path: Path) -> None:
    (tmp_path / "runtime.json").write_text("{nope")
    with pytest.raises(OperationFailedError):
        RuntimeRecord.load(tmp_path)


@pytest.mark.parametrize(
    ("event", "destroying", "reason"),
    [
        ({"guest": True, "reason": "guest-shutdown"}, False, "shutdown"),
        ({"guest": True, "reason": "guest-reset"}, False, "shutdown"),
        ({"guest": False, "reason": "host-qmp-quit"}, False, "shutdown"),
        ({"guest": True, "reason": "guest-panic"}, False, "crashed"),
        ({"guest": False, "reason": "host-signal"}, False, "crashed"),
        ({"guest": False, "reason": "host-signal"}, True, "destroyed"),
        (None, False, "crashed"),
        (None, True, "destroyed"),
    ],
)
def test_classify(event: dict[str, object] | None, destroying: bool, reason: str) -> None:
    assert watch.classify(event, destroying).reason == reason


def test_exit_file_and_fallback(tmp_path: Path) -> None:
    assert runtime.read_exit(tmp_path) is None
    assert runtime.exit_reason(tmp_path, wait=0) == "crashed"
    runtime.mark_destroying(tmp_path)
    assert runtime.exit_reason(tmp_path, wait=0) == "destroyed"
    runtime.write_exit(tmp_path, ExitInfo("shutdown", "guest-shutdown", guest=True, at=1.0))
    assert runtime.read_exit(tmp_path) == ExitInfo("shutdown", "guest-shutdown", True, 1.0)
    assert runtime.exit_reason(tmp_path) == "shutdown"


def test_policy_round_trip(tmp_path: Path) -> None:
    assert runtime.read_policy(tmp_path) == {}
    runtime.write_policy(tmp_path, on_poweroff="restart", on_crash="destroy")
    assert runtime.read_policy(tmp_path) == {"on_poweroff": "restart", "on_crash": "destroy"}


def test_liveness_self_and_missing() -> None:
    me = os.getpid()
    assert process.is_alive(me, process.starttime(me))
    assert process.is_alive(me, None)
    assert not process.is_alive(me, (process.starttime(me) or 0) + 1)  # pid reuse
    assert not process.is_alive(2**22 + 1, None)  # above pid_max
    assert process.terminate(2**22 + 1, None) is process.Outcome.NOT_RUNNING


def test_zombie_counts_as_dead() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while (process.proc_stat(pid) or ("?", 0))[0] != "Z":
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert os.kill(pid, 0) is None  # the kernel still has it ...
        assert not process.is_alive(pid, None)  # ... but it is dead to us
        assert process.wait_gone(pid, None, 0)
    finally:
        os.waitpid(pid, 0)


def test_terminate_escalates_to_sigkill() -> None:
    import signal
    import subprocess
    import sys

    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
        "print(1, flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline()
        start = process.starttime(proc.pid)
        t0 = time.monotonic()
        assert process.terminate(proc.pid, start, timeout=0.2) is process.Outcome.KILLED
        assert time.monotonic() - t0 < 2
        assert proc.wait(5) == -signal.SIGKILL
    finally:
        proc.kill()
        proc.wait()


#: a process whose main thread exits at once while another lives 0.6 s longer (as QEMU's
#: main thread exits before the kernel has torn the rest down)
LINGERING = (
    "import ctypes, os, threading, time\n"
    "def late():\n    time.sleep(0.6)\n    os._exit(0)\n"
    "threading.Thread(target=late).start()\n"
    "print(1, flush=True)\n"
    "ctypes.CDLL(None).pthread_exit(None)\n"
)


def test_wait_exited_waits_for_every_thread() -> None:
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", LINGERING], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline()
        start = process.starttime(proc.pid)
        deadline = time.monotonic() + 5
        while process.is_alive(proc.pid, start):  # the main thread: a zombie soon
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert not process.wait_exited(proc.pid, start, 0.05)  # the other thread runs on
        assert process.wait_exited(proc.pid, (start or 0) + 1, 0)  # another process's pid
        assert process.wait_exited(proc.pid, start, 5)
        assert proc.wait(5) == 0
    finally:
        proc.kill()
        proc.wait()
    assert process.wait_exited(proc.pid, start, 0)  # reaped: gone


def test_terminate_until_stopped() -> None:
    import subprocess

    proc = subprocess.Popen(["sleep", "60"])
    try:
        start = process.starttime(proc.pid)
        outcome = process.terminate(proc.pid, start, timeout=5.0, stopped=True)
        assert outcome is process.Outcome.EXITED
        assert not process.is_alive(proc.pid, start)
    finally:
        proc.kill()
        proc.wait()
