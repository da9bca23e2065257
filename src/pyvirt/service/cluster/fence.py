"""Fencing: stopping this host's HA guests at once, before its lease can expire.

:func:`kill_now` is what both fencers run — the daemon's fence timer
(:class:`pyvirt.service.cluster.heartbeat.Heartbeat`) and the separate watchdog process
(:mod:`pyvirt.service.cluster.watchdog`) that acts when the daemon itself is dead or hung. It
takes no domain lock (a long operation holding one must not delay the fence), reads each
guest's runtime record and SIGKILLs its QEMU through a pidfd (a reused pid is never hit). The
domain reads ``shut off (destroyed)`` afterwards; pyvirtd's supervisor does the stop work.

Each guest killed is also noted in ``RUN/cluster-fenced`` (:data:`FENCED_FILE`): when the
host's lease outlived the fence (etcd was only slow, e.g. electing a leader), the recovery
manager hands those guests back to the cluster (:func:`take_fenced`) instead of leaving them
stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

from pyvirt.drivers.qemu import process, runtime
from pyvirt.errors import PyvirtError
from pyvirt.state.paths import StatePaths

log = logging.getLogger(__name__)

#: seconds before the lease's expiry at which a host fences its HA guests
FENCE_MARGIN = 2.0
#: the file (in the state's RUN directory) naming the guests fenced, one a line
FENCED_FILE = "cluster-fenced"


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
        if rec is None:
            continue
        try:
            runtime.mark_destroying(run_dir)
            outcome = process.kill(rec.pid, rec.starttime, timeout=2.0)
        except (OSError, PyvirtError) as err:
            log.error("fence: could not kill %s (pid %d): %s", name, rec.pid, err)
            continue
        if outcome is process.Outcome.KILLED:
            log.warning("fence: killed HA guest %s (pid %d)", name, rec.pid)
            killed.append(name)
    if killed:
        note_fenced(paths.run / FENCED_FILE, killed)
    return killed


def note_fenced(path: Path, names: Iterable[str]) -> None:
    """Append *names* to the fenced file *path* (one ``write`` with ``O_APPEND``: both fencers
    may write at once)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, "".join(f"{n}\n" for n in names).encode())
        finally:
            os.close(fd)
    except OSError as err:
        log.error("fence: cannot note the fenced guests in %s: %s", path, err)


def take_fenced(path: Path) -> set[str]:
    """The names noted in the fenced file *path*, which is emptied (renamed away first, so a
    fencer's note written meanwhile is kept for the next call)."""
    taken = path.with_name(path.name + ".taken")
    try:
        os.rename(path, taken)
    except FileNotFoundError:
        return set()
    try:
        return {n for n in taken.read_text().split() if n}
    finally:
        taken.unlink(missing_ok=True)
