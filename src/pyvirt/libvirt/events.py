"""libvirt-python's default event loop, fed by pyvirt's event stream.

A libvirt-python program calls :func:`virEventRegisterDefaultImpl` once, registers callbacks
(``conn.domainEventRegisterAny(...)``) and then runs :func:`virEventRunDefaultImpl` in a loop
(often in a thread of its own); every callback runs inside that call, as with libvirt.

The events come from :func:`pyvirt.api.events.watch` (pyvirtd's stream) on a thread per
connection, which only queues them for the loop. An embedded connection has no daemon to
watch its guests, so there :class:`Poller` compares the domains' states every
:data:`POLL_INTERVAL` seconds and makes the same events (a change and its undoing within one
interval go unseen). Timers (:func:`virEventAddTimeout`) and file handles
(:func:`virEventAddHandle`) work as in libvirt's default implementation.
"""

from __future__ import annotations

import contextlib
import functools
import os
import select
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pyvirt.api.event_values import Event
from pyvirt.libvirt import constants as c

__all__ = [
    "POLL_INTERVAL",
    "EventLoop",
    "Poller",
    "default_loop",
    "lifecycle_codes",
    "virEventAddHandle",
    "virEventAddTimeout",
    "virEventRegisterDefaultImpl",
    "virEventRemoveHandle",
    "virEventRemoveTimeout",
    "virEventRunDefaultImpl",
    "virEventUpdateHandle",
    "virEventUpdateTimeout",
]

#: seconds between two looks at the domains of an embedded connection
POLL_INTERVAL = 0.5


@dataclass
class _Timer:
    interval: int  # ms; -1 disabled, 0 every iteration
    callback: Callable[[int, Any], object]
    opaque: Any
    due: float = 0.0


@dataclass
class _Handle:
    fd: int
    events: int
    callback: Callable[[int, int, int, Any], object]
    opaque: Any


@dataclass
class EventLoop:
    """The loop :func:`virEventRunDefaultImpl` runs: queued calls, timers, file handles."""

    _lock: threading.Lock = field(default_factory=threading.Lock)
    _calls: list[Callable[[], object]] = field(default_factory=list)
    _timers: dict[int, _Timer] = field(default_factory=dict)
    _handles: dict[int, _Handle] = field(default_factory=dict)
    _next_id: int = 1
    _wake: tuple[int, int] = field(default_factory=os.pipe)

    def __post_init__(self) -> None:
        os.set_blocking(self._wake[0], False)
        os.set_blocking(self._wake[1], False)

    def post(self, call: Callable[[], object]) -> None:
        """Run ``call`` in the next iteration (safe from any thread)."""
        with self._lock:
            self._calls.append(call)
        self._wakeup()

    def _wakeup(self) -> None:
        """End a wait of :meth:`run_once` (a change from another thread)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake[1], b"x")

    def _new_id(self) -> int:
        with self._lock:
            self._next_id += 1
            return self._next_id - 1

    def add_timeout(
        self, interval: int, callback: Callable[[int, Any], object], opaque: Any
    ) -> int:
        """A timer firing every ``interval`` ms (``-1`` off, ``0`` each iteration)."""
        tid = self._new_id()
        self._timers[tid] = _Timer(interval, callback, opaque, time.monotonic() + interval / 1000)
        self._wakeup()
        return tid

    def update_timeout(self, timer: int, interval: int) -> None:
        """Change a timer's interval (from now)."""
        t = self._timers.get(timer)
        if t is not None:
            t.interval, t.due = interval, time.monotonic() + max(interval, 0) / 1000
            self._wakeup()

    def remove_timeout(self, timer: int) -> int:
        """Remove a timer: 0, or -1 when there is none such."""
        return 0 if self._timers.pop(timer, None) is not None else -1

    def add_handle(
        self, fd: int, events: int, callback: Callable[[int, int, int, Any], object], opaque: Any
    ) -> int:
        """Watch ``fd`` for ``VIR_EVENT_HANDLE_*`` ``events``."""
        hid = self._new_id()
        self._handles[hid] = _Handle(fd, events, callback, opaque)
        self._wakeup()
        return hid

    def update_handle(self, watch: int, events: int) -> None:
        """Change the events a handle watches for."""
        h = self._handles.get(watch)
        if h is not None:
            h.events = events

    def remove_handle(self, watch: int) -> int:
        """Stop watching a handle: 0, or -1 when there is none such."""
        return 0 if self._handles.pop(watch, None) is not None else -1

    def run_once(self) -> None:
        """Wait for something to do (a queued event, a timer, a handle), then do it."""
        now = time.monotonic()
        timers = [t for t in self._timers.values() if t.interval >= 0]
        timeout = min((max(t.due - now, 0.0) for t in timers), default=None)
        poll = select.poll()
        poll.register(self._wake[0], select.POLLIN)
        handles = list(self._handles.items())
        for _, h in handles:
            poll.register(h.fd, _to_poll(h.events))
        with self._lock:
            pending = bool(self._calls)
        ready = poll.poll(0 if pending else (None if timeout is None else timeout * 1000))
        with contextlib.suppress(BlockingIOError):
            while os.read(self._wake[0], 512):
                pass
        with self._lock:
            calls, self._calls = self._calls, []
        for call in calls:
            _guarded(call)
        now = time.monotonic()
        for tid, t in list(self._timers.items()):
            if t.interval >= 0 and t.due <= now and tid in self._timers:
                t.due = now + t.interval / 1000
                _guarded(functools.partial(t.callback, tid, t.opaque))
        got = dict(ready)
        for hid, h in handles:
            if h.fd in got and hid in self._handles:
                _guarded(functools.partial(h.callback, hid, h.fd, _from_poll(got[h.fd]), h.opaque))


