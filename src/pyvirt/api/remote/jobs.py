"""A daemon's jobs, seen from a client: list, show, wait for and cancel them.

>>> jobs = Jobs(client)
>>> [j.id for j in jobs.list()]
>>> jobs.wait(job_id, progress=lambda done, total: ...)   # raises the job's error

:func:`wait_for` is what the remote verbs that start jobs (``vol-clone``...) use: it reports
progress, cancels the job on Ctrl-C (``KeyboardInterrupt``) or when a
:class:`~pyvirt.progress.CancelToken` is set, and turns a failed job into its error.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from pyvirt.client.transport import API, Client
from pyvirt.errors import PyvirtError, error_class
from pyvirt.progress import CancelledError, CancelToken, Progress

__all__ = ["JobInfo", "Jobs", "wait_for"]

#: seconds between progress polls (the daemon answers at once when the job ends)
POLL = 0.25


@dataclass(frozen=True)
class JobInfo:
    """One job of the daemon (``GET /api/v1/jobs/{id}``)."""

    id: str
    kind: str
    object: str
    state: str
    done: int
    total: int
    unit: str
    rate: float
    started: float
    finished: float | None
    owner: str
    result: Any = None
    error: dict[str, Any] | None = None

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> JobInfo:
        """From the REST API's job object."""
        prog = doc.get("progress") or {}
        return cls(
            id=str(doc["id"]),
            kind=str(doc["kind"]),
            object=str(doc["object"]),
            state=str(doc["state"]),
            done=int(prog.get("done", 0)),
            total=int(prog.get("total", 0)),
            unit=str(prog.get("unit", "bytes")),
            rate=float(prog.get("rate", 0.0)),
            started=float(doc["started"]),
            finished=None if doc.get("finished") is None else float(doc["finished"]),
            owner=str(doc.get("owner", "")),
            result=doc.get("result"),
            error=doc.get("error"),
        )

    def to_json(self) -> dict[str, Any]:
        """The REST API's job object."""
        return {
            "id": self.id,
            "kind": self.kind,
            "object": self.object,
            "state": self.state,
            "progress": {
                "done": self.done,
                "total": self.total,
                "unit": self.unit,
                "rate": self.rate,
            },
            "started": self.started,
            "finished": self.finished,
            "owner": self.owner,
            "result": self.result,
            "error": self.error,
        }

    @property
    def running(self) -> bool:
        """Whether the job has not finished."""
        return self.state == "running"

    @property
    def elapsed(self) -> float:
        """Seconds the job ran (so far)."""
        return (self.finished if self.finished is not None else time.time()) - self.started

    def raise_for_state(self) -> None:
        """Raise the job's error when it failed or was cancelled.

        :raises CancelledError: it was cancelled
        :raises PyvirtError: its error, rebuilt as the matching class
        """
        if self.state == "cancelled":
            raise CancelledError(f"job '{self.id}' ({self.kind}) cancelled")
        if self.state == "failed":
            err = self.error or {}
            code = str(err.get("code", ""))
            cls = CancelledError if code == "cancelled" else error_class(code)
            raise cls(str(err.get("error", f"job '{self.id}' failed")), hint=err.get("hint"))


class Jobs:
    """``conn.jobs``: the jobs of the daemon behind ``client``."""

    def __init__(self, client: Client) -> None:
        self._client = client

    def list(self, *, all: bool = True) -> builtins.list[JobInfo]:
        """Running and recently finished jobs, oldest first (``all=False``: running only)."""
        docs = self._client.json("GET", f"{API}/jobs?all={'true' if all else 'false'}")
        return [JobInfo.from_json(d) for d in docs]

    def get(self, job_id: str, *, wait: float = 0.0) -> JobInfo:
        """One job (``wait``: up to that many seconds for it to finish first).

        :raises NotFoundError: no such job
        """
        path = f"{API}/jobs/{quote(job_id, safe='')}"
        return JobInfo.from_json(
            self._client.json("GET", f"{path}?wait={wait:g}" if wait else path)
        )

    def cancel(self, job_id: str) -> JobInfo:
        """Ask a running job to stop (it removes what it had half-made).

        :raises InvalidStateError: the job already finished
        """
        return JobInfo.from_json(
            self._client.json("DELETE", f"{API}/jobs/{quote(job_id, safe='')}")
        )

    def wait(
        self, job_id: str, *, progress: Progress | None = None, cancel: CancelToken | None = None
    ) -> JobInfo:
        """Wait for the job to complete (see :func:`wait_for`)."""
        return wait_for(self._client, self.get(job_id), progress=progress, cancel=cancel)


def wait_for(
    client: Client,
    job: JobInfo,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> JobInfo:
    """Wait until ``job`` ends, reporting progress; return it once completed.

    Ctrl-C (``KeyboardInterrupt``) or a set ``cancel`` token cancels the job; the wait goes on
    until it ended (so its half-made output is gone), then the interrupt is raised again.

    :raises CancelledError: the job was cancelled
    :raises PyvirtError: the job failed: its error
    """
    jobs = Jobs(client)
    info = job
    interrupted = False
    asked = False
    while info.running:
        try:
            if cancel is not None and cancel.cancelled and not asked:
                asked = True
                _cancel_quietly(jobs, info.id)
            info = jobs.get(info.id, wait=POLL if progress is not None else 5.0)
            if progress is not None and info.running:
                progress(info.done, info.total)
        except KeyboardInterrupt:
            client.close()  # the interrupted request leaves the connection unusable
            interrupted = True
            if not asked:
                asked = True
                _cancel_quietly(jobs, info.id)
    if progress is not None and info.state == "completed":
        progress(info.total or info.done, info.total or info.done)
    if interrupted:
        raise KeyboardInterrupt
    info.raise_for_state()
    return info


def _cancel_quietly(jobs: Jobs, job_id: str) -> None:
    with contextlib.suppress(PyvirtError):  # it finished meanwhile
        jobs.cancel(job_id)
