"""Serial consoles: interactive attach over a chardev's unix socket, and test helpers.

Serial ports of type ``pty`` are lowered by the argv builder to a QEMU unix socket server
(``RUN_DIR/serialN.sock``, ``server=on,wait=off``) with ``logfile=`` the console log.
QEMU serves one client per socket at a time; a second client waits in the backlog until the
first detaches, so :func:`attach` works from another terminal while the guest runs as long
as nobody else is attached.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import select
import socket
import sys
import termios
import time
import tty
from collections.abc import Iterator
from pathlib import Path

from pyvirt.errors import OperationFailedError

log = logging.getLogger(__name__)

#: ^] like virsh.
DEFAULT_ESCAPE = b"\x1d"


def banner(name: str, escape: bytes = DEFAULT_ESCAPE) -> str:
    """virsh's greeting: ``Connected to domain 'NAME'`` and the escape character."""
    shown = f"^{chr(escape[0] + 64)}" if len(escape) == 1 and escape[0] < 32 else repr(escape)
    return f"Connected to domain '{name}'\nEscape character is {shown}\n"


def _connect(socket_path: Path | str, timeout: float | None = 5.0) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(str(socket_path))
    except OSError as err:
        sock.close()
        raise OperationFailedError(
            f"cannot connect to console socket '{socket_path}': {err.strerror or err}",
            hint="is the domain running with a serial console of type pty?",
        ) from err
    return sock


@contextlib.contextmanager
def _raw_tty(fd: int) -> Iterator[None]:
    """Put the terminal on ``fd`` in raw mode for the duration (no-op if not a tty)."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd, termios.TCSANOW)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except BlockingIOError:
            select.select([], [fd], [])
            continue
        view = view[n:]


def attach(
    socket_path: Path | str,
    *,
    escape: bytes = DEFAULT_ESCAPE,
    stdin_fd: int = 0,
    stdout_fd: int = 1,
) -> str:
    """Connect the terminal to a serial console until the escape character or hang-up.

    The caller prints :func:`banner` first if it wants virsh's greeting. When ``stdin_fd`` is
    a tty it is put in raw mode (so ^C reaches the guest) and restored on exit.

    :param socket_path: the chardev's unix socket
    :param escape: the byte that detaches (default ^])
    :returns: ``"escape"`` (user detached), ``"closed"`` (QEMU hung up) or ``"eof"``
        (stdin ended)
    :raises OperationFailedError: the socket cannot be connected
    """
    assert len(escape) == 1, "escape must be one byte"
    sock = _connect(socket_path)
    sock.setblocking(False)
    sfd = sock.fileno()
    try:
        with _raw_tty(stdin_fd):
            while True:
                readable, _, _ = select.select([stdin_fd, sfd], [], [])
                if sfd in readable:
                    try:
                        data = sock.recv(65536)
                    except BlockingIOError:
                        data = None
                    if data == b"":
                        return "closed"
                    if data:
                        _write_all(stdout_fd, data)
                if stdin_fd in readable:
                    data = os.read(stdin_fd, 4096)
                    if not data:
                        return "eof"
                    head, esc, _ = data.partition(escape)
                    if head:
                        sock.setblocking(True)
                        sock.sendall(head)
                        sock.setblocking(False)
                    if esc:
                        return "escape"
    finally:
        sock.close()


def read_until(
    socket_path: Path | str,
    pattern: bytes | re.Pattern[bytes],
    timeout: float = 30.0,
    *,
    send: bytes = b"",
) -> bytes:
    """Connect to a console socket, optionally send ``send``, and read until ``pattern``.

    :returns: everything read, up to and including the match
    :raises TimeoutError: the pattern did not appear in time (the text read is in the message)
    :raises OperationFailedError: the socket cannot be connected
    """
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
    deadline = time.monotonic() + timeout
    buf = b""
    with _connect(socket_path, timeout) as sock:
        if send:
            sock.sendall(send)
        while True:
            match = regex.search(buf)
            if match:
                return buf[: match.end()]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            sock.settimeout(remaining)
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            buf += chunk
    raise TimeoutError(
        f"{pattern!r} not seen on {socket_path} within {timeout:g} s: {buf[-500:]!r}"
    )


def wait_log(path: Path, pattern: bytes | re.Pattern[bytes], timeout: float = 30.0) -> bytes:
    """Poll a console log file until ``pattern`` appears; return the file's content so far.

    :raises TimeoutError: not seen within ``timeout``
    """
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
    deadline = time.monotonic() + timeout
    data = b""
    while True:
        with contextlib.suppress(FileNotFoundError):
            data = path.read_bytes()
        if regex.search(data):
            return data
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{pattern!r} not in {path} within {timeout:g} s: {data[-500:]!r}")
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    """``python -m pyvirt.drivers.qemu.console SOCKET``: attach (handy for debugging)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m pyvirt.drivers.qemu.console SOCKET\n")
        return 2
    sys.stdout.write(banner(Path(args[0]).stem))
    sys.stdout.flush()
    attach(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
