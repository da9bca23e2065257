"""A tiny synchronous QMP client for the benchmarks' baselines: one unix socket, JSON lines,
no asyncio, nothing of pyvirt. Events that arrive while waiting for a reply are kept, with
the host's ``time.monotonic()`` of their arrival, in :attr:`RawQmp.events`.

As a script (``python3 -I -S bench/_qmp.py SOCKET NODE save|load|delete TAG``) it runs one
internal snapshot command the way bench/snapshot.py's ``raw`` column does, in a process of its
own: the least that issuing the QMP commands from a shell costs (no typing at run time)."""

from __future__ import annotations

import json
import socket
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class RawQmp:
    """A QMP session (handshake done in the constructor)."""

    def __init__(self, path: str, timeout: float = 600.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events: list[tuple[float, dict[str, Any]]] = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("QMP socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        msg: dict[str, Any] = json.loads(line)
        return msg

    def _next(self) -> dict[str, Any]:
        """The next message that is not an event (events are kept)."""
        while True:
            msg = self._read()
            if "event" in msg:
                self.events.append((time.monotonic(), msg))
                continue
            return msg

    def cmd(self, name: str, **args: Any) -> Any:
        """Run a command; raise on an error reply."""
        msg: dict[str, Any] = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        reply = self._next()
        if "error" in reply:
            raise RuntimeError(f"{name}: {reply['error']}")
        return reply.get("return")

    def wait_event(self, name: str, **match: Any) -> dict[str, Any]:
        """Wait for event *name* whose data has *match* (also among those already kept)."""
        seen = 0
        while True:
            for _, ev in self.events[seen:]:
                data = ev.get("data", {})
                if ev["event"] == name and all(data.get(k) == v for k, v in match.items()):
                    self.events.remove((_, ev))
                    return ev
            seen = len(self.events)
            msg = self._read()
            if "event" in msg:
                self.events.append((time.monotonic(), msg))

    def job(self, cmd: str, job_id: str, **args: Any) -> None:
        """Run a job command to its end and dismiss it (what ``pyvirt`` does too)."""
        self.cmd(cmd, **{"job-id": job_id, **args})
        self.wait_event("JOB_STATUS_CHANGE", id=job_id, status="concluded")
        errors = [j.get("error") for j in self.cmd("query-jobs") if j.get("id") == job_id]
        self.cmd("job-dismiss", id=job_id)
        if errors and errors[0]:
            raise RuntimeError(f"{cmd}: {errors[0]}")

    def close(self) -> None:
        """Close the socket."""
        self.sock.close()

    def __enter__(self) -> RawQmp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str]) -> None:
    """``SOCKET NODE save|load|delete TAG``: one internal snapshot command (load: between
    ``stop`` and ``cont``)."""
    sock, node, verb, tag = argv
    with RawQmp(sock) as q:
        if verb == "load":
            q.cmd("stop")
        devices = {"devices": [node]} if verb == "delete" else {"vmstate": node, "devices": [node]}
        q.job(f"snapshot-{verb}", f"bench-{tag}", tag=tag, **devices)
        if verb == "load":
            q.cmd("cont")


if __name__ == "__main__":
    main(sys.argv[1:])
