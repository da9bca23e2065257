"""``<serial type='pty'>`` is ``-chardev pty`` as libvirt makes it: the tiny guest's shell on
the allocated ``/dev/pts/N`` (shown in the live XML), ``pyvirt console`` through it, one
session at a time (a second is refused, ``--force`` takes over), the console log kept."""

from __future__ import annotations

import os
import pty
import re
import select
import time
from pathlib import Path

import pytest

from tests.conftest import PYVIRT, Pyvirt
from tests.consolehelp import serial_path
from tests.integration.test_lifecycle import console_log, define, wait_marker

pytestmark = pytest.mark.qemu


class Terminal:
    """``pyvirt console NAME`` in a pseudo-terminal of its own, as a user would run it."""

    def __init__(self, pv: Pyvirt, *args: str) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            os.execvpe(PYVIRT[0], [*PYVIRT, "console", *args], pv.env)
        self.buf = b""

    def expect(self, needle: bytes, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {needle!r} in {self.buf[-400:]!r}"
            if select.select([self.fd], [], [], remaining)[0]:
                try:
                    self.buf += os.read(self.fd, 4096)
                except OSError:  # EIO: the child ended
                    assert needle in self.buf, self.buf[-400:]

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def wait(self, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_pid, status = os.waitpid(self.pid, os.WNOHANG)
            if with_pid:
                self.drain()
                return os.waitstatus_to_exitcode(status)
            self.drain()
            time.sleep(0.05)
        raise AssertionError(f"console did not end: {self.buf[-400:]!r}")

    def drain(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                data = os.read(self.fd, 4096)
            except OSError:
                return
            if not data:
                return
            self.buf += data

    def close(self) -> None:
        try:
            os.kill(self.pid, 9)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def test_pty_console(pyvirt: Pyvirt, tiny_image: Path) -> None:
    console = "<console type='pty'><target type='serial'/></console>"
    define(pyvirt, tiny_image, extra_devices=console)
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")  # the console log is kept through logfile=

    pts = serial_path(pyvirt.root, "t1")
    assert re.fullmatch(r"/dev/pts/\d+", str(pts)), pts
    argv = (pyvirt.root / "run" / "qemu" / "t1" / "runtime.json").read_text()
    assert '"pty,id=charserial0,logfile=' in argv
    live = pyvirt("dumpxml", "t1").out
    assert f"<source path='{pts}'/>" in live or f'<source path="{pts}"/>' in live, live
    assert re.search(rf"<console type=.pty. tty=.{pts}.>", live), live
    assert "/dev/pts" not in pyvirt("dumpxml", "--inactive", "t1").out

    first = Terminal(pyvirt, "t1")
    try:
        first.expect(b"Escape character")
        first.send(b"echo hello-$((6*7))\r")
        first.expect(b"hello-42")

        # a second session is refused while the first holds the console
        res = pyvirt("console", "t1", check=False)
        assert res.rc != 0 and "active console session exists" in res.err, res.err

        # --force takes it over: the first session ends, the second types into the shell
        second = Terminal(pyvirt, "t1", "--force")
        try:
            assert first.wait() == 0
            second.expect(b"Escape character")
            second.send(b"echo again-$((7*6))\r")
            second.expect(b"again-42")
            second.send(b"\x1d")  # ^] leaves the console
            assert second.wait() == 0
        finally:
            second.close()
    finally:
        first.close()
    assert b"hello-42" in console_log(pyvirt, "t1").read_bytes()
