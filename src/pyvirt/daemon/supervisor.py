"""The supervisor: pyvirtd owns the running guests of its state directory.

At start-up it claims the state directory's domains (starts spawn no reaper process any more)
and attaches to every running QEMU (:class:`pyvirt.api.supervision.DomainWatch`): one QMP
event connection per guest, all in the daemon's event loop (a few KiB each, no thread or
process per guest). A reaper already watching a guest is stopped (the hand-over); a guest
whose QEMU went away while no daemon ran gets its stop work now, and one that powered off
meanwhile (QEMU waits in run state ``shutdown``, it was started with ``-no-shutdown``) gets
its ``on_poweroff`` policy. Guests started later are found at once when this process started
them (a start listener), and within :data:`RESCAN_INTERVAL` otherwise (an embedded CLI).

Lifecycle events go to the bus in virsh's words: ``Started Booted|Migrated|Restored``,
``Suspended Paused``, ``Resumed Unpaused|Migrated``, ``Shutdown Finished``, ``Crashed
Panicked``, ``Stopped Shutdown|Destroyed|Crashed|Failed|Migrated|Saved``, and
``device-removed`` with the device alias.

On a clean stop the daemon gives its guests back to reaper processes; killed, it leaves them
running, and the next command (or the next daemon) takes them over.

``GET /api/v1/supervisor`` shows the supervised domains and the last lifecycle events.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from pydantic import BaseModel

from pyvirt.api import supervision
from pyvirt.api.supervision import DomainEvent, DomainWatch
from pyvirt.daemon.bus import Subscription
from pyvirt.daemon.context import Daemon, daemon_of
from pyvirt.errors import PyvirtError

__all__ = ["RESCAN_INTERVAL", "Supervisor", "router", "setup", "watches"]

log = logging.getLogger("pyvirtd.supervisor")

#: seconds between two looks at the run directories (domains started by other processes)
RESCAN_INTERVAL = 1.0
#: seconds before a domain that could not be attached is tried again
RETRY_AFTER = 10.0
#: how long start-up waits for the first attach of every running domain
ATTACH_TIMEOUT = 60.0
#: lifecycle events kept for ``GET /api/v1/supervisor``
RECENT_EVENTS = 200

#: threads for the blocking steps (attach, stop work, hand-back: file locks, hooks)
WORKERS = 8

T = TypeVar("T")

router = APIRouter(tags=["supervisor"])

#: the supervisor of each daemon in this process, by ``id(daemon)``
_supervisors: dict[int, Supervisor] = {}


class Supervisor:
    """The domains this daemon watches (one task each) and the rescan."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.conn = daemon.conn
        self.tasks: dict[str, asyncio.Task[None]] = {}
        #: domains being watched now (attached, QEMU not gone yet)
        self.watching: dict[str, DomainWatch] = {}
        self.failed: dict[str, float] = {}
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=RECENT_EVENTS)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._background: list[asyncio.Task[None]] = []
        self._unlisten: Callable[[], None] | None = None
        self._pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="supervisor")

    async def _blocking(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` in the supervisor's threads (not the default executor, which
        autostart and the watchers' short waits share)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    # -- start and stop ---------------------------------------------------------------------
    async def start(self) -> None:
        """Claim the domains, attach to every running one, start the rescan."""
        self._loop = asyncio.get_running_loop()
        # qemu.qmp logs the expected end-of-file at every QEMU exit as an error
        logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL)
        sub = self.daemon.bus.subscribe()
        self._background.append(asyncio.create_task(self._remember(sub)))
        supervision.claim(self.conn)
        self._unlisten = supervision.on_started(self.conn, self._started_here)
        attached = [self.attach(name, started=False) for name in self._names()]
        waits = [f for f in attached if f is not None]
        if waits:
            _, pending = await asyncio.wait(waits, timeout=ATTACH_TIMEOUT)
            if pending:
                log.warning("%d domains not attached after %g s", len(pending), ATTACH_TIMEOUT)
        log.info("supervising %d running domains", len(self.watching))
        self._background.append(asyncio.create_task(self._rescan()))

    async def stop(self) -> None:
        """Stop watching (guests run on) and hand the guests back to reaper processes."""
        if self._unlisten is not None:
            self._unlisten()
        with contextlib.suppress(PyvirtError):
            supervision.release(self.conn)
        for task in self._background:
            task.cancel()
        tasks = list(self.tasks.values())
        handed = list(self.watching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, *self._background, return_exceptions=True)
        for w in handed:
            try:
                await self._blocking(w.hand_back)
            except Exception:
                log.exception("domain '%s': hand-back to a reaper failed", w.name)
        self._pool.shutdown(wait=True)

    # -- attaching --------------------------------------------------------------------------
    def _names(self) -> list[str]:
        try:
            return supervision.running_names(self.conn)
        except OSError as err:
            log.warning("cannot list the run directories: %s", err)
            return []

    def _started_here(self, name: str) -> None:
        """A start in this process (any thread): attach now, not at the next rescan."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.attach, name, True)

    def attach(self, name: str, started: bool) -> asyncio.Future[None] | None:
        """Supervise ``name`` unless already done; returns a future done once attached.

        :param started: it started while the daemon ran (publish ``Started``)
        """
        if name in self.tasks:
            return None
        failed = self.failed.get(name)
        if failed is not None and time.monotonic() - failed < RETRY_AFTER:
            return None
        attached: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self._supervise(name, started, attached))
        self.tasks[name] = task

        def done(t: asyncio.Task[None]) -> None:
            if self.tasks.get(name) is t:
                del self.tasks[name]
            if not attached.done():
                attached.set_result(None)

        task.add_done_callback(done)
        return attached

    async def _supervise(self, name: str, started: bool, attached: asyncio.Future[None]) -> None:
        w = DomainWatch(self.conn, name, lambda ev: self.publish(name, ev))
        try:
            ok = await self._blocking(w.attach)
        except Exception as err:
            log.warning("domain '%s': cannot supervise it: %s", name, err)
            self.failed[name] = time.monotonic()
            return
        finally:
            if not attached.done():
                attached.set_result(None)
        self.failed.pop(name, None)
        if not ok:
            if w.stopped is not None:
                self.publish(name, w.stopped)
            return
        if started:  # an incoming QEMU waits paused: not a suspend
            self.publish(name, w.started)
            if w.paused and w.incoming is None:
                self.publish(name, DomainEvent("lifecycle", "Suspended", "Paused"))
        self.watching[name] = w
        try:
            await w.watch()
        except asyncio.CancelledError:
            raise  # the daemon stops: stop() hands the domain back
        except Exception as err:
            if isinstance(err, PyvirtError):
                log.warning("%s (%s)", err.message, err.hint)
            else:
                log.exception("domain '%s': supervision failed", name)
            self.watching.pop(name, None)
            self.failed[name] = time.monotonic()
            return
        self.watching.pop(name, None)
        try:
            event = await asyncio.shield(self._blocking(w.finish))
        except Exception:
            log.exception("domain '%s': stop work failed", name)
            return
        self.publish(name, event)

    async def _rescan(self) -> None:
        """Attach to domains started by other processes (an embedded CLI)."""
        while True:
            await asyncio.sleep(RESCAN_INTERVAL)
            for name in self._names():
                if name not in self.tasks:
                    self.attach(name, started=True)

    # -- events -----------------------------------------------------------------------------
    def publish(self, name: str, ev: DomainEvent) -> None:
        """Put one domain event on the bus."""
        if ev.kind == "device-removed":
            self.daemon.bus.publish("device-removed", "domain", name, ev.event)
        else:
            self.daemon.bus.publish(ev.kind, "domain", name, ev.event, ev.detail)

    async def _remember(self, sub: Subscription) -> None:
        """Keep the last domain events for the status route."""
        try:
            while (ev := await sub.get()) is not None:
                if ev.object == "domain":
                    self.recent.append(ev.to_json())
        finally:
            sub.close()


class SupervisorStatus(BaseModel):
    """What the supervisor watches now, and the last domain events."""

    domains: list[str]
    events: list[dict[str, Any]]


@router.get("/api/v1/supervisor")
def status(request: Request) -> SupervisorStatus:
    """The supervised domains (attached to their QEMU) and the last domain events."""
    sup = _supervisors[id(daemon_of(request))]
    return SupervisorStatus(domains=sorted(sup.watching), events=list(sup.recent))


def watches(daemon: Daemon, name: str) -> bool:
    """Whether ``daemon``'s supervisor is attached to domain ``name`` now: its stop work will
    run the moment QEMU is gone, so a request need not wait for it (``destroy``)."""
    sup = _supervisors.get(id(daemon))
    return sup is not None and name in sup.watching


def setup(daemon: Daemon) -> None:
    """Register the supervisor's start-up and shut-down work."""
    sup = Supervisor(daemon)
    daemon.on_startup.append(sup.start)
    daemon.on_shutdown.append(sup.stop)
    _supervisors[id(daemon)] = sup
