"""Fencing: stopping this host's HA guests at once, before its lease can expire.

:func:`kill_now` is what both fencers run — the daemon's fence timer
(:class:`pyvirt.service.cluster.heartbeat.Heartbeat`) and the separate watchdog process
(:mod:`pyvirt.service.cluster.watchdog`) that acts when the daemon itself is dead or hung. It
takes no domain lock (a long operation holding one must not delay the fence), reads each
guest's runtime record and SIGKILLs its QEMU through a pidfd (a reused pid is never hit). The
domain reads ``shut off (destroyed)`` afterwards; pyvirtd's supervisor does the stop work.

Each guest is marked fenced (a file ``RUN/cluster-fenced/NAME``) before it is killed: when
the host keeps its lease after all (a daemon hung or cut off from etcd for a little longer than
the fence deadline but shorter than the TTL), the recovery manager gives the fenced guests'
ownership up so that they are restarted; otherwise an HA guest would stay down for good.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from pyvirt.drivers.qemu import process, runtime
from pyvirt.errors import PyvirtError
from pyvirt.state.paths import StatePaths

# lazy: the monitor's client loads only when a round asks a migration's source (the
# watchdog process imports this module for kill_now alone)

log = logging.getLogger(__name__)

#: seconds before the lease's expiry at which a host fences its HA guests
FENCE_MARGIN = 2.0

#: the directory (under RUN) of the fenced marks
FENCED_DIR = "cluster-fenced"


def _fenced_dir(paths: StatePaths) -> Path:
    return paths.run / FENCED_DIR


def fenced(paths: StatePaths) -> dict[str, float]:
    """The guests marked fenced and not forgotten yet: name -> when (seconds since the
    epoch)."""
    found: dict[str, float] = {}
    try:
        entries = list(os.scandir(_fenced_dir(paths)))
    except FileNotFoundError:
        return found
    for entry in entries:
        try:
            found[entry.name] = entry.stat().st_mtime
        except OSError:
            continue
    return found


def forget_fenced(paths: StatePaths, name: str) -> None:
    """Remove guest *name*'s fenced mark."""
    (_fenced_dir(paths) / name).unlink(missing_ok=True)


def mark_fenced(paths: StatePaths, name: str) -> None:
    """Mark guest *name* fenced (before it is killed: a round that sees it dead sees the mark)."""
    try:
        _fenced_dir(paths).mkdir(parents=True, exist_ok=True)
        (_fenced_dir(paths) / name).write_text(f"{time.time()}\n")
    except OSError as err:
        log.error("fence: cannot mark %s fenced: %s", name, err)


def incoming(paths: StatePaths, name: str) -> bool:
    """Whether *name*'s QEMU here is the destination of a migration still going on (started
    with ``-incoming`` and not resumed yet; or still starting, its runtime record not written):
    it runs no guest code and holds its disks inactive, and the migration moves the ownership
    at its hand-over."""
    run_dir = paths.domain_run_dir(name)
    try:
        rec = runtime.RuntimeRecord.load_or_none(run_dir)
    except PyvirtError:
        return False
    if rec is not None and not rec.paused:
        return False
    try:
        pid = rec.pid if rec is not None else int((run_dir / "qemu.pid").read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"-incoming" in f.read().split(b"\0")
    except (OSError, ValueError):
        return False


#: seconds the round that kills unowned HA guests leaves a migration's paused source to the
#: migration (its confirm stops it, its recover runs it again) after the migration began
HANDOVER_GRACE = 60.0
#: QEMU's run states of a source whose migration sent the whole state
_SENT = ("finish-migrate", "postmigrate")


def outgoing(paths: StatePaths, name: str) -> bool:
    """Whether *name*'s QEMU here is the source of a migration that sent the whole state and
    began less than :data:`HANDOVER_GRACE` seconds ago. ``cluster evacuate`` moves the
    ownership then, before the destination runs the guest; the migration's confirm stops
    this QEMU and hands its shared images over to the destination's QEMU first. Killed
    before, the images would go back to their owner under that QEMU, whose ``cont`` could
    not reopen them, and a destination that failed would leave no guest to resume here. A
    monitor another session holds counts as such a source: the next round asks again."""
    from pyvirt.drivers.qemu.qmp import MonitorBusyError  # lazy
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy

    run_dir = paths.domain_run_dir(name)
    try:
        began = (run_dir / runtime.MIGRATE_BEFORE_FILE).stat().st_mtime
        rec = runtime.RuntimeRecord.load_or_none(run_dir)
    except (OSError, PyvirtError):
        return False
    if rec is None or time.time() - began > HANDOVER_GRACE:
        return False
    try:
        with SyncMonitor(rec.qmp_socket, 2.0, name=name, purpose="cluster", wait=False) as mon:
            return mon.query_status()[0] in _SENT
    except MonitorBusyError:
        return True
    except PyvirtError:
        return False


def kill_now(paths: StatePaths, names: Iterable[str]) -> list[str]:
    """SIGKILL the QEMU of each running domain in *names*; the names killed."""
    killed: list[str] = []
    for name in names:
        run_dir = paths.domain_run_dir(name)
        try:
            rec = runtime.RuntimeRecord.load_or_none(run_dir)
        except PyvirtError as err:
            log.error("fence: cannot read %s's runtime record: %s", name, err.message)
            continue
        if rec is not None:
            pid, start = rec.pid, rec.starttime
        else:  # a start still going on: QEMU runs, its record is not written yet
            found = _launched(run_dir, name)
            if found is None:
                continue
            pid, start = found
        mark_fenced(paths, name)  # first: a recovery round that sees it dead sees the mark
        try:
            if rec is not None:
                runtime.mark_destroying(run_dir)
            outcome = process.kill(pid, start, timeout=2.0)
        except (OSError, PyvirtError) as err:
            log.error("fence: could not kill %s (pid %d): %s", name, pid, err)
            continue
        if outcome is process.Outcome.KILLED:
            log.warning("fence: killed HA guest %s (pid %d)", name, pid)
            killed.append(name)
    return killed


def _launched(run_dir: Path, name: str) -> tuple[int, int | None] | None:
    """(pid, start time) of the QEMU of *name* that wrote its pid file in *run_dir* and
    runs, when its start has not written the runtime record yet."""
    pidfile = run_dir / "qemu.pid"
    try:
        pid = int(pidfile.read_text().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except (OSError, ValueError):
        return None
    if f"guest={name},".encode() not in b",".join(argv) + b"," or str(pidfile).encode() not in argv:
        return None
    return pid, process.starttime(pid)
