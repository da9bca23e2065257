"""The first stage of a migration destination's watcher: run the guest on arrival, on a
plain socket.

The watcher of an incoming QEMU (:mod:`pyvirt.drivers.qemu.watch`) is spawned while the
guest's state streams in, and when the destination asked for it (``RUN_DIR/run-on-arrival``)
it sends ``cont`` the moment QEMU reports ``MIGRATION completed``. Its full form imports
asyncio, qemu.qmp and logging: ~50 ms of CPU, measured, which a small host takes from the
two QEMUs moving the guest (the move took ~20 ms longer, measured on two cores). So the
watcher process first runs :func:`follow`, which needs nothing but ``json``, ``os`` and
``socket``:

- it connects to the events socket, says so in ``watch.json`` (the destination's finish
  then waits for it rather than open a monitor session of its own), and logs every event in
  the watcher's format;
- on ``MIGRATION completed`` it takes the flag and sends ``cont`` as the full watcher does
  (:data:`~pyvirt.drivers.qemu.runfiles.RUN_ON_ARRIVAL_SENT_FILE`, then
  :data:`~pyvirt.drivers.qemu.runfiles.ARRIVED_FILE`);
- it keeps following the resumed guest's events for :data:`HAND_OVER` seconds (the source's
  QEMU quits meanwhile, on a local move the same host), then closes its session and returns.

The full watcher then connects and asks QEMU what it missed
(:meth:`~pyvirt.drivers.qemu.watch.Watch.catch_up`), as for a watcher that started late.
Whatever is not a plain pre-copy arrival goes to the full watcher at once: an incoming
migration that may switch to post-copy (the capability is on: its recovery needs
out-of-band commands), a failed or cancelled migration, a SHUTDOWN (the lifecycle
policies), a monitor that closes.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import time

from pyvirt.drivers.qemu.runfiles import (
    ARRIVED_FILE,
    EVENTS_SOCKET,
    RUN_ON_ARRIVAL_FILE,
    RUN_ON_ARRIVAL_SENT_FILE,
    WATCHER_FILE,
)

TYPE_CHECKING = False  # not typing's: its import alone costs ~4 ms
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

__all__ = ["HAND_OVER", "event_line", "follow", "write_watcher"]

#: seconds the first stage follows a guest it resumed before the full watcher takes over
HAND_OVER = 0.5
#: seconds to wait for the events socket (QEMU made it before it daemonized: at once)
CONNECT_WAIT = 2.0
#: MIGRATION statuses of a pre-copy transfer under way (anything else: the full watcher)
_UNDER_WAY = frozenset({"setup", "active", "device", "pre-switchover", "wait-unplug"})
#: events that may follow the ``cont`` without the full watcher's policies
_AFTER_CONT = frozenset({"RESUME", "MIGRATION", "MIGRATION_PASS"})


def event_line(event: Mapping[str, Any]) -> str:
    """One event as the domain log shows it: QEMU's UTC timestamp, name, data."""
    stamp = event.get("timestamp") or {}
    seconds = float(stamp.get("seconds", time.time())) + stamp.get("microseconds", 0) / 1e6
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(seconds))
    data = json.dumps(event.get("data", {}), sort_keys=True)
    return f"{when}.{int(seconds % 1 * 1e6):06d}Z: event {event.get('event')} {data}"


