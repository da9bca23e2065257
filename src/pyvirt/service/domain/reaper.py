"""The reaper: the per-domain watcher process, plus the service's stop work when QEMU exits.

Run as ``python -m pyvirt.service.domain.reaper --paths JSON RUN_DIR ...`` by
:func:`pyvirt.service.domain.reaper_spawn.spawn`
right after a start. It is the driver's watcher (:func:`pyvirt.drivers.qemu.watch.main`: QMP
events to the log, lifecycle policies, ``exit.json``) with an ``on_exit`` callback that runs
:meth:`pyvirt.service.domain.manager.DomainManager.stop_work` the moment QEMU is gone,
whatever the reason (guest power-off, crash, ``kill -9``): the hooks' ``after_stop`` (taps
and macvtaps removed, VFs released, cgroups removed, network and volume references
dropped), the shut-off reason recorded and the run directory removed.

It lives in the service layer because the driver must not import the service: the driver
offers the callback, the service fills it. The hook modules the domain uses are imported in
a background thread while QEMU runs, so the stop work starts without import delay.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

from pyvirt.service.domain.reaper_spawn import parse_paths_arg

# lazy: function-local imports marked ``# lazy`` let the watcher process start at once; the stop
# work's imports (manager, hooks) load in a background thread while QEMU runs (see _preload).

__all__ = ["main"]

#: seconds to wait before preloading: the imports cost ~50 ms of CPU, which a guest booting
#: under TCG on a small host should not have to share (measured: start -> marker ratio)
PRELOAD_DELAY = 5.0


def _preload(run_dir: Path, now: threading.Event) -> None:
    """Import what the stop work needs (the manager, the domain's hook modules), once the
    guest had :data:`PRELOAD_DELAY` seconds to boot or as soon as ``now`` is set."""
    now.wait(PRELOAD_DELAY)
    try:
        from pyvirt.drivers.qemu.rundir import RunDir  # lazy
        from pyvirt.service import hooks  # lazy
        from pyvirt.service.domain import manager  # lazy

        del manager
        hooks.hooks(RunDir(run_dir).hooks().sections)
    except Exception:  # the stop work imports again and reports
        logging.getLogger(__name__).exception("preloading the stop work failed")


#: seconds a reaper gives the command that stopped its QEMU (a destroy, a migration's
#: confirm) to do the stop work itself before it imports what the work needs
DESTROYER_GRACE = 3.0


def _done_by_destroyer(run_dir: Path, pid: int, starttime: int | None) -> bool:
    """Whether the command that marked the QEMU's end as its own and said it does the stop
    work (``destroying``: a destroy, a migration's confirm) did it within
    :data:`DESTROYER_GRACE` seconds: then the reaper has nothing to do and spends no CPU on
    importing the manager (the destination of a migration, where the guest just resumed,
    shares this host). Else (that command died) the reaper does the work."""
    from pyvirt.drivers.qemu.runtime import destroyer_does_stop_work  # lazy
    from pyvirt.drivers.qemu.watch import still_ours  # lazy

    if not destroyer_does_stop_work(run_dir):
        return False
    deadline = time.monotonic() + DESTROYER_GRACE
    while still_ours(run_dir, pid, starttime):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``--paths JSON`` then the watcher's own arguments."""
    from pyvirt.drivers.qemu import watch  # lazy
    from pyvirt.drivers.qemu.runtime import ExitInfo  # lazy

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] != "--paths":
        print("usage: python -m pyvirt.service.domain.reaper --paths JSON RUN_DIR ...",
              file=sys.stderr)  # fmt: skip
        return 2
    paths = parse_paths_arg(args[1])
    rest = args[2:]
    run_dir = next((Path(a) for a in rest if not a.startswith("-")), None)
    loader = None
    now = threading.Event()
    if run_dir is not None:
        loader = threading.Thread(target=_preload, args=(run_dir, now), daemon=True)
        loader.start()

    def on_exit(run_dir: Path, info: ExitInfo, pid: int, starttime: int | None) -> None:
        if _done_by_destroyer(run_dir, pid, starttime):
            return
        from pyvirt.service.domain.manager import DomainManager  # lazy

        now.set()  # QEMU is gone: nothing to share the CPU with any more
        if loader is not None:
            loader.join()
        DomainManager(paths).stop_work(run_dir.name, pid, starttime)

    return watch.main(rest, on_exit=on_exit)


if __name__ == "__main__":
    from pyvirt.drivers.qemu.watch import exit_now

    exit_now(main())
