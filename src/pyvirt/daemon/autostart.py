"""Autostart: when pyvirtd starts, it starts the autostart networks, then pools, then domains.

Once per host boot, like libvirtd: the marker ``RUN/autostarted`` (the run directory is a
tmpfs in a real installation, emptied at boot) makes a restarted daemon leave alone the
objects a user stopped since. ``pyvirtd --no-autostart`` skips it. Each failure is logged and
the rest goes on; autostart runs in the background, so the API answers meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from fastapi import APIRouter

import pyvirt.api
from pyvirt.api.domains import State
from pyvirt.daemon.context import Daemon

__all__ = ["MARKER", "autostart", "router", "setup"]

log = logging.getLogger("pyvirtd.autostart")

#: written in the run root once autostart ran (it is not repeated until the next boot)
MARKER = "autostarted"

router = APIRouter()


def _each(kind: str, names: list[str], start: Callable[[str], object]) -> int:
    started = 0
    for name in names:
        try:
            start(name)
        except Exception as err:  # one failure must not stop the others
            log.error("autostart of %s '%s' failed: %s", kind, name, err)
        else:
            log.info("autostarted %s '%s'", kind, name)
            started += 1
    return started


def autostart(conn: pyvirt.api.Connection) -> int:
    """Start every inactive autostart network, pool and domain, in that order.

    :returns: how many were started
    """
    started = 0
    try:
        nets = [n.name for n in conn.networks.list() if n.autostart and not n.active]
        started += _each("network", nets, lambda n: conn.networks.get(n).start())
    except Exception as err:
        log.error("autostart of networks failed: %s", err)
    try:
        pools = [p.name for p in conn.pools.list(all=True) if p.autostart and p.state != "running"]
        started += _each("pool", pools, lambda p: conn.pools.get(p).start())
    except Exception as err:
        log.error("autostart of pools failed: %s", err)
    try:
        doms = [d.name for d in conn.domains.list(autostart=True, states=[State.SHUTOFF])]
        started += _each("domain", doms, lambda d: conn.domains.get(d).start())
    except Exception as err:
        log.error("autostart of domains failed: %s", err)
    return started


def setup(daemon: Daemon) -> None:
    """Run autostart in the background once the daemon (and its supervisor) started."""
    if not daemon.config.autostart:
        return
    tasks: list[asyncio.Task[None]] = []

    async def run() -> None:
        marker = daemon.paths.run / MARKER
        if marker.exists():
            log.info("autostart skipped: it ran since the host booted (%s)", marker)
            return
        began = time.monotonic()
        count = await asyncio.to_thread(autostart, daemon.conn)
        marker.write_text(f"{time.time()}\n")
        log.info("autostart: %d started in %.1f s", count, time.monotonic() - began)

    async def start() -> None:
        tasks.append(asyncio.create_task(run()))

    async def stop() -> None:
        for task in tasks:
            if not task.done():
                log.info("autostart still running at shut-down; waiting for it")
            await asyncio.gather(task, return_exceptions=True)

    daemon.on_startup.append(start)
    daemon.on_shutdown.append(stop)
