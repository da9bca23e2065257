"""The process watchdog: fences this host's HA guests when pyvirtd stops petting it.

pyvirtd's fence timer sends it, several times a second, a datagram on ``RUN/cluster-watchdog.sock``:
``{"deadline": CLOCK_MONOTONIC seconds, "names": [HA guests running here]}`` (without
``names``, a daemon just restarted, the names it had stay). When the deadline
passes without a newer one — pyvirtd was killed, hangs, or could not renew its lease — it kills
those guests (:func:`pyvirt.service.cluster.fence.kill_now`) and waits for the next pet. It
runs in a session of its own, so a ``kill -9`` of the daemon (or of its process group) leaves
it running; a restarted daemon pets the same watchdog. ``{"end": true}`` ends it (``cluster
leave``). One per state directory (an ``flock`` on ``RUN/cluster-watchdog.lock``).

While HA guests run here it also arms the kernel's watchdog (``/dev/watchdog``, see
:mod:`pyvirt.service.cluster.kernel_watchdog`) and pets it, so that a host whose user space
hangs — this process included — is reset before its lease can expire.

What it fenced is appended to ``RUN/cluster-fenced.jsonl`` (:func:`record_fenced`); pyvirtd
turns those lines into ``Fenced`` events when it runs again (:func:`take_fenced`).

**A clean stop** of pyvirtd with HA guests running sends ``{"hold": SECONDS, "lease": ID,
"deadline": ..., "names": [...]}``: the watchdog then renews the host's lease itself for up to
:data:`STOP_HOLD` seconds (:class:`Holder`), so the guests are neither fenced nor restarted
elsewhere while the daemon restarts (an upgrade); the fence deadline still follows each
successful renewal (the last one's start + TTL − margin), so a host cut off from etcd fences
as before: never twice. The restarted daemon's first pet ends the hold; when the hold runs out
without a daemon, the renewals stop and the guests are fenced at the deadline (and restarted
elsewhere) — an HA guest does not stay unmanaged for long.

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
import threading
import time
from pathlib import Path
from typing import Protocol

from pyvirt.errors import PyvirtError
from pyvirt.service.cluster.fence import FENCE_MARGIN, kill_now
from pyvirt.service.cluster.kernel_watchdog import PET, KernelWatchdog
from pyvirt.state.paths import StatePaths

log = logging.getLogger(__name__)

# lazy: the membership and etcd's client load only when a stopped daemon's lease is held

SOCKET = "cluster-watchdog.sock"
LOCK = "cluster-watchdog.lock"
FENCED = "cluster-fenced.jsonl"
#: seconds the watchdog keeps the lease alive after a clean stop of pyvirtd
STOP_HOLD = 120.0


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


def hold(
    paths: StatePaths, lease: int, deadline: float, names: list[str], seconds: float = STOP_HOLD
) -> bool:
    """After a clean stop of pyvirtd: ask the watchdog to renew *lease* itself for up to
    *seconds* (see the module doc); whether it listens."""
    msg = {"hold": seconds, "lease": lease, "deadline": deadline, "names": names}
    return _send(paths, json.dumps(msg).encode())


class Renewer(Protocol):
    """What :class:`Holder` needs of etcd's client."""

    def lease_keepalive(self, lease: int) -> int: ...

    def close(self) -> None: ...


