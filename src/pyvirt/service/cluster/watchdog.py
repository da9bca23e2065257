"""The process watchdog: holds this host's lease while HA guests run here, and fences them
when the host loses etcd.

pyvirtd's fence timer sends it, several times a second, a datagram on ``RUN/cluster-watchdog.sock``:
``{"deadline": CLOCK_MONOTONIC seconds, "lease": ID, "names": [HA guests running here]}``
(without ``names``, a daemon just restarted, the names it had stay). While HA guests run here
it renews that lease itself (:class:`Holder`, every renewal interval, beside pyvirtd's own
renewals), so **the lease does not depend on the API daemon**: pyvirtd may be killed (``kill
-9``), hang or restart (systemd) without its HA guests being fenced or restarted elsewhere. The
fence deadline is the latest one either renewer reached (a successful renewal's start + TTL −
margin); when it passes — the host cut off from etcd, or the lease gone — the watchdog kills
those guests (:func:`pyvirt.service.cluster.fence.kill_now`) and waits for the next pet. Its
deadline is published in ``RUN/cluster-lease-held`` (:func:`read_held`), so that pyvirtd's own
fence timer, after a hang, does not fence on a deadline the watchdog has since moved.

It holds the lease for up to ``daemon_hold`` seconds after pyvirtd's last pet (the host's
cluster config, ``cluster init|join --daemon-hold``, default :data:`STOP_HOLD`; 0: no hold):
an HA guest does not stay unmanaged for long (a daemon that does not come back: the renewals
stop, the guests are fenced at the deadline and restarted elsewhere). After :data:`SILENT`
seconds without a pet it gives up the recovery leadership if it holds it, so the other hosts' HA
guests are recovered meanwhile by another leader.

It runs in a session of its own, so a ``kill -9`` of the daemon (or of its process group)
leaves it running; a restarted daemon pets the same watchdog and goes on with the same lease.
``{"end": true}`` ends it (``cluster leave``). One per state directory (an ``flock`` on
``RUN/cluster-watchdog.lock``).

While HA guests run here it also arms the kernel's watchdog (``/dev/watchdog``, see
:mod:`pyvirt.service.cluster.kernel_watchdog`) and pets it, so that a host whose user space
hangs — this process included — is reset before its lease can expire.

What it fenced is appended to ``RUN/cluster-fenced.jsonl`` (:func:`record_fenced`); pyvirtd
turns those lines into ``Fenced`` events when it runs again (:func:`take_fenced`).

A clean stop of pyvirtd with HA guests running sends ``{"hold": SECONDS, ...}`` (a pet with
its own hold time, see :func:`hold`).

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
from typing import TYPE_CHECKING, Any, Protocol

from pyvirt.errors import PyvirtError
from pyvirt.service.cluster.fence import FENCE_MARGIN, kill_now
from pyvirt.service.cluster.kernel_watchdog import PET, KernelWatchdog
from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.drivers.etcd import Compare
    from pyvirt.service.cluster.config import ClusterConfig

log = logging.getLogger(__name__)

# lazy: the membership and etcd's client load only when the lease is held

SOCKET = "cluster-watchdog.sock"
LOCK = "cluster-watchdog.lock"
FENCED = "cluster-fenced.jsonl"
HELD = "cluster-lease-held"
#: seconds the watchdog keeps the lease alive after a clean stop of pyvirtd, and by default
#: after its last pet when it is killed or hangs (``cluster init|join --daemon-hold``)
STOP_HOLD = 120.0
#: seconds without a pet after which the watchdog gives up the recovery leadership
SILENT = 2.0


def socket_path(paths: StatePaths) -> Path:
    """Where the watchdog listens."""
    return paths.run / SOCKET


def held_path(paths: StatePaths) -> Path:
    """Where the watchdog publishes the fence deadline its own renewals reached."""
    return paths.run / HELD


def pet(paths: StatePaths, deadline: float, names: list[str] | None, lease: int = 0) -> bool:
    """Tell the watchdog the new fence deadline (monotonic), the host's *lease* (0: none)
    and the HA guests (None: the ones it has); whether it listens."""
    body: dict[str, object] = {"deadline": deadline}
    if lease:
        body["lease"] = lease
    if names is not None:
        body["names"] = names
    msg = json.dumps(body).encode()
    return _send(paths, msg)


def hold(
    paths: StatePaths, lease: int, deadline: float, names: list[str], seconds: float = STOP_HOLD
) -> bool:
    """After a clean stop of pyvirtd: ask the watchdog to renew *lease* for up to *seconds*
    more (see the module doc); whether it listens."""
    msg = {"hold": seconds, "lease": lease, "deadline": deadline, "names": names}
    return _send(paths, json.dumps(msg).encode())


def read_held(path: Path, lease: int) -> float | None:
    """The fence deadline (monotonic) the watchdog's renewals of *lease* reached, from the
    file it publishes (None: none, or another lease's)."""
    try:
        lease_text, deadline_text = path.read_text().split()
        if int(lease_text, 16) != lease:
            return None
        return float(deadline_text)
    except (OSError, ValueError):
        return None


def write_held(path: Path, lease: int, deadline: float) -> None:
    """Publish the fence deadline the renewals of *lease* reached (atomically)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(f"{lease:x} {deadline}\n")
    os.replace(tmp, path)


class Renewer(Protocol):
    """What :class:`Holder` needs of etcd's client."""

    def lease_keepalive(self, lease: int) -> int: ...

    def transaction(self, compare: list[Compare], success: list[Any]) -> bool: ...

    def close(self) -> None: ...


class Holder:
    """Renews the host's lease every *renew* seconds while pyvirtd pets, and for up to
    *seconds* after its last pet; :attr:`deadline` (monotonic) is the fence deadline the
    renewals (and the pets) allow.

    :param etcd: the cluster's etcd (closed when the holder ends)
    :param deadline: the fence deadline when the hold starts (the daemon's last one)
    :param held: where the deadline is published for pyvirtd (None: nowhere)
    """

    def __init__(self, etcd: Renewer, lease: int, *, renew: float, seconds: float,
                 deadline: float, held: Path | None = None) -> None:  # fmt: skip
        self.etcd = etcd
        self.lease = lease
        self.renew = renew
        self.seconds = seconds
        self.last_pet = time.monotonic()
        self.deadline = deadline
        self.held = held
        #: etcd said the lease is gone (no new holder for it)
        self.gone = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="watchdog-hold", daemon=True)

    def start(self) -> Holder:
        """Start renewing (in a thread of its own: a slow etcd never delays the fence)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop renewing (the host left the cluster, took another lease or fenced)."""
        self._stop.set()

    def petted(self, deadline: float, seconds: float | None = None) -> None:
        """pyvirtd petted (with its own fence *deadline*): hold on for *seconds* (default:
        as many as before) from now."""
        self.last_pet = time.monotonic()
        self.deadline = max(self.deadline, deadline)
        if seconds is not None:
            self.seconds = seconds

    @property
    def active(self) -> bool:
        """Whether it still renews."""
        return self._thread.is_alive()

    def _run(self) -> None:
        dropped = False  # the leadership given up in this silence of pyvirtd
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                silent = started - self.last_pet
                if silent >= self.seconds:
                    log.warning("watchdog: no pet from pyvirtd for %.0f s: the lease is no "
                                "longer renewed", silent)  # fmt: skip
                    return
                try:
                    ttl = self.etcd.lease_keepalive(self.lease)
                except PyvirtError as err:
                    log.warning("watchdog: cannot renew lease %x: %s", self.lease, err.message)
                else:
                    if ttl <= 0:
                        log.warning("watchdog: lease %x is gone", self.lease)
                        self.gone = True
                        return
                    self.deadline = max(self.deadline, started + ttl - FENCE_MARGIN)
                    self._publish()
                    if silent < SILENT:
                        dropped = False
                    elif not dropped:
                        log.warning("watchdog: no pet from pyvirtd for %.1f s: holding lease %x "
                                    "for up to %g s after its last pet", silent, self.lease,
                                    self.seconds)  # fmt: skip
                        dropped = self._drop_leadership()
                self._stop.wait(max(0.0, self.renew - (time.monotonic() - started)))
        finally:
            self.etcd.close()

    def _publish(self) -> None:
        if self.held is None:
            return
        try:
            write_held(self.held, self.lease, self.deadline)
        except OSError as err:
            log.error("watchdog: cannot publish the fence deadline: %s", err)

    def _drop_leadership(self) -> bool:
        """Give up the recovery leadership when this host's lease holds it (pyvirtd, which
        leads, is silent); whether that was asked of etcd."""
        from pyvirt.drivers.etcd import Compare, Delete  # lazy
        from pyvirt.service.cluster import keys  # lazy

        try:
            dropped = self.etcd.transaction(
                [Compare(keys.LEADER, "lease", "EQUAL", self.lease)], [Delete(keys.LEADER)]
            )
        except PyvirtError as err:
            log.warning("watchdog: cannot give up the recovery leadership: %s", err.message)
            return False
        if dropped:
            log.warning("watchdog: gave up the recovery leadership of silent pyvirtd "
                        "(another host leads meanwhile)")  # fmt: skip
        return True


