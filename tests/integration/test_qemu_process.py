"""QEMU process supervision against a real QEMU (TCG): launch, QMP, watcher, console.

The guest is a 512-byte boot sector built here: it prints a marker on COM1, echoes what it
reads from COM1, and on ``q`` powers off through the ACPI PM1a control register (a real
``guest-shutdown``). It boots in well under a second under TCG.
"""

from __future__ import annotations

import json
import os
import pty
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pyvirt.drivers.qemu import console, process, runtime, watch
from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError
from pyvirt.errors import HostCommandError, MonitorError

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = [
    pytest.mark.qemu,
    pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 not installed"),
]

MARKER = b"PYVIRT-BOOT-OK"


def boot_sector() -> bytes:
    """Real-mode code: print MARKER to COM1; echo COM1 input; on 'q' write SLP_EN|S5 to
    PM1a_CNT (0x604 as SeaBIOS maps PIIX4 PM on -machine pc) and halt."""
    code = b"".join(
        bytes.fromhex(part)
        for part in (
            "31c0 8ed8 be2f7c",  # xor ax,ax; mov ds,ax; mov si,msg
            "ac 84c0 7406 baf803 ee ebf5",  # print: lodsb; test; jz loop; out 0x3f8; jmp print
            "bafd03 ec a801 74fb",  # loop: mov dx,0x3fd; wait: in al,dx; test al,1; jz wait
            "baf803 ec 3c71 7403 ee ebed",  # in al,0x3f8; cmp al,'q'; je off; echo; jmp loop
            "ba0406 b80020 ef f4 ebfd",  # off: out 0x604, 0x2000 (SLP_EN, S5); hlt; jmp hlt
        )
    )
    assert len(code) == 47  # msg at 0x7c00 + 47
    return (code + MARKER + b"\r\n\0").ljust(510, b"\0") + b"\x55\xaa"


@dataclass
class Guest:
    run_dir: Path
    log_path: Path
    console_log: Path
    serial: Path
    argv: list[str]
    launched: process.Launched | None = None

    def launch(self, *extra: str, watcher: bool = True) -> process.Launched:
        self.launched = process.launch_detailed(
            [*self.argv, *extra], run_dir=self.run_dir, log_path=self.log_path
        )
        if watcher:
            watch.spawn_watcher(self.run_dir, log_path=self.log_path)
            assert watch.wait_watcher(self.run_dir, 10), self.log_path.read_text()
        return self.launched

    def monitor(self) -> Monitor:
        return Monitor(self.run_dir / "qmp.sock", timeout=5)


@pytest.fixture
def guest() -> Iterator[Guest]:
    # short paths: unix socket names are limited to 107 bytes
    base = Path(tempfile.mkdtemp(prefix="pvq", dir="/tmp"))
    run_dir, log_dir = base / "run", base / "log"
    run_dir.mkdir()
    log_dir.mkdir()
    image = base / "boot.img"
    image.write_bytes(boot_sector())
    serial = run_dir / "serial0.sock"
    console_log = log_dir / "console.log"
    assert QEMU is not None
    argv = [
        QEMU,
        "-machine", "pc", "-accel", "tcg", "-nodefaults", "-display", "none", "-m", "32",
        "-drive", f"file={image},format=raw,if=ide",
        "-chardev",
        f"socket,id=serial0,path={serial},server=on,wait=off,logfile={console_log},logappend=on",
        "-serial", "chardev:serial0",
        "-qmp", f"unix:{run_dir}/qmp.sock,server=on,wait=off",
        "-qmp", f"unix:{run_dir}/events.sock,server=on,wait=off",
        "-pidfile", f"{run_dir}/qemu.pid",
        "-daemonize",
    ]  # fmt: skip
    g = Guest(run_dir, log_dir / "qemu.log", console_log, serial, argv)
    yield g
    if g.launched is not None:
        process.kill(g.launched.pid, g.launched.starttime)
    info = runtime.read_watcher(run_dir)
    if info is not None and info.alive:
        process.wait_gone(info.pid, info.starttime, 5)
    shutil.rmtree(base, ignore_errors=True)


