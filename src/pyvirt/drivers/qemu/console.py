"""Serial consoles: interactive attach, a socket bridged to the console for relays, test helpers.

Serial ports of type ``pty`` are ``-chardev pty`` (as libvirt makes them, with ``logfile=``
the console log): QEMU allocates a ``/dev/pts/N``, read back with ``query-chardev``. A console
session opens that pseudo-terminal in raw mode and holds an exclusive ``flock`` on it, so a
second session is refused ("an active console session exists", as virsh says) unless it
forces: it then leaves a takeover mark in the domain's run directory, the session holding the
console sees it within a quarter second and ends, and the new one gets the lock.

A domain started by an older pyvirt has a unix socket server instead (``RUN_DIR/serialN.sock``);
every function here takes either path.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import select
import socket
import stat
import sys
import termios
import threading
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


#: how often a session looks for a takeover mark (seconds)
POLL = 0.25
#: how long a new session waits for one that is ending to let go (seconds)
CLOSING_WAIT = 2.5
#: QEMU notices a pty's reader within a second (its reconnect timer): a session that typed
#: something stays open at least this long, so QEMU reads what it typed (seconds)
LINGER = 1.2
#: how long a forced session waits for the holder to let go (seconds)
TAKEOVER_WAIT = 5.0


def is_pty(path: Path | str) -> bool:
    """Whether *path* is a character device (a pseudo-terminal), not a unix socket."""
    try:
        return stat.S_ISCHR(os.stat(path).st_mode)
    except OSError:
        return str(path).startswith("/dev/")


class PtySession:
    """An exclusive, raw-mode open of a console's pseudo-terminal.

    :param path: ``/dev/pts/N``
    :param mark_dir: where a forced session leaves its takeover mark (the run directory);
        ``None``: no takeover possible
    :param name: the domain's name, for messages
    :param force: take the console over from the session holding it
    :raises OperationFailedError: it cannot be opened, or another session holds it
    """

    def __init__(
        self, path: Path | str, *, mark_dir: Path | None, name: str = "", force: bool = False
    ) -> None:
        self.path = str(path)
        self.mark = mark_dir / f"console-takeover.{Path(path).name}" if mark_dir else None
        self.opened = time.monotonic()
        self.typed = False
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            raise OperationFailedError(
                f"cannot open the console '{self.path}': {err.strerror or err}",
                hint="is the domain still running?",
            ) from err
        try:
            self._lock(name, force)
            with contextlib.suppress(termios.error):
                tty.setraw(self.fd, termios.TCSANOW)
        except BaseException:
            os.close(self.fd)
            raise

    def _try_lock(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _lock(self, name: str, force: bool) -> None:
        deadline = time.monotonic() + CLOSING_WAIT
        while not self._try_lock():  # a session that just ended may still be closing
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL / 5)
        else:
            return
        who = f"domain '{name}'" if name else self.path
        if not force or self.mark is None:
            raise OperationFailedError(
                f"an active console session exists for {who}",
                hint="detach the other session, or take it over with 'console --force'",
            )
        self.mark.touch()
        try:
            deadline = time.monotonic() + TAKEOVER_WAIT
            while not self._try_lock():
                if time.monotonic() >= deadline:
                    raise OperationFailedError(
                        f"the console session of {who} did not let go",
                        hint="try again, or stop the program holding it",
                    )
                time.sleep(POLL / 5)
        finally:
            self.mark.unlink(missing_ok=True)

    def taken_over(self) -> bool:
        """Whether a forced session asks for the console."""
        return self.mark is not None and self.mark.exists()

    def read(self) -> bytes | None:
        """What the guest wrote (``b""``: QEMU hung up; ``None``: nothing yet)."""
        try:
            return os.read(self.fd, 65536)
        except BlockingIOError:
            return None
        except OSError:  # EIO: the master side (QEMU) is gone
            return b""

    def write(self, data: bytes) -> None:
        """Send *data* to the guest (waits while the line is full)."""
        self.typed = True
        _write_all(self.fd, data)

    def close(self) -> None:
        """Let go of the console (after QEMU had the time to read what was typed)."""
        if self.fd < 0:
            return
        if self.typed and not self.taken_over():
            time.sleep(max(0.0, self.opened + LINGER - time.monotonic()))
        fd, self.fd = self.fd, -1
        with contextlib.suppress(OSError):
            os.close(fd)

    def __enter__(self) -> PtySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    name: str = "",
    force: bool = False,
    mark_dir: Path | None = None,
) -> str:
    """Connect the terminal to a serial console until the escape character or hang-up.

    The caller prints :func:`banner` first if it wants virsh's greeting. When ``stdin_fd`` is
    a tty it is put in raw mode (so ^C reaches the guest) and restored on exit.

    :param socket_path: the console's pseudo-terminal (or an older domain's unix socket)
    :param escape: the byte that detaches (default ^])
    :param name: the domain's name, for messages
    :param force: take the console over from another session
    :param mark_dir: where takeover marks go (the domain's run directory)
    :returns: ``"escape"`` (user detached), ``"closed"`` (QEMU hung up), ``"eof"``
        (stdin ended) or ``"taken over"`` (another session forced its way in)
    :raises OperationFailedError: the console cannot be opened or is in use
    """
    assert len(escape) == 1, "escape must be one byte"
    if not is_pty(socket_path):
        return _attach_socket(socket_path, escape=escape, stdin_fd=stdin_fd, stdout_fd=stdout_fd)
    with (
        PtySession(socket_path, mark_dir=mark_dir, name=name, force=force) as pty,
        _raw_tty(stdin_fd),
    ):
        while True:
            readable, _, _ = select.select([stdin_fd, pty.fd], [], [], POLL)
            if pty.taken_over():
                return "taken over"
            if pty.fd in readable:
                data = pty.read()
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
                    pty.write(head)
                if esc:
                    return "escape"


def _attach_socket(socket_path: Path | str, *, escape: bytes, stdin_fd: int, stdout_fd: int) -> str:
    """:func:`attach` to an older domain's unix socket (QEMU serves one client at a time)."""
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


def open_stream(
    path: Path | str,
    *,
    name: str = "",
    force: bool = False,
    mark_dir: Path | None = None,
    timeout: float | None = 5.0,
) -> socket.socket:
    """A connected socket carrying the console's bytes both ways.

    For a pseudo-terminal, one end of a ``socketpair`` whose other end a thread copies to
    and from the pty; the session ends when the caller closes the socket, QEMU hangs up, or a
    forced session takes over (the socket then reads EOF).

    :raises OperationFailedError: the console cannot be opened or is in use
    """
    if not is_pty(path):
        sock = _connect(path, timeout)
        sock.settimeout(None)
        return sock
    pty = PtySession(path, mark_dir=mark_dir, name=name, force=force)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    threading.Thread(
        target=_bridge, args=(pty, theirs), name=f"console-{name or path}", daemon=True
    ).start()
    return ours


def _bridge(pty: PtySession, sock: socket.socket) -> None:
    """Copy between *pty* and *sock* until either ends or the console is taken over."""
    sock.setblocking(True)
    sfd = sock.fileno()
    try:
        while True:
            readable, _, _ = select.select([pty.fd, sfd], [], [], POLL)
            if pty.taken_over():
                return
            if pty.fd in readable:
                data = pty.read()
                if data == b"":
                    return
                if data:
                    sock.sendall(data)
            if sfd in readable:
                data = sock.recv(65536)
                if not data:
                    return
                pty.write(data)
    except OSError as err:
        log.debug("console bridge of %s ended: %s", pty.path, err)
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        pty.close()


def read_until(
    socket_path: Path | str,
    pattern: bytes | re.Pattern[bytes],
    timeout: float = 30.0,
    *,
    send: bytes = b"",
) -> bytes:
    """Open a console (pty or socket), optionally send ``send``, and read until ``pattern``.

    :returns: everything read, up to and including the match
    :raises TimeoutError: the pattern did not appear in time (the text read is in the message)
    :raises OperationFailedError: the socket cannot be connected
    """
    regex = pattern if isinstance(pattern, re.Pattern) else re.compile(re.escape(pattern))
    deadline = time.monotonic() + timeout
    buf = b""
    with open_stream(socket_path, timeout=timeout) as sock:
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
    """``python -m pyvirt.drivers.qemu.console PATH``: attach (handy for debugging)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m pyvirt.drivers.qemu.console PTY-OR-SOCKET\n")
        return 2
    sys.stdout.write(banner(Path(args[0]).stem))
    sys.stdout.flush()
    attach(args[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
