"""The event callbacks of a connection (:class:`ConnectEvents`, a part of
:class:`~pyvirt.libvirt.connect.virConnect`): ``domainEventRegisterAny`` and its kin.

The first callback opens the connection's event source (pyvirtd's stream, or the
:class:`~pyvirt.libvirt.events.Poller` of an embedded connection) on a thread that queues each
event for the default loop; :func:`~pyvirt.libvirt.events.virEventRunDefaultImpl` then calls
the callbacks the event concerns. The last deregistration closes the source.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import pyvirt.api
from pyvirt.api.event_values import Event
from pyvirt.errors import NotFoundError, UnsupportedError
from pyvirt.libvirt import constants as c
from pyvirt.libvirt.domain import virDomain
from pyvirt.libvirt.errors import error, translated
from pyvirt.libvirt.events import Poller, default_loop, lifecycle_codes
from pyvirt.libvirt.network import virNetwork
from pyvirt.libvirt.storage import virStoragePool

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.libvirt.connect import virConnect

__all__ = ["ConnectEvents"]


@dataclass
class _Callback:
    kind: str  # "domain", "network", "pool"
    name: str | None  # only events of this object
    event_id: int
    fn: Callable[..., object]
    opaque: Any


class _Feed:
    """The events of one connection, read on a thread and queued for the default loop."""

    def __init__(self, conn: ConnectEvents) -> None:
        import pyvirt.api.events as api_events  # lazy: the HTTP client

        self._conn = conn
        self.source: Iterable[Event]
        try:
            self.source = api_events.watch(conn._api_uri)
        except UnsupportedError:
            polled = pyvirt.api.open(conn._api_uri)  # its own connection: another thread

            def rows() -> list[tuple[str, str, str, bool]]:
                return [(s.name, str(s.state), str(s.reason), s.persistent)
                        for s in polled.domains.list(with_uuids=False)]  # fmt: skip

            self.source = Poller(rows)
        self._thread = threading.Thread(target=self._run, name="pyvirt-libvirt-events", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        loop = default_loop()
        try:
            for ev in self.source:
                loop.post(functools.partial(self._conn._dispatch, ev))
        except Exception:  # the stream ended: closed, or the daemon went away
            pass

    def close(self) -> None:
        """Stop reading."""
        close = getattr(self.source, "close", None)
        if close is not None:
            close()


class ConnectEvents:
    """The event calls of :class:`~pyvirt.libvirt.connect.virConnect`."""

    _api: Connection
    _api_uri: str | None

    def _init_events(self) -> None:
        self._callbacks: dict[int, _Callback] = {}
        self._next_callback = 0
        self._feed: _Feed | None = None
        self._lock = threading.Lock()

    def _close_events(self) -> None:
        if self._feed is not None:
            self._feed.close()
            self._feed = None
        self._callbacks.clear()

    @property
    def _conn(self) -> virConnect:
        return cast("virConnect", self)

    # -- events -----------------------------------------------------------------------------
    def _register(self, cb: _Callback) -> int:
        with self._lock:
            if self._feed is None:
                with translated("connect"):
                    self._feed = _Feed(self)
            self._next_callback += 1
            self._callbacks[self._next_callback] = cb
            return self._next_callback

    def _deregister(self, callback_id: int) -> int:
        with self._lock:
            if self._callbacks.pop(callback_id, None) is None:
                raise error(
                    c.VIR_ERR_INVALID_ARG, f"no event callback with id {callback_id}", "connect"
                )
            if not self._callbacks and self._feed is not None:
                self._feed.close()
                self._feed = None
        return 0

    def domainEventRegisterAny(
        self,
        dom: virDomain | None,
        eventID: int,
        cb: Callable[..., object],
        opaque: Any,
    ) -> int:
        """Call ``cb`` for the events ``eventID`` of ``dom`` (None: every domain) from the
        default event loop; returns the callback's id. ``LIFECYCLE`` callbacks get
        ``(conn, dom, event, detail, opaque)``, ``DEVICE_ADDED``/``DEVICE_REMOVED`` ones
        ``(conn, dom, alias, opaque)``; other event ids are accepted and never called."""
        return self._register(
            _Callback("domain", dom.name() if dom is not None else None, eventID, cb, opaque)
        )

    def domainEventDeregisterAny(self, callbackID: int) -> int:
        """Stop calling a callback."""
        return self._deregister(callbackID)

    def domainEventRegister(self, cb: Callable[..., object], opaque: Any) -> int:
        """The old form of a ``LIFECYCLE`` callback for every domain."""
        self._register(_Callback("domain", None, c.VIR_DOMAIN_EVENT_ID_LIFECYCLE, cb, opaque))
        return 0

    def domainEventDeregister(self, cb: Callable[..., object]) -> int:
        """Stop calling a callback of :meth:`domainEventRegister`."""
        for cid, known in list(self._callbacks.items()):
            if known.fn is cb:
                self._deregister(cid)
        return 0

    def networkEventRegisterAny(
        self,
        net: virNetwork | None,
        eventID: int,
        cb: Callable[..., object],
        opaque: Any,
    ) -> int:
        """Call ``cb(conn, net, event, detail, opaque)`` for network lifecycle events."""
        return self._register(
            _Callback("network", net.name() if net is not None else None, eventID, cb, opaque)
        )

    def networkEventDeregisterAny(self, callbackID: int) -> int:
        """Stop calling a callback."""
        return self._deregister(callbackID)

    def storagePoolEventRegisterAny(
        self,
        pool: virStoragePool | None,
        eventID: int,
        cb: Callable[..., object],
        opaque: Any,
    ) -> int:
        """Call ``cb(conn, pool, event, detail, opaque)`` for pool lifecycle events."""
        return self._register(
            _Callback("pool", pool.name() if pool is not None else None, eventID, cb, opaque)
        )

    def storagePoolEventDeregisterAny(self, callbackID: int) -> int:
        """Stop calling a callback."""
        return self._deregister(callbackID)

    def _dispatch(self, ev: Event) -> None:
        """Call the callbacks ``ev`` concerns (in the loop's thread)."""
        for cb in list(self._callbacks.values()):
            if cb.kind != ev.object or (cb.name is not None and cb.name != ev.name):
                continue
            if ev.object == "domain":
                self._dispatch_domain(cb, ev)
            elif cb.event_id == 0 and ev.kind in ("network-lifecycle", "pool-lifecycle"):
                codes = lifecycle_codes(ev)
                if codes is None:
                    continue
                obj: virNetwork | virStoragePool
                try:
                    if ev.object == "network":
                        obj = virNetwork(self._conn, self._api.networks.get(ev.name))
                    else:
                        obj = virStoragePool(self._conn, self._api.pools.get(ev.name))
                except NotFoundError:  # undefined meanwhile: no handle to pass
                    continue
                cb.fn(self._conn, obj, codes[0], codes[1], cb.opaque)

    def _dispatch_domain(self, cb: _Callback, ev: Event) -> None:
        dom = virDomain(self._conn, ev.name)
        if ev.kind == "lifecycle" and cb.event_id == c.VIR_DOMAIN_EVENT_ID_LIFECYCLE:
            codes = lifecycle_codes(ev)
            if codes is not None:
                cb.fn(self._conn, dom, codes[0], codes[1], cb.opaque)
        elif (ev.kind, cb.event_id) in (
            ("device-added", c.VIR_DOMAIN_EVENT_ID_DEVICE_ADDED),
            ("device-removed", c.VIR_DOMAIN_EVENT_ID_DEVICE_REMOVED),
        ):
            cb.fn(self._conn, dom, ev.event, cb.opaque)
