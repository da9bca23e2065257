"""The event bus: lifecycle, device, job, network and pool events fanned out to listeners.

Publishers call :meth:`EventBus.publish` from any thread (REST handlers run in a thread pool,
the supervisor in the event loop). Each listener has a bounded queue; a listener that falls
behind by more than its queue is dropped (its stream ends) instead of slowing the daemon.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Event", "EventBus", "Subscription"]


@dataclass(frozen=True)
class Event:
    """One event. ``kind`` is ``lifecycle``, ``device-added``, ``device-removed``, ``job``,
    ``network-lifecycle``, ``pool-lifecycle``; ``event`` and ``detail`` use virsh's wording
    (``Started``/``Booted``, ``Stopped``/``Shutdown`` ...)."""

    kind: str
    object: str  # "domain", "network", "pool", "job"
    name: str
    event: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    time: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The event as a JSON object."""
        return {
            "seq": self.seq, "time": self.time, "kind": self.kind, "object": self.object,
            "name": self.name, "event": self.event, "detail": self.detail, "data": self.data,
        }  # fmt: skip


class Subscription:
    """One listener's queue; iterate with ``await sub.get()`` until it returns ``None``."""

    def __init__(self, bus: EventBus, size: int) -> None:
        self._bus = bus
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue(size)
        self.dropped = False

    async def get(self) -> Event | None:
        """The next event, or ``None`` once the subscription was dropped or closed."""
        return await self.queue.get()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus.unsubscribe(self)


class EventBus:
    """Fan-out of :class:`Event` to :class:`Subscription` queues on one asyncio loop."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.queue_size = queue_size

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on ``loop`` (called once the server's loop runs)."""
        self._loop = loop

    def subscribe(self) -> Subscription:
        """A new listener (call from the loop)."""
        sub = Subscription(self, self.queue_size)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget ``sub``."""
        self._subs.discard(sub)

    def publish(self, kind: str, obj: str, name: str, event: str, detail: str = "",
                **data: Any) -> Event:  # fmt: skip
        """Send an event to every listener; safe from any thread."""
        with self._lock:
            ev = Event(kind, obj, name, event, detail, data, next(self._seq), time.time())
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
            loop.call_soon_threadsafe(self._deliver, ev)
        return ev

    def _deliver(self, ev: Event) -> None:
        for sub in list(self._subs):
            try:
                sub.queue.put_nowait(ev)
            except asyncio.QueueFull:  # a slow listener is dropped, never waited for
                sub.dropped = True
                self._subs.discard(sub)
                while not sub.queue.empty():
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)