class Holder:
    """Renews a stopped daemon's lease every *renew* seconds for up to *seconds*;
    :attr:`deadline` (monotonic) is the fence deadline the renewals allow.

    :param etcd: the cluster's etcd (closed when the holder ends)
    :param deadline: the fence deadline when the hold starts (the daemon's last one)
    """

    def __init__(self, etcd: Renewer, lease: int, *, renew: float, seconds: float,
                 deadline: float) -> None:  # fmt: skip
        self.etcd = etcd
        self.lease = lease
        self.renew = renew
        self.until = time.monotonic() + seconds
        self.deadline = deadline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog-hold", daemon=True)

    def start(self) -> Holder:
        """Start renewing (in a thread of its own: a slow etcd never delays the fence)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (the daemon is back)."""
        self._stop.set()

    @property
    def active(self) -> bool:
        """Whether it still renews."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            while not self._stop.is_set() and time.monotonic() < self.until:
                started = time.monotonic()
                try:
                    ttl = self.etcd.lease_keepalive(self.lease)
                except PyvirtError as err:
                    log.warning("watchdog: cannot renew lease %x: %s", self.lease, err.message)
                else:
                    if ttl <= 0:
                        log.warning("watchdog: lease %x is gone", self.lease)
                        return
                    self.deadline = max(self.deadline, started + ttl - FENCE_MARGIN)
                self._stop.wait(max(0.0, self.renew - (time.monotonic() - started)))
            if not self._stop.is_set():
                log.warning("watchdog: pyvirtd did not come back: the lease is no longer renewed")
        finally:
            self.etcd.close()


def _holder(paths: StatePaths, msg: dict[str, object], deadline: float) -> Holder | None:
    from pyvirt.service.cluster.config import read_config  # lazy
    from pyvirt.service.cluster.membership import open_etcd  # lazy

    try:
        config = read_config(paths)
        if config is None:
            return None
        etcd = open_etcd(config, fast=True)
        lease = int(msg["lease"])  # type: ignore[call-overload]
        seconds = float(msg["hold"])  # type: ignore[arg-type]
    except (PyvirtError, KeyError, TypeError, ValueError) as err:
        log.error("watchdog: cannot hold the lease: %s", err)
        return None
    log.info("watchdog: pyvirtd stopped; renewing lease %x for up to %g s", lease, seconds)
    return Holder(etcd, lease, renew=config.renew, seconds=seconds, deadline=deadline).start()


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


def record_fenced(paths: StatePaths, names: list[str]) -> None:
    """Append what the watchdog fenced (one JSON line) for pyvirtd to report."""
    line = json.dumps({"time": time.time(), "domains": names}) + "\n"
    with (paths.run / FENCED).open("a") as out:
        out.write(line)


def take_fenced(paths: StatePaths) -> list[tuple[float, list[str]]]:
    """The watchdog's fencing records (when, which domains), removed as they are taken."""
    path = paths.run / FENCED
    taking = path.with_suffix(".taking")
    try:
        os.rename(path, taking)  # the watchdog appends to a new file from now on
    except FileNotFoundError:
        return []
    out: list[tuple[float, list[str]]] = []
    try:
        for line in taking.read_text().splitlines():
            try:
                doc = json.loads(line)
                out.append((float(doc["time"]), [str(n) for n in doc["domains"]]))
            except (ValueError, KeyError, TypeError):
                continue
    finally:
        taking.unlink(missing_ok=True)
    return out


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


def _kernel(paths: StatePaths, device: Path | None) -> KernelWatchdog | None:
    """The kernel's watchdog to arm, unless the host's cluster config turns it off."""
    from pyvirt.service.cluster.config import read_config  # lazy

    try:
        config = read_config(paths)
    except PyvirtError as err:
        log.error("watchdog: %s", err.message)
        config = None
    if config is not None and not config.kernel_watchdog:
        log.info("watchdog: the kernel's watchdog is off for this host")
        return None
    return KernelWatchdog(device) if device is not None else KernelWatchdog()


def serve(paths: StatePaths, *, device: Path | None = None) -> int:
    """The watchdog's loop; returns the exit status.

    :param device: the kernel watchdog's device (default ``/dev/watchdog``)
    """
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
    holder: Holder | None = None
    kernel = _kernel(paths, device)
    while True:
        if holder is not None and deadline is not None:
            deadline = holder.deadline  # what the renewals allow
        if kernel is not None:  # armed while HA guests run here; petted before the deadline
            if deadline is None or not names:
                kernel.disarm()
            elif time.monotonic() < deadline and kernel.arm():
                kernel.pet()
        wait = None if deadline is None else max(0.0, deadline - time.monotonic())
        if holder is not None and holder.active:
            wait = min(wait if wait is not None else 0.1, 0.1)
        if kernel is not None and kernel.armed:
            wait = min(wait if wait is not None else PET, PET)
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
            if holder is not None:  # the daemon is back (or leaving): it renews again
                holder.stop()
                holder = None
            if msg.get("end"):
                if kernel is not None:
                    kernel.disarm()
                log.info("watchdog: stopped")
                sock_path.unlink(missing_ok=True)
                return 0
            deadline = float(msg["deadline"]) if msg.get("deadline") else None
            if "names" in msg:  # a restarted daemon's first pets keep the names (see api)
                names = [str(n) for n in msg["names"] or []]
            if msg.get("hold") and deadline is not None:
                holder = _holder(paths, msg, deadline)
            continue
        if deadline is not None and time.monotonic() >= deadline:
            log.warning("watchdog: no pet before the fence deadline; fencing %s", names or "none")
            killed = kill_now(paths, names)
            if killed:
                try:
                    record_fenced(paths, killed)
                except OSError as err:
                    log.error("watchdog: cannot record the fencing: %s", err)
            deadline = None  # (the kernel's watchdog is disarmed at the loop's top)
            if holder is not None:
                holder.stop()
                holder = None


def main() -> None:
    """``python -m pyvirt.service.cluster.watchdog``."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s pyvirt-watchdog[%(process)d] %(levelname)s %(message)s",
    )
    sys.exit(serve(StatePaths.default()))


if __name__ == "__main__":
    main()