def _holder(paths: StatePaths, lease: int, deadline: float, seconds: float) -> Holder | None:
    from pyvirt.service.cluster.config import read_config  # lazy
    from pyvirt.service.cluster.membership import open_etcd  # lazy

    try:
        config = read_config(paths)
        if config is None:
            return None
        etcd = open_etcd(config, fast=True)
    except PyvirtError as err:
        log.error("watchdog: cannot hold the lease: %s", err.message)
        return None
    log.info("watchdog: holding lease %x (for up to %g s after pyvirtd's last pet)",
             lease, seconds)  # fmt: skip
    return Holder(etcd, lease, renew=config.renew, seconds=seconds, deadline=deadline,
                  held=held_path(paths)).start()  # fmt: skip


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


def _config(paths: StatePaths) -> ClusterConfig | None:
    """The host's cluster config (None: none, or unreadable: said in the log)."""
    from pyvirt.service.cluster.config import read_config  # lazy

    try:
        return read_config(paths)
    except PyvirtError as err:
        log.error("watchdog: %s", err.message)
        return None


def _kernel(config: ClusterConfig | None, device: Path | None) -> KernelWatchdog | None:
    """The kernel's watchdog to arm, unless the host's cluster config turns it off."""
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
    config = _config(paths)
    kernel = _kernel(config, device)
    #: seconds to hold the lease after pyvirtd went silent (0: fence at the deadline)
    silent_hold = config.daemon_hold if config is not None else STOP_HOLD
    while True:
        if holder is not None and deadline is not None:
            deadline = max(deadline, holder.deadline)  # what the renewals allow
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
            if msg.get("end"):
                if holder is not None:
                    holder.stop()
                if kernel is not None:
                    kernel.disarm()
                log.info("watchdog: stopped")
                sock_path.unlink(missing_ok=True)
                return 0
            deadline = float(msg["deadline"]) if msg.get("deadline") else None
            if "names" in msg:  # a restarted daemon's first pets keep the names (see api)
                names = [str(n) for n in msg["names"] or []]
            holder = _follow(paths, holder, msg, deadline, names, silent_hold)
            continue
        if deadline is not None and time.monotonic() >= deadline:
            log.warning("watchdog: the fence deadline passed without a renewal; fencing %s",
                        names or "none")  # fmt: skip
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


