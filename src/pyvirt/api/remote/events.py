"""The event stream of a remote connection: ``GET /api/v1/events`` read as it comes.

:func:`stream` is what a remote connection's ``events(...)`` returns (and
:func:`pyvirt.api.events.watch`). The stream is an iterator of
:class:`~pyvirt.api.event_values.Event` over its own HTTP connection; it ends at ``timeout`` or when
the daemon ends it (:attr:`EventStream.end_reason` says why), and is closed by ``close()`` or
a ``with`` block.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from pyvirt.api.event_values import Event
from pyvirt.client.events import EventSource
from pyvirt.client.transport import API, Client

if TYPE_CHECKING:
    from pyvirt.client.uri import Target

__all__ = ["EventStream", "events_path", "stream"]


def events_path(
    kinds: Iterable[str] | None = None,
    *,
    domain: str | None = None,
    network: str | None = None,
    pool: str | None = None,
    keepalive: float | None = None,
) -> str:
    """The request path of the event stream with these filters."""
    query: dict[str, str] = {}
    if kinds is not None:
        query["types"] = ",".join(kinds)
    for key, value in (("domain", domain), ("network", network), ("pool", pool)):
        if value:
            query[key] = value
    if keepalive is not None:
        query["keepalive"] = f"{keepalive:g}"
    return f"{API}/events" + (f"?{urlencode(query)}" if query else "")


class EventStream:
    """An open event stream: iterate it for :class:`Event` values."""

    def __init__(self, source: EventSource, timeout: float | None) -> None:
        self.source = source
        self.deadline = None if timeout is None else time.monotonic() + timeout
        #: why the stream ended: ``timeout``, ``closed``, or the daemon's reason
        #: (``closing: pyvirtd is stopping``, ``dropped: ...``); "" while it runs
        self.end_reason = ""
        self._iter: Iterator[Event] | None = None

    def __iter__(self) -> Iterator[Event]:
        if self._iter is None:
            self._iter = self._events()
        return self._iter

    def __next__(self) -> Event:
        return next(iter(self))

    def _events(self) -> Iterator[Event]:
        for message in self.source.messages(self.deadline):
            try:
                doc = json.loads(message.data)
            except ValueError:
                continue
            if isinstance(doc, dict):
                yield Event.from_json(doc)
        if self.deadline is not None and time.monotonic() >= self.deadline - 0.01:
            self.end_reason = "timeout"
        else:
            self.end_reason = self.source.last_comment or "closed"
        self.close()

    @property
    def timed_out(self) -> bool:
        """The stream ended because its timeout passed."""
        return self.end_reason == "timeout"

    def close(self) -> None:
        """Close the stream's connection."""
        self.source.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def stream(
    target: Target,
    *,
    kinds: Iterable[str] | None = None,
    domain: str | None = None,
    network: str | None = None,
    pool: str | None = None,
    timeout: float | None = None,
    client: Client | None = None,
) -> EventStream:
    """Open the event stream of the daemon at ``target``.

    :param client: the client to use (its connection is taken over by the stream; default:
        a new one for ``target``)
    :raises PyvirtError: the daemon refused the request (an unknown kind ...)
    :raises OperationFailedError: the daemon cannot be reached
    """
    source = EventSource(
        client or Client.for_target(target),
        events_path(kinds, domain=domain, network=network, pool=pool),
    )
    source.open()
    return EventStream(source, timeout)
