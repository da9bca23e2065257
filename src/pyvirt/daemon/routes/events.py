"""``GET /api/v1/events``: the event stream, as Server-Sent Events.

Each event is one ``data:`` line holding :meth:`pyvirt.api.event_values.Event.to_json` followed by a
blank line; a comment line (``: keep-alive``) comes every ``keepalive`` seconds when nothing
happens, so clients and proxies can tell a quiet stream from a dead one. The stream ends:

- when the client goes away (``http.disconnect``);
- when the daemon stops (:meth:`~pyvirt.daemon.bus.EventBus.close`): a last comment
  ``: closing: pyvirtd is stopping`` and the end of the response;
- when the client falls behind by a whole queue: the bus drops it, a last comment
  ``: dropped: ...`` is sent if the client still reads at all, and a send stuck on a client
  that stopped reading is cancelled after :data:`END_GRACE` seconds (the connection is
  closed), so a stuck client never holds the daemon or its shutdown.

Queued events are sent in batches (one write for up to :data:`BATCH` events) so a busy daemon
does not pay one system call per event per listener.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from pyvirt.api.event_values import KINDS, check_kinds
from pyvirt.daemon.bus import EventBus, EventFilter, Subscription
from pyvirt.daemon.context import Daemon, daemon_of

__all__ = ["BATCH", "END_GRACE", "EventStreamResponse", "router", "setup"]

log = logging.getLogger("pyvirtd.events")

router = APIRouter(tags=["events"])

#: seconds a stream that ended may take to send its last comment before it is cut
END_GRACE = 2.0
#: most events sent in one write
BATCH = 64


class _QuietCut(logging.Filter):
    """uvicorn logs an error for a response its application abandons; a stream cut off on
    purpose (a listener that stopped reading) is not one, and was logged as a warning."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if self.pending and record.getMessage().startswith(
            "ASGI callable returned without completing response"
        ):
            self.pending -= 1
            return False
        return True


_QUIET = _QuietCut()


def setup(daemon: Daemon) -> None:
    """Keep the cut-off streams out of the error log."""
    logging.getLogger("uvicorn.error").addFilter(_QUIET)


def _data(payload: Any) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _chunk(body: bytes, more: bool = True) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": more}


class EventStreamResponse(Response):
    """A ``text/event-stream`` response fed by one bus subscription."""

    media_type = "text/event-stream"

    def __init__(self, bus: EventBus, filt: EventFilter, keepalive: float) -> None:
        super().__init__(
            status_code=200,
            media_type=self.media_type,
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
        # a stream has no length: chunked transfer encoding
        self.raw_headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        self.bus = bus
        self.filt = filt
        self.keepalive = keepalive

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sub = self.bus.subscribe(self.filt)
        loop = asyncio.get_running_loop()
        tasks: list[asyncio.Future[None]] = []
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            await send(_chunk(b": pyvirtd events\n\n"))
            pump = asyncio.ensure_future(self._pump(sub, send))
            gone = asyncio.ensure_future(self._gone(receive))
            tasks += [pump, gone]
            cut: list[bool] = []

            def fire() -> None:
                if not pump.done():
                    cut.append(True)
                    pump.cancel()

            def ended() -> None:
                # a pump stuck in send() on a client that stopped reading is cut after a grace
                loop.call_later(END_GRACE, fire)

            sub.on_end(ended)
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
            pump.cancel()
            gone.cancel()
            for result in await asyncio.gather(pump, gone, return_exceptions=True):
                if isinstance(result, Exception):
                    log.warning("event stream ended with %s: %s", type(result).__name__, result)
            if cut:
                log.warning("event stream cut off: its client stopped reading")
                _QUIET.pending += 1
        finally:
            for task in tasks:  # cancelled itself (the server is stopping): leave no orphan
                task.cancel()
            sub.close()

    async def _pump(self, sub: Subscription, send: Send) -> None:
        while True:
            try:
                ev = await sub.get(timeout=self.keepalive)
            except TimeoutError:
                await send(_chunk(b": keep-alive\n\n"))
                continue
            if ev is None:
                break
            out = [_data(ev.to_json())]
            while sub.pending() and len(out) < BATCH:
                nxt = await sub.get()
                if nxt is None:
                    break
                out.append(_data(nxt.to_json()))
            await send(_chunk(b"".join(out)))
        if sub.dropped:
            reason = b": dropped: this listener fell behind and was disconnected\n\n"
        else:
            reason = b": closing: pyvirtd is stopping\n\n"
        await send(_chunk(reason, more=False))

    @staticmethod
    async def _gone(receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return


_EXAMPLE = 'data: {"seq":7,"kind":"lifecycle","object":"domain","name":"web1","event":"Started"...}'


@router.get(
    "/api/v1/events",
    response_class=EventStreamResponse,
    status_code=200,
    responses={
        200: {
            "description": "Server-Sent Events: one `data:` line per event (JSON), keep-alive "
            "comments while quiet",
            "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}},
        }
    },
)
async def events(
    request: Request,
    types: Annotated[
        str | None, Query(description=f"comma-separated kinds: {', '.join(KINDS)}")
    ] = None,
    domain: Annotated[str | None, Query(description="only this domain's events")] = None,
    network: Annotated[str | None, Query(description="only this network's events")] = None,
    pool: Annotated[str | None, Query(description="only this pool's events")] = None,
    keepalive: Annotated[
        float, Query(ge=0.2, le=300, description="seconds between keep-alive comments")
    ] = 15.0,
) -> EventStreamResponse:
    """The event stream (lifecycle, device, job, network and pool events) as Server-Sent
    Events; ends when the client leaves, falls behind, or the daemon stops."""
    kinds = None
    if types is not None:
        kinds = check_kinds(t.strip() for t in types.split(",") if t.strip())
    filt = EventFilter.of(kinds, domain=domain, network=network, pool=pool)
    return EventStreamResponse(daemon_of(request).bus, filt, keepalive)
