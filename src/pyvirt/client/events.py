"""Reading a Server-Sent Events stream from pyvirtd (standard library only).

>>> src = EventSource(Client.for_target(resolve("pyvirt:///system")), "/api/v1/events")
>>> for message in src.messages(deadline=time.monotonic() + 60):
...     print(json.loads(message.data))

The response is read as it arrives (``read1`` on the chunked body), never as a whole. The
socket's timeout is the smaller of the time left and :attr:`EventSource.idle_timeout`: the
daemon sends a keep-alive comment every few seconds, so a stream silent for longer is dead.
Comment lines are kept in :attr:`EventSource.last_comment`: the daemon's last one says why it
ended the stream (``closing: pyvirtd is stopping``, ``dropped: ...``).
"""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyvirt.errors import OperationFailedError

if TYPE_CHECKING:
    from pyvirt.client.transport import Client

__all__ = ["EventSource", "Message", "parse_lines"]


@dataclass(frozen=True)
class Message:
    """One SSE message: its ``event`` name (``message`` by default), ``data`` and ``id``."""

    data: str
    event: str = "message"
    id: str = ""


def parse_lines(lines: list[str], comments: list[str]) -> Message | None:
    """The message of one block of lines (blank-line separated); comments are appended to
    ``comments``. ``None`` for a block without data (a comment, a ``retry:``)."""
    data: list[str] = []
    event, ident = "message", ""
    for line in lines:
        if line.startswith(":"):
            comments.append(line[1:].strip())
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            event = value
        elif field == "id":
            ident = value
    if not data:
        return None
    return Message("\n".join(data), event, ident)


class EventSource:
    """One event stream over a :class:`~pyvirt.client.transport.Client`'s connection (the
    client is used for this stream only; :meth:`close` closes it)."""

    def __init__(self, client: Client, path: str, *, idle_timeout: float = 60.0) -> None:
        self.client = client
        self.path = path
        self.idle_timeout = idle_timeout
        #: the daemon's last comment (why it ended the stream), "" if none
        self.last_comment = ""
        self._resp: http.client.HTTPResponse | None = None
        self._sock: socket.socket | None = None
        self._buf = b""

    def open(self) -> None:
        """Send the request and check the answer.

        :raises PyvirtError: the daemon refused (bad filter, unauthorized ...)
        :raises OperationFailedError: the daemon cannot be reached
        """
        conn = self.client.connection
        headers = {**self.client.headers, "Accept": "text/event-stream"}
        try:
            conn.request("GET", self.path, headers=headers)
            self._sock = conn.sock
            resp = conn.getresponse()
        except (http.client.HTTPException, OSError) as err:
            conn.close()
            raise OperationFailedError(
                f"lost the connection to pyvirtd ({self.client.target.uri}): {err}",
                hint="check that pyvirtd is running ('pyvirt uri' names the connection)",
            ) from None
        if resp.status >= 400:
            from pyvirt.client.transport import Response  # lazy: a cycle otherwise

            body = resp.read()
            conn.close()
            raise self.client.error_of(
                Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, body)
            )
        self._resp = resp

    def messages(self, deadline: float | None = None) -> Iterator[Message]:
        """The messages as they come, until the stream ends or ``deadline``
        (``time.monotonic()``) passes.

        :raises OperationFailedError: the stream went silent for :attr:`idle_timeout`
        """
        if self._resp is None:
            self.open()
        comments: list[str] = []
        lines: list[str] = []
        for line in self._lines(deadline):
            if line:
                lines.append(line)
                continue
            message = parse_lines(lines, comments)
            lines = []
            if comments:
                self.last_comment = comments[-1]
                comments.clear()
            if message is not None:
                yield message

    def _lines(self, deadline: float | None) -> Iterator[str]:
        assert self._resp is not None
        while True:
            while b"\n" in self._buf:
                raw, _, self._buf = self._buf.partition(b"\n")
                yield raw.rstrip(b"\r").decode(errors="replace")
            wait = self.idle_timeout
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                wait = min(wait, left)
            if self._sock is not None:
                self._sock.settimeout(wait)
            try:
                data = self._resp.read1(65536)
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline - 0.01:
                    return
                raise OperationFailedError(
                    f"the event stream of pyvirtd ({self.client.target.uri}) went silent for "
                    f"{self.idle_timeout:g} s",
                    hint="check that pyvirtd is running",
                ) from None
            except (http.client.HTTPException, OSError):
                return
            if not data:
                return
            self._buf += data

    def close(self) -> None:
        """End the stream (closes the connection)."""
        if self._resp is not None:
            self._resp.close()
            self._resp = None
        self.client.close()
