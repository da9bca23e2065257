"""Fencing: stopping this host's HA guests at once, before its lease can expire.

:func:`kill_now` is what both fencers run — the daemon's fence timer
(:class:`pyvirt.service.cluster.heartbeat.Heartbeat`) and the separate watchdog process
(:mod:`pyvirt.service.cluster.watchdog`) that acts when the daemon itself is dead or hung. It
takes no domain lock (a long operation holding one must not delay the fence), reads each
guest's runtime record and SIGKILLs its QEMU through a pidfd (a reused pid is never hit). The
domain reads ``shut off (destroyed)`` afterwards; pyvirtd's supervisor does the stop work.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pyvirt.drivers.qemu import process, runtime
from pyvirt.errors import PyvirtError
from pyvirt.state.paths import StatePaths

log = logging.getLogger(__name__)

#: seconds before the lease's expiry at which a host fences its HA guests
FENCE_MARGIN = 2.0


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
    return killed