class _Session:
    """A QMP session on the events socket: lines in, events to the log."""

    def __init__(self, sock: socket.socket, out_fd: int) -> None:
        self.sock = sock
        self.out_fd = out_fd
        self.buf = b""

    def read(self, timeout: float | None = None) -> dict[str, Any] | None:
        """The next message; None at EOF or when *timeout* seconds pass without one."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                    return None
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        msg = json.loads(line)
        if not isinstance(msg, dict):
            raise ValueError("a QMP message that is no object")
        if "event" in msg:
            self.log(event_line(msg))
        return msg

    def execute(self, command: str) -> dict[str, Any]:
        """Send *command*; its reply (``return`` or ``error``), events logged meanwhile."""
        self.sock.sendall(json.dumps({"execute": command}).encode() + b"\n")
        while True:
            msg = self.read()
            if msg is None:
                raise ConnectionError("QEMU closed the monitor")
            if "return" in msg or "error" in msg:
                return msg

    def log(self, line: str) -> None:
        with contextlib.suppress(OSError):
            os.write(self.out_fd, line.encode() + b"\n")


def follow(run_dir: str, out_fd: int = 2) -> bool:
    """Run the first stage (see the module docstring) if ``RUN_DIR/run-on-arrival`` is there.

    :param out_fd: the domain log
    :returns: whether it ran the guest
    """
    if not os.path.exists(os.path.join(run_dir, RUN_ON_ARRIVAL_FILE)):
        return False
    sock = _connect(os.path.join(run_dir, EVENTS_SOCKET))
    if sock is None:
        return False
    session = _Session(sock, out_fd)
    try:
        greeting = session.read(CONNECT_WAIT)
        if greeting is None or "QMP" not in greeting:
            return False
        if "return" not in session.execute("qmp_capabilities") or _postcopy(session):
            return False
        write_watcher(run_dir, connected=True)
        try:
            if not _until_arrival(session):
                return False
            ran = _run(session, run_dir)
            if ran:
                _follow_resumed(session)
            return ran
        finally:
            write_watcher(run_dir, connected=False)
    except (OSError, ValueError) as err:
        _say(out_fd, f"first stage: {err}")
        return False
    finally:
        sock.close()


def _connect(path: str) -> socket.socket | None:
    deadline = time.monotonic() + CONNECT_WAIT
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= deadline:
                return None
        time.sleep(0.005)


def _postcopy(session: _Session) -> bool:
    """Whether the incoming migration may switch to post-copy (the full watcher's case)."""
    reply = session.execute("query-migrate-capabilities")
    caps = reply.get("return")
    if not isinstance(caps, list):
        return True
    return any(c.get("capability") == "postcopy-ram" and c.get("state") for c in caps)


def _until_arrival(session: _Session) -> bool:
    """Read events until the state is in (True) or the full watcher must take over. A stage
    that started late (the state came before) learns it from ``query-migrate``."""
    status = (session.execute("query-migrate").get("return") or {}).get("status")
    if status == "completed":
        return True
    if status in ("failed", "cancelled"):
        return False
    while True:
        msg = session.read()
        if msg is None:
            return False
        if msg.get("event") != "MIGRATION":
            if msg.get("event") in ("SHUTDOWN", "GUEST_PANICKED"):
                return False
            continue
        status = (msg.get("data") or {}).get("status")
        if status == "completed":
            return True
        if status not in _UNDER_WAY:
            return False


def _run(session: _Session, run_dir: str) -> bool:
    """Take the flag, ``cont``, say it ran."""
    sent = os.path.join(run_dir, RUN_ON_ARRIVAL_SENT_FILE)
    try:
        os.rename(os.path.join(run_dir, RUN_ON_ARRIVAL_FILE), sent)
    except OSError:
        return False  # taken: finish runs it itself
    reply = session.execute("cont")
    if "error" in reply:
        _say(session.out_fd, f"cont after the incoming migration failed: {reply['error']}")
        with contextlib.suppress(OSError):
            os.unlink(sent)
        return False
    with contextlib.suppress(OSError):
        os.rename(sent, os.path.join(run_dir, ARRIVED_FILE))
    return True


def _follow_resumed(session: _Session) -> None:
    """Log the resumed guest's events for :data:`HAND_OVER` seconds, or until one needs the
    full watcher."""
    deadline = time.monotonic() + HAND_OVER
    while (left := deadline - time.monotonic()) > 0:
        msg = session.read(left)
        if msg is None or msg.get("event", "RESUME") not in _AFTER_CONT:
            return


def write_watcher(run_dir: str, *, connected: bool) -> None:
    """Record this process as the watcher of *run_dir* (``watch.json``: pid, start time,
    whether it is connected to QEMU's events socket), atomically, not durably (the run
    directory does not outlive a reboot)."""
    with open(f"/proc/{os.getpid()}/stat", "rb") as f:
        raw = f.read()
    starttime = int(raw[raw.rindex(b")") + 2 :].split()[19])
    data = json.dumps({"pid": os.getpid(), "starttime": starttime, "connected": connected})
    tmp = os.path.join(run_dir, f".{WATCHER_FILE}.{os.urandom(6).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)  # whatever the umask: other users' commands read it
        os.write(fd, data.encode())
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, os.path.join(run_dir, WATCHER_FILE))


def _say(out_fd: int, message: str) -> None:
    """A line in the watcher's own format."""
    now = time.time()
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now))
    line = f"{when}.{int(now % 1 * 1000):03d}Z: pyvirt-watch: {message}\n"
    with contextlib.suppress(OSError):
        os.write(out_fd, line.encode())
