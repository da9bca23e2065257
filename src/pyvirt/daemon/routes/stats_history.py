"""The last hour of every running domain's statistics, for the web console's graphs.

The daemon collects the statistics of its running domains every :data:`INTERVAL` seconds
(``$PYVIRTD_STATS_INTERVAL`` overrides it; one ``conn.domains.stats`` call, the collector of
``domstats`` and ``/metrics``, one monitor session per guest) into a
:class:`~pyvirt.api.stats_history.StatsHistory`: compact arrays, about 28 KiB per running
domain for an hour.

- ``GET /api/v1/domains/{name}/stats/history?since=T``: the samples after Unix time ``T``
  (none: the whole hour) as columns ``{"interval", "max_kib", "t": [...], "cpu": [...],
  "mem_current_kib", "mem_used_kib", "mem_rss_kib", "disk_rd_bps", "disk_wr_bps",
  "net_rx_bps", "net_tx_bps"}`` (``null`` where a figure is unknown).
- ``GET /api/v1/stats/history/cpu?domains=A,B&since=T&points=N``: ``{NAME: {"t": [...],
  "cpu": [...]}}`` of the named domains with a history (none named: every one), at most the
  last ``N`` samples of each: the overview's sparklines of its visible running rows, in one
  request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Query, Request

from pyvirt.api.stats_history import StatsHistory, history_groups
from pyvirt.daemon.context import Daemon, daemon_of
from pyvirt.errors import PyvirtError

__all__ = ["INTERVAL", "KEEP_SECONDS", "history_of", "router", "setup"]

log = logging.getLogger("pyvirtd.stats")

#: seconds between two samples
INTERVAL = 5.0
#: seconds of history kept
KEEP_SECONDS = 3600.0
#: samples between two clean-ups of the histories of domains that no longer exist
_PRUNE_EVERY = 12

router = APIRouter(tags=["stats"])
_histories: dict[int, StatsHistory] = {}


def _interval() -> float:
    try:
        value = float(os.environ.get("PYVIRTD_STATS_INTERVAL", "") or INTERVAL)
    except ValueError:
        return INTERVAL
    return min(max(value, 0.2), 300.0)


def history_of(daemon: Daemon) -> StatsHistory:
    """The daemon's statistics history (made on first use)."""
    hist = _histories.get(id(daemon))
    if hist is None:
        interval = _interval()
        hist = _histories[id(daemon)] = StatsHistory(KEEP_SECONDS, interval)
    return hist


def running_domains(daemon: Daemon, hist: StatsHistory, prune: bool = False) -> list[str]:
    """The names of the running domains (a directory listing, no file read per domain);
    marks the others stopped in ``hist`` and, with ``prune``, drops undefined ones."""
    rows = daemon.conn.domains.list(with_uuids=False)
    # paused ones are left out: nothing of theirs moves, and an incoming migration is paused
    # while its QEMU's monitor answers slowly (a sample there would hold it)
    running = [r.name for r in rows if str(r.state) == "running"]
    if prune:
        hist.keep_only(r.name for r in rows)
    hist.stopped(running)
    return running


def sample(daemon: Daemon, hist: StatsHistory, running: list[str]) -> int:
    """Collect the statistics of ``running`` into ``hist``; returns the domains sampled."""
    # a domain whose monitor is busy (a verb, a migration) is sampled without its figures
    # from QEMU rather than queueing behind it
    try:
        records = daemon.conn.domains.stats(running, history_groups(), monitor_wait=False)
    except PyvirtError:  # one went away meanwhile: every domain, skipping the missing
        records = daemon.conn.domains.stats(
            None, history_groups(), inactive_details=False, monitor_wait=False
        )
    return hist.add(records, time.time())


def _round(daemon: Daemon, hist: StatsHistory, prune: bool) -> None:
    running = running_domains(daemon, hist, prune)
    if running:
        sample(daemon, hist, running)


def setup(daemon: Daemon) -> None:
    """Sample every interval while the daemon runs."""
    tasks: list[asyncio.Task[None]] = []
    hist = history_of(daemon)

    async def sampler() -> None:
        rounds = 0
        while True:
            rounds += 1
            try:
                # in the request handlers' thread pool, never in the event loop: listing
                # reconciles states, and a domain whose QEMU died unwatched gets its stop
                # work (hooks, netlink) right there
                await to_thread.run_sync(_round, daemon, hist, rounds % _PRUNE_EVERY == 0)
            except PyvirtError as err:
                log.warning("statistics history: %s", err)
            except Exception:  # never let the sampler die
                log.exception("statistics history: sampling failed")
            await asyncio.sleep(hist.interval)

    async def start() -> None:
        tasks.append(asyncio.get_running_loop().create_task(sampler()))

    async def stop() -> None:
        for t in tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        _histories.pop(id(daemon), None)

    daemon.on_startup.append(start)
    daemon.on_shutdown.append(stop)


_SINCE = Query(description="only samples after this Unix time (none: the last hour)")


@router.get("/api/v1/domains/{name}/stats/history")
def domain_history(
    request: Request, name: str, since: Annotated[float, _SINCE] = 0.0
) -> dict[str, Any]:
    """The domain's samples as columns (CPU %, memory KiB, disk and network bytes/s).

    A domain that never ran under this daemon has empty columns."""
    daemon = daemon_of(request)
    dom = daemon.conn.domains.get(name)  # 404 for an unknown domain
    return history_of(daemon).columns(dom.name, since)


_DOMAINS = Query(
    description="comma-separated domain names (none: every domain with a history)",
    max_length=65536,
)
_POINTS = Query(description="at most this many of the latest samples per domain", ge=1, le=721)


@router.get("/api/v1/stats/history/cpu")
def cpu_history(
    request: Request,
    since: Annotated[float, _SINCE] = 0.0,
    domains: Annotated[str | None, _DOMAINS] = None,
    points: Annotated[int | None, _POINTS] = None,
) -> dict[str, Any]:
    """The CPU % column with its times of the named (or every) sampled domain; names
    without a history are left out."""
    hist = history_of(daemon_of(request))
    known = hist.names()
    if domains is not None:
        wanted = {n for n in domains.split(",") if n}
        known = [n for n in known if n in wanted]
    out: dict[str, Any] = {}
    for name in known:
        cols = hist.columns(name, since)
        first = -points if points is not None else 0
        out[name] = {key: cols[key][first:] for key in ("t", "cpu")}
    return out