def _guarded(call: Callable[[], object]) -> None:
    """Run a callback; its exception is printed and the loop goes on (as libvirt-python's)."""
    try:
        call()
    except Exception:
        traceback.print_exc()


def _to_poll(events: int) -> int:
    out = 0
    if events & c.VIR_EVENT_HANDLE_READABLE:
        out |= select.POLLIN
    if events & c.VIR_EVENT_HANDLE_WRITABLE:
        out |= select.POLLOUT
    return out


def _from_poll(revents: int) -> int:
    out = 0
    for bit, vir in (
        (select.POLLIN, c.VIR_EVENT_HANDLE_READABLE), (select.POLLOUT, c.VIR_EVENT_HANDLE_WRITABLE),
        (select.POLLERR, c.VIR_EVENT_HANDLE_ERROR), (select.POLLHUP, c.VIR_EVENT_HANDLE_HANGUP),
    ):  # fmt: skip
        if revents & bit:
            out |= vir
    return out


_default: list[EventLoop] = []
_default_lock = threading.Lock()


def default_loop() -> EventLoop:
    """The process's default loop (made on first use)."""
    with _default_lock:
        if not _default:
            _default.append(EventLoop())
        return _default[0]


def virEventRegisterDefaultImpl() -> int:
    """Set up the default event loop (before opening connections, as with libvirt)."""
    default_loop()
    return 0


def virEventRunDefaultImpl() -> int:
    """Run one iteration of the default loop: wait for events, timers or handles and
    dispatch them to their callbacks."""
    default_loop().run_once()
    return 0


def virEventAddTimeout(timeout: int, cb: Callable[[int, Any], object], opaque: Any) -> int:
    """Call ``cb(timer, opaque)`` every ``timeout`` ms from the loop; returns the timer."""
    return default_loop().add_timeout(timeout, cb, opaque)


def virEventUpdateTimeout(timer: int, timeout: int) -> None:
    """Change a timer's interval (``-1`` disables it)."""
    default_loop().update_timeout(timer, timeout)


def virEventRemoveTimeout(timer: int) -> int:
    """Remove a timer."""
    return default_loop().remove_timeout(timer)


def virEventAddHandle(
    fd: int, events: int, cb: Callable[[int, int, int, Any], object], opaque: Any
) -> int:
    """Call ``cb(watch, fd, events, opaque)`` from the loop when ``fd`` is ready."""
    return default_loop().add_handle(fd, events, cb, opaque)


def virEventUpdateHandle(watch: int, events: int) -> None:
    """Change the events a handle watches for."""
    default_loop().update_handle(watch, events)


def virEventRemoveHandle(watch: int) -> int:
    """Stop watching a handle."""
    return default_loop().remove_handle(watch)


# -- the sources ---------------------------------------------------------------------------------

#: (old state, new state) -> the lifecycle events libvirt sends for that change
_STOP_DETAIL = {
    "destroyed": "Destroyed", "shutdown": "Shutdown", "crashed": "Crashed", "saved": "Saved",
}  # fmt: skip


