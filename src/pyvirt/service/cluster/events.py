"""Cluster-wide events: what happens on one host (its fencing, the leader's recoveries, an
evacuation's progress) shown on every member's event stream.

Each pyvirtd's :class:`EventRelay` writes its host's events under ``/pyvirt/events/HOST/``
(:func:`~pyvirt.service.cluster.keys.event`), bound to a lease of :data:`EVENT_TTL` seconds
(a fresh one every half TTL: an event stays between half a TTL and a TTL, then etcd deletes
it), and watches that prefix: one long poll over etcd's watch stream, no polling loop. The
events of the other hosts are handed to ``on_remote``; its own ones were published locally
already. A daemon that starts does not report the events already there (the cluster's past).

An event made while etcd cannot be reached (a partitioned host's ``Fenced``) waits in a
bounded queue and is written once etcd answers again: the others see it late, with its own
time.
"""

from __future__ import annotations

import collections
import itertools
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pyvirt.drivers.etcd import Etcd
from pyvirt.errors import PyvirtError
from pyvirt.service.cluster import keys

__all__ = ["EVENT_TTL", "ClusterEvent", "EventRelay"]

log = logging.getLogger(__name__)

#: seconds a relayed event stays in etcd at most (its lease's TTL)
EVENT_TTL = 30
#: events waiting for etcd, at most (the oldest go first when more come)
QUEUE = 256
#: seconds a watch waits for a change before it looks again
IDLE = 30.0
#: seconds between two attempts while etcd does not answer
RETRY = 1.0


@dataclass(frozen=True)
class ClusterEvent:
    """One relayed event: the host it happened on, and the daemon event's fields."""

    host: str
    object: str
    name: str
    event: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: float = 0.0

    def encode(self) -> str:
        return json.dumps(
            {"host": self.host, "object": self.object, "name": self.name, "event": self.event,
             "detail": self.detail, "data": self.data, "time": self.time},
            separators=(",", ":"), sort_keys=True,
        )  # fmt: skip

    @classmethod
    def decode(cls, value: str) -> ClusterEvent:
        d = json.loads(value)
        return cls(str(d["host"]), str(d["object"]), str(d["name"]), str(d["event"]),
                   str(d.get("detail", "")), dict(d.get("data") or {}),
                   float(d.get("time", 0.0)))  # fmt: skip


class EventRelay:
    """Relays this host's cluster events to the others and theirs to *on_remote*.

    :param writer: etcd for the writes (its own client: the watch blocks the other)
    :param watcher: etcd for the watch
    :param host: this host's name
    :param on_remote: called with each event of another host, from the watch's thread
    """

    def __init__(self, writer: Etcd, watcher: Etcd, host: str,
                 on_remote: Callable[[ClusterEvent], None]) -> None:  # fmt: skip
        self.writer = writer
        self.watcher = watcher
        self.host = host
        self.on_remote = on_remote
        self._queue: collections.deque[ClusterEvent] = collections.deque(maxlen=QUEUE)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lease = 0
        self._granted = 0.0
        self._seq = itertools.count()
        #: the event keys seen (None until the first read: those are the cluster's past)
        self._seen: set[str] | None = None
        #: events written and events handed on (tests and the status read them)
        self.written = 0
        self.received = 0

    def announce(self, obj: str, name: str, event: str, detail: str = "",
                 data: dict[str, Any] | None = None) -> None:  # fmt: skip
        """Queue an event of this host for the others; never blocks."""
        ev = ClusterEvent(self.host, obj, name, event, detail, dict(data or {}), time.time())
        self._queue.append(ev)
        self._wake.set()

    def start(self) -> None:
        """Start the writer's and the watcher's threads."""
        if self._threads:
            return
        self._stop.clear()
        self._threads = [
            threading.Thread(target=self._write_loop, name="cluster-events-out", daemon=True),
            threading.Thread(target=self._watch_loop, name="cluster-events-in", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        """Stop both threads (the watch is cut short); what is queued is written first, as
        far as etcd answers at once."""
        self._stop.set()
        self._wake.set()
        self.watcher.abort_watch()
        for t in self._threads:
            t.join(timeout=3)
        self._threads = []
        self.writer.close()
        self.watcher.close()

    # writing -------------------------------------------------------------------------------

    def flush(self) -> None:
        """Write the queued events (in order); etcd errors leave the rest queued."""
        while self._queue:
            ev = self._queue[0]
            now = time.monotonic()
            if not self._lease or now - self._granted > EVENT_TTL / 2:
                self._lease = self.writer.lease_grant(EVENT_TTL)
                self._granted = now
            seq = f"{int(ev.time * 1000):015d}-{next(self._seq):06d}"
            try:
                self.writer.put(keys.event(self.host, seq), ev.encode(), lease=self._lease)
            except PyvirtError:
                self._lease = 0  # expired meanwhile, perhaps: a new one next time
                raise
            self._queue.popleft()
            self.written += 1

    def _write_loop(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            try:
                self.flush()
            except PyvirtError as err:
                log.debug("cluster: events not written yet: %s", err.message)
                if self._stop.wait(RETRY):
                    return
                self._wake.set()
            except Exception:
                log.exception("cluster: writing events failed")
                self._stop.wait(RETRY)
                self._wake.set()
            if self._stop.is_set():
                return

    # watching ------------------------------------------------------------------------------

    def poll(self) -> int:
        """Read the events in etcd, hand on the new ones of other hosts (none at the first
        read); the revision they were read at."""
        entries, revision = self.watcher.get_prefix_at(keys.EVENTS)
        first = self._seen is None
        seen = self._seen or set()
        new = [e for e in entries if e.key not in seen]
        self._seen = {e.key for e in entries}
        if first:
            return revision
        for entry in sorted(new, key=lambda e: e.create_revision):
            try:
                ev = ClusterEvent.decode(entry.value)
            except (ValueError, KeyError, TypeError):
                continue
            if ev.host == self.host:
                continue
            self.received += 1
            self.on_remote(ev)
        return revision

    def _watch_loop(self) -> None:
        while not self._stop.is_set():
            try:
                revision = self.poll()
                if self._stop.is_set():
                    return
                self.watcher.watch(keys.EVENTS, revision + 1, idle=IDLE)
            except PyvirtError as err:
                log.debug("cluster: events not read: %s", err.message)
                self._stop.wait(RETRY)
            except Exception:
                log.exception("cluster: reading events failed")
                self._stop.wait(RETRY)
