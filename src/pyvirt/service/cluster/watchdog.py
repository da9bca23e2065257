"""The process watchdog: fences this host's HA guests when pyvirtd stops petting it.

pyvirtd's fence timer sends it, several times a second, a datagram on ``RUN/cluster-watchdog.sock``:
``{"deadline": CLOCK_MONOTONIC seconds, "names": [HA guests running here]}`` (without
``names``, a daemon just restarted, the names it had stay). When the deadline
passes without a newer one — pyvirtd was killed, hangs, or could not renew its lease — it kills
those guests (:func:`pyvirt.service.cluster.fence.kill_now`) and waits for the next pet. It
runs in a session of its own, so a ``kill -9`` of the daemon (or of its process group) leaves
it running; a restarted daemon pets the same watchdog. ``{"end": true}`` ends it (``cluster
leave``). One per state directory (an ``flock`` on ``RUN/cluster-watchdog.lock``).

    python -m pyvirt.service.cluster.watchdog      # with PYVIRT_STATE_DIR set as for pyvirtd
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from pyvirt.service.cluster.fence import kill_now
from pyvirt.state.paths import StatePaths

log = logging.getLogger(__name__)

SOCKET = "cluster-watchdog.sock"
LOCK = "cluster-watchdog.lock"


def socket_path(paths: StatePaths) -> Path:
    """Where the watchdog listens."""
    return paths.run / SOCKET


def pet(paths: StatePaths, deadline: float, names: list[str] | None) -> bool:
    """Tell the watchdog the new fence deadline (monotonic) and the HA guests (None: the
    ones it has); whether it listens."""
    body: dict[str, object] = {"deadline": deadline}
    if names is not None:
        body["names"] = names
    msg = json.dumps(body).encode()
    return _send(paths, msg)


def stop(paths: StatePaths) -> bool:
    """Ask the watchdog to exit; whether it listened."""
    return _send(paths, b'{"end": true}')


def _send(paths: StatePaths, msg: bytes) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        try:
            s.sendto(msg, str(socket_path(paths)))
        except OSError:
            return False
    return True


def spawn(paths: StatePaths) -> None:
    """Start a watchdog for *paths*, which must be this process's
    :meth:`StatePaths.default` (the child finds the same from the same environment); it
    exits at once when one runs already."""
    log_file = paths.log / "cluster-watchdog.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as out:
        subprocess.Popen(
            [sys.executable, "-m", "pyvirt.service.cluster.watchdog"],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
        )  # fmt: skip


def serve(paths: StatePaths) -> int:
    """The watchdog's loop; returns the exit status."""
    paths.run.mkdir(parents=True, exist_ok=True)
    lock = os.open(paths.run / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # one runs already
    sock_path = socket_path(paths)
    sock_path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(sock_path))
    os.chmod(sock_path, 0o600)
    log.info("watchdog: listening on %s", sock_path)
    deadline: float | None = None
    names: list[str] = []
    while True:
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        sock.settimeout(wait)
        try:
            data = sock.recv(65536)
        except (TimeoutError, BlockingIOError):  # a zero timeout makes the socket non-blocking
            data = b""
        except OSError as err:
            log.error("watchdog: %s", err)
            time.sleep(0.1)
            continue
        if data:
            try:
                msg = json.loads(data)
            except ValueError:
                continue
            if msg.get("end"):
                log.info("watchdog: stopped")
                sock_path.unlink(missing_ok=True)
                return 0
            deadline = float(msg["deadline"]) if msg.get("deadline") else None
            if "names" in msg:
                names = [str(n) for n in msg["names"] or []]
            continue
        if deadline is not None and time.monotonic() >= deadline:
            log.warning("watchdog: no pet before the fence deadline; fencing %s", names or "none")
            kill_now(paths, names)
            deadline = None


def main() -> None:
    """``python -m pyvirt.service.cluster.watchdog``."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s pyvirt-watchdog[%(process)d] %(levelname)s %(message)s",
    )
    sys.exit(serve(StatePaths.default()))


if __name__ == "__main__":
    main()