def _follow(paths: StatePaths, holder: Holder | None, msg: dict[str, Any],
            deadline: float | None, names: list[str],
            silent_hold: float = STOP_HOLD) -> Holder | None:  # fmt: skip
    """The holder after a pet: the same one petted, a new one for a new lease, or none (no
    lease, no HA guest here, or no hold: *silent_hold* 0 and no clean stop's hold asked)."""
    try:
        lease = int(msg.get("lease") or 0)
        seconds = float(msg["hold"]) if msg.get("hold") else None
    except (TypeError, ValueError):
        lease, seconds = 0, None
    if deadline is None or not lease or not names or (seconds is None and silent_hold <= 0):
        if holder is not None:
            holder.stop()
        return None
    if seconds is not None:
        log.info("watchdog: pyvirtd stopped; renewing lease %x for up to %g s", lease, seconds)
    if holder is not None and holder.lease == lease and (holder.active or holder.gone):
        holder.petted(deadline, seconds)
        return holder
    if holder is not None:
        holder.stop()
    if deadline <= time.monotonic():
        return None  # past: fenced, or fencing now (no renewal brings a fenced guest back)
    return _holder(paths, lease, deadline, seconds if seconds is not None else silent_hold)


def main() -> None:
    """``python -m pyvirt.service.cluster.watchdog``."""
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s pyvirt-watchdog[%(process)d] %(levelname)s %(message)s",
    )
    sys.exit(serve(StatePaths.default()))


if __name__ == "__main__":
    main()
