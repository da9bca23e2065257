"""Consoles in the browser: short-lived tickets and a WebSocket relay to a running domain's
VNC display or serial console.

- ``POST /api/v1/domains/{name}/console-tickets`` ``{"kind": "vnc"|"serial"}`` (an
  authenticated, state-changing request) → ``{"ticket", "expires", "url"}``: a ticket valid
  for :data:`TICKET_TTL` seconds, once, for that domain and kind only.
- ``GET /api/v1/domains/{name}/console/{kind}?ticket=T`` upgraded to a WebSocket (the
  listener's authentication applies first): binary frames carry the console's own bytes, RFB
  for ``vnc`` (what noVNC speaks), the serial line for ``serial`` (text frames are sent as
  UTF-8). A missing, reused, expired or other-domain ticket closes the socket with code 1008
  and the reason; a console that cannot be opened closes it with 1011 and the error.

The relay reaches QEMU only through :meth:`pyvirt.api.domains.Domain.open_console`: a socket
QEMU is handed over QMP (VNC) or its serial console's unix socket; no TCP port of QEMU is
ever involved. Ticket checks and the relay run in the event loop; opening the stream (QMP)
runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Request, WebSocket
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect, WebSocketState

from pyvirt.daemon.auth import identity_of
from pyvirt.daemon.context import daemon_of
from pyvirt.errors import OperationFailedError, PyvirtError

__all__ = ["TICKET_TTL", "TicketStore", "router"]

log = logging.getLogger("pyvirtd.consoles")

router = APIRouter(prefix="/api/v1/domains", tags=["consoles"])

#: seconds a console ticket stays valid
TICKET_TTL = 30.0
#: outstanding tickets at most (expired ones are dropped first)
MAX_TICKETS = 1000
#: bytes read from the console per frame
CHUNK = 64 * 1024
#: WebSocket close codes: policy violation (ticket), server error (console), normal
CLOSE_REFUSED, CLOSE_FAILED, CLOSE_NORMAL = 1008, 1011, 1000

Kind = Literal["vnc", "serial"]


@dataclass(frozen=True)
class Ticket:
    """What one ticket opens, until when (``time.monotonic()``), for whom."""

    domain: str
    kind: str
    deadline: float
    owner: str


class TicketStore:
    """Outstanding console tickets: random, single use, bound to a domain and a kind.

    Thread-safe: tickets are issued from the thread pool and taken in the event loop.
    """

    def __init__(self, ttl: float = TICKET_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._tickets: dict[str, Ticket] = {}

    def issue(self, domain: str, kind: str, owner: str) -> tuple[str, float]:
        """A new ticket for ``kind`` of ``domain`` and its lifetime in seconds.

        :raises OperationFailedError: too many outstanding tickets
        """
        now = self._clock()
        token = secrets.token_urlsafe(24)
        with self._lock:
            for key in [k for k, t in self._tickets.items() if t.deadline <= now]:
                del self._tickets[key]
            if len(self._tickets) >= MAX_TICKETS:
                raise OperationFailedError(
                    "too many console tickets outstanding",
                    hint=f"use the tickets issued (they expire after {self.ttl:g} s) and retry",
                )
            self._tickets[token] = Ticket(domain, kind, now + self.ttl, owner)
        return token, self.ttl

    def take(self, token: str, domain: str, kind: str) -> str | None:
        """Use ``token`` for ``kind`` of ``domain``: None if it may, else why not. A ticket
        is gone after its first use, whether that use was allowed or not."""
        with self._lock:
            ticket = self._tickets.pop(token, None)
        if ticket is None:
            return "console ticket unknown or already used"
        if ticket.deadline <= self._clock():
            return "console ticket expired"
        if (ticket.domain, ticket.kind) != (domain, kind):
            return "console ticket was issued for another console"
        return None


def tickets_of(conn: HTTPConnection) -> TicketStore:
    """The application's ticket store (made on first use)."""
    state = conn.app.state
    store = getattr(state, "console_tickets", None)
    if store is None:
        store = state.console_tickets = TicketStore()
    assert isinstance(store, TicketStore)
    return store


class TicketRequest(BaseModel):
    """Which console of the domain the ticket opens."""

    kind: Kind = Field(description="vnc (RFB for noVNC) or serial")


class TicketResponse(BaseModel):
    """A single-use console ticket."""

    ticket: str = Field(description="pass as ?ticket= on the WebSocket URL, once")
    expires: str = Field(description="when it expires (UTC, ISO 8601); at most 30 s ahead")
    url: str = Field(description="the WebSocket path with the ticket, on this listener")


@router.post(
    "/{name}/console-tickets",
    response_model=TicketResponse,
    status_code=201,
    responses={
        404: {"description": "no such domain"},
        409: {"description": "not running, or no such console"},
    },
)
def create_ticket(request: Request, name: str, body: TicketRequest) -> TicketResponse:
    """A ticket for one WebSocket to the running domain's ``vnc`` or ``serial`` console."""
    dom = daemon_of(request).conn.domains.get(name)
    dom.check_console(body.kind)
    token, ttl = tickets_of(request).issue(dom.name, body.kind, identity_of(request))
    expires = datetime.fromtimestamp(time.time() + ttl, UTC)
    return TicketResponse(
        ticket=token,
        expires=expires.isoformat(timespec="seconds").replace("+00:00", "Z"),
        url=f"/api/v1/domains/{dom.name}/console/{body.kind}?ticket={token}",
    )


@router.websocket("/{name}/console/{kind}")
async def console(ws: WebSocket, name: str, kind: str) -> None:
    """Relay the WebSocket to the domain's console (see the module's description)."""
    offered = ws.scope.get("subprotocols") or []
    await ws.accept(subprotocol="binary" if "binary" in offered else None)
    refused = tickets_of(ws).take(ws.query_params.get("ticket", ""), name, kind)
    if refused is not None:
        log.warning("console %s of '%s' refused for %s: %s", kind, name, identity_of(ws),
                    refused)  # fmt: skip
        await ws.close(CLOSE_REFUSED, refused)
        return
    dom = daemon_of(ws).conn.domains
    try:
        sock = await asyncio.to_thread(lambda: dom.get(name).open_console(kind))
    except PyvirtError as err:
        await ws.close(CLOSE_FAILED, _reason(err.message))
        return
    log.info("console %s of '%s' opened for %s", kind, name, identity_of(ws))
    try:
        reason = await _relay(ws, sock)
    finally:
        sock.close()
    if ws.client_state == WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await ws.close(CLOSE_NORMAL, reason)
    log.info("console %s of '%s' closed: %s", kind, name, reason)


async def _relay(ws: WebSocket, sock: socket.socket) -> str:
    """Copy both ways until either side ends; returns why it ended."""
    sock.setblocking(False)
    reader, writer = await asyncio.open_unix_connection(sock=sock)

    async def to_console() -> str:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                return "the browser closed the console"
            data = msg.get("bytes")
            if data is None:
                data = str(msg.get("text") or "").encode()
            writer.write(data)
            await writer.drain()

    async def to_browser() -> str:
        while True:
            data = await reader.read(CHUNK)
            if not data:
                return "the console closed"
            await ws.send_bytes(data)

    tasks = [asyncio.ensure_future(to_console()), asyncio.ensure_future(to_browser())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        first = done.pop()
        try:
            return first.result()
        except (OSError, WebSocketDisconnect, RuntimeError) as err:
            return f"relay ended: {err or type(err).__name__}"
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def _reason(text: str) -> str:
    """A close reason: at most 123 bytes of UTF-8 (the protocol's limit)."""
    data = text.encode()[:123]
    return data.decode(errors="ignore")
