"""Launching the per-domain reaper (:mod:`pyvirt.service.domain.reaper`) after a start.

Kept apart from the reaper itself: the reaper process imports the domain manager to run the
stop work, while starting a domain (:mod:`pyvirt.service.domain.lifecycle`, below the
manager) only needs to launch it. The reaper is a separate process, named here by its module.
"""

from __future__ import annotations

import json
from pathlib import Path

from pyvirt.state.paths import StatePaths

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the QEMU watcher module
# loads only when a domain starts.

__all__ = ["REAPER_MODULE", "parse_paths_arg", "paths_arg", "spawn"]

#: the module run as the reaper process (``python -m``)
REAPER_MODULE = "pyvirt.service.domain.reaper"


def paths_arg(paths: StatePaths) -> str:
    """The reaper's ``--paths`` argument: the state roots as JSON."""
    return json.dumps(
        {"config": str(paths.config), "run": str(paths.run), "log": str(paths.log),
         "cache": str(paths.cache)}
    )  # fmt: skip


def parse_paths_arg(text: str) -> StatePaths:
    """The state roots of a ``--paths`` argument made by :func:`paths_arg`."""
    roots = json.loads(text)
    return StatePaths(
        Path(roots["config"]), Path(roots["run"]), Path(roots["log"]), Path(roots["cache"])
    )


def spawn(paths: StatePaths, name: str) -> int:
    """Start the reaper of running domain ``name`` (detached; not waited for).

    :returns: its pid
    """
    from pyvirt.drivers.qemu import process, runtime, watch  # lazy
    from pyvirt.state.atomic import atomic_write  # lazy

    run_dir = paths.domain_run_dir(name)
    pid = watch.spawn_watcher(
        run_dir, module=REAPER_MODULE, extra_args=["--paths", paths_arg(paths)]
    )
    # claim the watch at once (the reaper rewrites it when it runs): a command in between must
    # not take the domain for unwatched and spawn a second reaper
    stat = process.proc_stat(pid)
    current = runtime.read_watcher(run_dir)
    if stat is not None and (current is None or current.pid != pid):
        body = json.dumps({"pid": pid, "starttime": stat[1], "connected": False}).encode()
        atomic_write(run_dir / runtime.WATCHER_FILE, body, 0o600, sync=False)
    return pid
