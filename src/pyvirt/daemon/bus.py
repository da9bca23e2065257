"""The event bus: lifecycle, device, job, network and pool events fanned out to listeners.

Publishers call :meth:`EventBus.publish` from any thread (REST handlers run in a thread pool,
the supervisor in the event loop); delivery happens on the daemon's event loop. Each listener
(:class:`Subscription`) has a filter and a bounded queue. A listener that falls behind by more
than its queue is *dropped*: its queue is emptied, its stream ends, and its end callbacks run
(the SSE route cancels a send that is stuck on a client that stopped reading). Publishing never
waits for a listener, so a slow or stuck client can cost at most one queue of memory and never
blocks the daemon. :meth:`EventBus.close` ends every stream (the daemon is stopping).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pyvirt.api.event_values import Event

__all__ = ["Event", "EventBus", "EventFilter", "Subscription"]

log = logging.getLogger("pyvirtd.events")


@dataclass(frozen=True)
class EventFilter:
    """Which events a listener wants: ``kinds`` (``None``: all) and, when ``objects`` is not
    empty, only events of those ``(object, name)`` pairs (``("domain", "web1")``). A job event
    whose ``data["domain"]`` names a wanted domain passes too."""

    kinds: frozenset[str] | None = None
    objects: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def of(
        cls, kinds: Iterable[str] | None = None, **names: str | None
    ) -> EventFilter:  # fmt: skip
        """A filter from kinds and ``domain=``/``network=``/``pool=`` names."""
        objs = frozenset((obj, name) for obj, name in names.items() if name)
        return cls(None if kinds is None else frozenset(kinds), objs)

    def matches(self, ev: Event) -> bool:
        """True if ``ev`` passes."""
        if self.kinds is not None and ev.kind not in self.kinds:
            return False
        if not self.objects:
            return True
        if (ev.object, ev.name) in self.objects:
            return True
        dom = ev.data.get("domain")
        return isinstance(dom, str) and ("domain", dom) in self.objects


class Subscription:
    """One listener: a filter and a bounded queue, read with :meth:`get` on the loop."""

    def __init__(self, bus: EventBus, filt: EventFilter, size: int) -> None:
        self._bus = bus
        self.filter = filt
        self.size = size
        self._items: deque[Event] = deque()
        self._ready = asyncio.Event()
        self._on_end: list[Callable[[], None]] = []
        #: the listener fell behind and was disconnected
        self.dropped = False
        #: no more events will come (dropped, closed, or the bus closed)
        self.ended = False
        #: events delivered to this listener's queue
        self.delivered = 0

    async def get(self, timeout: float | None = None) -> Event | None:
        """The next event, or ``None`` once the subscription ended.

        :raises TimeoutError: nothing came within ``timeout`` seconds
        """
        while not self._items:
            if self.ended:
                return None
            self._ready.clear()
            if timeout is None:
                await self._ready.wait()
            else:
                async with asyncio.timeout(timeout):
                    await self._ready.wait()
        return self._items.popleft()

    def pending(self) -> int:
        """Events queued and not read yet."""
        return len(self._items)

    def on_end(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` (on the loop) when the subscription ends; at once if it has."""
        if self.ended:
            callback()
        else:
            self._on_end.append(callback)

    def close(self) -> None:
        """Stop receiving events (the listener went away)."""
        self._bus.unsubscribe(self)
        self._end()

    # -- called by the bus, on the loop --------------------------------------------------
    def _offer(self, ev: Event) -> bool:
        """Queue ``ev``; False (and nothing queued) when the queue is full."""
        if len(self._items) >= self.size:
            return False
        self._items.append(ev)
        self.delivered += 1
        self._ready.set()
        return True

    def _drop(self) -> None:
        self.dropped = True
        self._items.clear()
        self._end()

    def _end(self) -> None:
        if self.ended:
            return
        self.ended = True
        self._ready.set()
        callbacks, self._on_end = self._on_end, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("event listener end callback failed")


class EventBus:
    """Fan-out of :class:`Event` to :class:`Subscription` queues on one asyncio loop."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._closed = False
        #: events a listener may have queued before it is dropped
        self.queue_size = queue_size
        #: listeners dropped for falling behind since the daemon started
        self.dropped_total = 0
        #: events published since the daemon started
        self.published_total = 0

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` (called once the server's loop runs)."""
        self._loop = loop
        self._closed = False

    @property
    def listeners(self) -> int:
        """Listeners subscribed now."""
        return len(self._subs)

    def subscribe(self, filt: EventFilter | None = None, size: int | None = None) -> Subscription:
        """A new listener (call on the loop); after :meth:`close` it is ended at once."""
        sub = Subscription(self, filt or EventFilter(), size or self.queue_size)
        if self._closed:
            sub._end()
        else:
            self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub``."""
        self._subs.discard(sub)

    def publish(self, kind: str, obj: str, name: str, event: str, detail: str = "",
                **data: Any) -> Event:  # fmt: skip
        """Send an event to every listener that wants it; never waits; safe from any thread.

        ``kind`` is one of :data:`pyvirt.api.event_values.KINDS`, ``event``/``detail`` virsh's
        words (``"lifecycle", "domain", "web1", "Started", "Booted"``).
        """
        with self._lock:
            ev = Event(kind, obj, name, event, detail, data, next(self._seq), time.time())
            self.published_total += 1
        loop = self._loop
        if loop is None or loop.is_closed():
            return ev
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._deliver(ev)
        else:
            # RuntimeError: the loop closed in between, so nobody listens any more
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._deliver, ev)
        return ev

    def close(self) -> None:
        """End every stream and accept no new listener (the daemon is stopping); safe from
        any thread."""
        self._closed = True
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop or loop.is_closed():
            self._end_all()
        else:
            loop.call_soon_threadsafe(self._end_all)

    def _end_all(self) -> None:
        subs, self._subs = list(self._subs), set()
        for sub in subs:
            sub._end()

    def _deliver(self, ev: Event) -> None:
        for sub in list(self._subs):
            if not sub.filter.matches(ev) or sub._offer(ev):
                continue
            # a slow listener is dropped, never waited for
            self._subs.discard(sub)
            self.dropped_total += 1
            log.warning(
                "event listener dropped: it fell behind by %d events (seq %d)", sub.size, ev.seq
            )
            sub._drop()