def test_launch_outlives_launcher_and_records_starttime(guest: Guest) -> None:
    code = (
        "import json, sys; from pathlib import Path; from pyvirt.drivers.qemu import process;"
        "argv = json.loads(sys.argv[1]);"
        "pid = process.launch(argv, run_dir=Path(sys.argv[2]), log_path=Path(sys.argv[3]));"
        "print(json.dumps([pid, process.starttime(pid)]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(guest.argv), guest.run_dir, guest.log_path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    pid, starttime = json.loads(out)
    guest.launched = process.Launched(pid, starttime, guest.argv)
    assert process.is_alive(pid, starttime)
    assert int((guest.run_dir / "qemu.pid").read_text()) == pid
    assert os.getsid(pid) != os.getsid(0)  # not in our session: no SIGHUP from our tty
    assert not process.is_alive(pid, starttime + 1)  # pid reuse is detected
    stat = process.proc_stat(pid)
    assert stat is not None and stat[1] == starttime


def test_launch_is_fast(guest: Guest) -> None:
    t0 = time.perf_counter()
    launched = guest.launch("-S", watcher=False)
    elapsed = time.perf_counter() - t0
    print(f"launch: {elapsed * 1000:.1f} ms")
    assert "-D" in launched.argv
    assert elapsed < 2.0


def test_launch_failure_reports_stderr(guest: Guest) -> None:
    with pytest.raises(HostCommandError) as exc:
        process.launch(
            [*guest.argv, "-device", "no-such-device"],
            run_dir=guest.run_dir,
            log_path=guest.log_path,
        )
    assert "no-such-device" in exc.value.stderr
    assert "no-such-device" in str(exc.value)
    assert exc.value.returncode == 1
    assert exc.value.argv[0] == QEMU
    assert "no-such-device" in guest.log_path.read_text()


def test_qmp_status_stop_cont(guest: Guest) -> None:
    guest.launch("-S", watcher=False)
    with guest.monitor() as mon:
        assert mon.query_status() == ("prelaunch", False)
        mon.cont()
        assert mon.query_status() == ("running", True)
        mon.stop()
        assert mon.query_status() == ("paused", False)
        with pytest.raises(QmpCommandError) as exc:
            mon.execute("no-such-command")
        assert exc.value.error_class == "CommandNotFound"
        assert "no-such-command" in str(exc.value)
        assert mon.execute("query-name") == {}


def test_monitor_error_when_socket_missing(tmp_path: Path) -> None:
    with pytest.raises(MonitorError, match="connect"), Monitor(tmp_path / "nope.sock"):
        pass


def test_destroy_with_intent_is_destroyed_and_fast(guest: Guest) -> None:
    launched = guest.launch()
    # the watcher reads QEMU's SHUTDOWN event: let it connect first (on a loaded machine a
    # QEMU terminated at once is gone before its watcher sees anything)
    deadline = time.monotonic() + 30
    while not ((w := runtime.read_watcher(guest.run_dir)) and w.connected):
        assert time.monotonic() < deadline, "the watcher did not connect"
        time.sleep(0.02)
    runtime.mark_destroying(guest.run_dir)
    t0 = time.perf_counter()
    outcome = process.terminate(launched.pid, launched.starttime, timeout=5)
    elapsed = time.perf_counter() - t0
    print(f"terminate: {elapsed * 1000:.1f} ms")
    assert outcome is process.Outcome.EXITED
    assert not process.is_alive(launched.pid, launched.starttime)
    assert elapsed < 1.0
    info = runtime.wait_exit(guest.run_dir, 5)
    assert (info.reason, info.detail) == ("destroyed", "host-signal")
    # QEMU's stderr after -daemonize reaches the domain log
    log = guest.log_path.read_text()
    assert "terminating on signal 15" in log
    assert 'event SHUTDOWN {"guest": false, "reason": "host-signal"}' in log
    assert process.terminate(launched.pid, launched.starttime) is process.Outcome.NOT_RUNNING


def test_sigkill_is_crashed(guest: Guest) -> None:
    launched = guest.launch()
    os.kill(launched.pid, signal.SIGKILL)
    assert process.wait_gone(launched.pid, launched.starttime, 5)
    info = runtime.wait_exit(guest.run_dir, 5)
    assert (info.reason, info.detail) == ("crashed", "no-shutdown-event")


def test_qmp_quit_is_shutdown(guest: Guest) -> None:
    launched = guest.launch()
    with guest.monitor() as mon:
        mon.quit()
    assert process.wait_gone(launched.pid, launched.starttime, 5)
    assert runtime.wait_exit(guest.run_dir, 5).reason == "shutdown"


def test_guest_poweroff_is_shutdown(guest: Guest) -> None:
    launched = guest.launch()
    console.wait_log(guest.console_log, MARKER, 20)
    assert console.read_until(guest.serial, b"xyz", 10, send=b"xyz") == b"xyz"
    with pytest.raises(TimeoutError):
        console.read_until(guest.serial, b"never", 0.2, send=b"q")
    assert process.wait_gone(launched.pid, launched.starttime, 10)
    info = runtime.wait_exit(guest.run_dir, 5)
    assert (info.reason, info.detail, info.guest) == ("shutdown", "guest-shutdown", True)


def test_on_poweroff_restart(guest: Guest) -> None:
    runtime.write_policy(guest.run_dir, on_poweroff="restart")
    launched = guest.launch("-action", "shutdown=pause")
    console.wait_log(guest.console_log, MARKER, 20)
    with pytest.raises(TimeoutError):
        console.read_until(guest.serial, b"never", 0.2, send=b"q")
    # the watcher resets and resumes: the boot sector prints its marker a second time
    deadline = time.monotonic() + 20
    while guest.console_log.read_bytes().count(MARKER) < 2:
        assert time.monotonic() < deadline, guest.log_path.read_text()
        time.sleep(0.05)
    assert process.is_alive(launched.pid, launched.starttime)
    with guest.monitor() as mon:
        assert mon.query_status() == ("running", True)
    assert runtime.read_exit(guest.run_dir) is None


def test_console_attach_through_pty(guest: Guest) -> None:
    guest.launch(watcher=False)
    console.wait_log(guest.console_log, MARKER, 20)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyvirt.drivers.qemu.console", str(guest.serial)],
        stdin=slave,
        stdout=slave,
        stderr=subprocess.PIPE,
    )
    try:

        def read_until(needle: bytes, timeout: float = 10) -> bytes:
            buf = b""
            deadline = time.monotonic() + timeout
            while needle not in buf:
                remaining = deadline - time.monotonic()
                assert remaining > 0, buf
                if select.select([master], [], [], remaining)[0]:
                    buf += os.read(master, 4096)
            return buf

        assert b"Escape character is ^]" in read_until(b"^]")
        # the socket connects right after the banner; keep typing until the guest echoes
        deadline = time.monotonic() + 10
        buf = b""
        while b"hello" not in buf:
            assert time.monotonic() < deadline, buf
            os.write(master, b"hello")
            if select.select([master], [], [], 0.3)[0]:
                buf += os.read(master, 4096)
        os.write(master, b"\x1d")
        assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
        assert termios.tcgetattr(slave) == before  # raw mode undone
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
        os.close(slave)