class Poller:
    """Lifecycle events of an embedded connection, made by comparing the domains' states
    every :data:`POLL_INTERVAL` seconds; iterate it, :meth:`close` it from any thread."""

    def __init__(self, list_domains: Callable[[], list[tuple[str, str, str, bool]]]) -> None:
        """:param list_domains: ``(name, state, reason, persistent)`` of every domain"""
        self._list = list_domains
        self._stop = threading.Event()
        self._seen = {row[0]: row for row in list_domains()}

    def close(self) -> None:
        """End the iteration (within one interval)."""
        self._stop.set()

    def __iter__(self) -> Iterator[Event]:
        while not self._stop.wait(POLL_INTERVAL):
            try:
                rows = {row[0]: row for row in self._list()}
            except Exception:
                continue
            for name in sorted(set(rows) | set(self._seen)):
                yield from self.changes(name, self._seen.get(name), rows.get(name))
            self._seen = rows

    @staticmethod
    def changes(
        name: str, old: tuple[str, str, str, bool] | None, new: tuple[str, str, str, bool] | None
    ) -> Iterator[Event]:
        """The events libvirt sends when domain ``name`` goes from ``old`` to ``new``
        (``(name, state, reason, persistent)``; None: not there)."""

        def ev(event: str, detail: str) -> Event:
            return Event("lifecycle", "domain", name, event, detail)

        was = old[1] if old else "shut off"
        now = new[1] if new else "shut off"
        if old is None and new is not None and new[3]:
            yield ev("Defined", "Added")
        if was == "shut off" and now in ("running", "paused"):
            how = {"restored": "Restored", "migrated": "Migrated"}.get(new[2] if new else "")
            yield ev("Started", how or "Booted")
            if now == "paused":
                yield ev("Suspended", "Paused")
        elif was == "running" and now == "paused":
            yield ev("Suspended", "Paused")
        elif was == "paused" and now == "running":
            yield ev("Resumed", "Unpaused")
        elif was in ("running", "paused") and now == "shut off":
            reason = new[2] if new else "destroyed"
            if reason == "shutdown":
                yield ev("Shutdown", "Finished")
            yield ev("Stopped", _STOP_DETAIL.get(reason, "Failed"))
        if old is not None and new is None and old[3]:
            yield ev("Undefined", "Removed")


def _norm(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


_SNAP = "fromsnapshot"
#: event word -> (virDomainEventType, {detail word: detail number})
_DOMAIN_EVENTS: dict[str, tuple[int, dict[str, int]]] = {
    "defined": (0, {"added": 0, "updated": 1, "renamed": 2, _SNAP: 3}),
    "undefined": (1, {"removed": 0, "renamed": 1}),
    "started": (2, {"booted": 0, "migrated": 1, "restored": 2, _SNAP: 3, "wakeup": 4}),
    "suspended": (3, {"paused": 0, "migrated": 1, "ioerror": 2, "watchdog": 3, "restored": 4,
                      _SNAP: 5, "apierror": 6, "postcopy": 7}),
    "resumed": (4, {"unpaused": 0, "migrated": 1, _SNAP: 2}),
    "stopped": (5, {"shutdown": 0, "destroyed": 1, "crashed": 2, "migrated": 3, "saved": 4,
                    "failed": 5, _SNAP: 6}),
    "shutdown": (6, {"finished": 0, "guest": 1, "host": 2}),
    "pmsuspended": (7, {"memory": 0, "disk": 1}),
    "crashed": (8, {"panicked": 0}),
}  # fmt: skip
_OTHER_EVENTS = {"defined": 0, "undefined": 1, "started": 2, "stopped": 3, "created": 4,
                 "deleted": 5}  # fmt: skip


def lifecycle_codes(ev: Event) -> tuple[int, int] | None:
    """libvirt's ``(event, detail)`` numbers of a lifecycle event (None: not one libvirt has)."""
    word = _norm(ev.event)
    if ev.object != "domain":
        code = _OTHER_EVENTS.get(word)
        return None if code is None else (code, 0)
    known = _DOMAIN_EVENTS.get(word)
    if known is None:
        return None
    detail = _norm(ev.detail)
    if detail.startswith("snapshot"):
        detail = _SNAP
    return known[0], known[1].get(detail, 0)
