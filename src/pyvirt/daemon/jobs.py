"""The daemon's job registry: long operations (volume clones, uploads, downloads, wipes, domain
clones) running in worker threads, watched and cancelled over the REST API.

A job has an id, a ``kind`` (``vol-clone``, ``vol-upload``, ``vol-download``, ``vol-wipe``,
``domain-clone`` ...), the ``object`` it works on (``volume/POOL/VOL`` or ``domain/NAME``), a
``state`` (``running``, then ``completed``, ``failed`` or ``cancelled``), ``progress`` (done and
total in ``bytes`` or ``percent``, and the rate per second), start and finish times, the
``owner`` who asked, and its ``result`` or ``error`` (the REST API's error shape).

The work function receives the :class:`Job`; it hands ``job.report`` and ``job.token`` down
to the API (``progress=`` and ``cancel=``), which checks the token between chunks and removes
what it had half-made before raising :class:`~pyvirt.progress.CancelledError`. Finished jobs
are kept for :attr:`JobRegistry.keep_seconds` (at most :attr:`JobRegistry.keep` of them).
Every state change is published on the event bus as a ``job`` event; progress at most
:data:`EVENTS_PER_SECOND` times a second per job.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pyvirt.errors import InvalidStateError, NotFoundError, PyvirtError
from pyvirt.progress import CancelledError, CancelToken

if TYPE_CHECKING:
    from pyvirt.daemon.context import Daemon

__all__ = ["EVENTS_PER_SECOND", "Job", "JobRegistry", "JobState", "Publish", "registry_of"]

log = logging.getLogger("pyvirtd.jobs")

JobState = Literal["running", "completed", "failed", "cancelled"]
#: the bus's ``publish(kind, obj, name, event, detail="", **data)``
Publish = Callable[..., Any]
#: progress events per job and second, at most
EVENTS_PER_SECOND = 4.0
#: the rate is measured over about this many seconds
RATE_WINDOW = 2.0


@dataclass
class Job:
    """One long operation and what is known of it now."""

    id: str
    kind: str
    object: str
    owner: str
    unit: str = "bytes"
    state: JobState = "running"
    done: int = 0
    total: int = 0
    rate: float = 0.0
    started: float = field(default_factory=time.time)
    finished: float | None = None
    result: Any = None
    error: dict[str, Any] | None = None
    #: bytes per second the work may go at, at most (None: as fast as it can)
    bandwidth: int | None = None
    token: CancelToken = field(default_factory=CancelToken, repr=False)
    _registry: JobRegistry | None = field(default=None, repr=False)
    _t0: float = field(default_factory=time.monotonic, repr=False)
    _samples: list[tuple[float, int]] = field(default_factory=list, repr=False)
    _last_event: float = field(default=0.0, repr=False)

    @property
    def running(self) -> bool:
        """Whether the job has not finished yet."""
        return self.state == "running"

    def report(self, done: int, total: int) -> None:
        """The work's progress callback: ``done`` of ``total`` units (``total`` 0: unknown).

        Slows the work down to :attr:`bandwidth` and raises
        :class:`~pyvirt.progress.CancelledError` once the job was cancelled.
        """
        now = time.monotonic()
        self.done, self.total = done, max(total, 0)
        samples = self._samples
        samples.append((now, done))
        while len(samples) > 2 and now - samples[1][0] >= RATE_WINDOW:
            samples.pop(0)
        t0, d0 = samples[0]
        self.rate = (done - d0) / (now - t0) if now - t0 > 0.05 else self.rate
        if self.bandwidth:
            ahead = done / self.bandwidth - (now - self._t0)
            if ahead > 0 and self.token.wait(ahead):
                self.token.check()
        if self._registry is not None and now - self._last_event >= 1.0 / EVENTS_PER_SECOND:
            self._last_event = now
            self._registry.emit(self, "progress")
        self.token.check()

    def to_json(self) -> dict[str, Any]:
        """The job as the REST API shows it."""
        return {
            "id": self.id,
            "kind": self.kind,
            "object": self.object,
            "state": self.state,
            "progress": {
                "done": self.done,
                "total": self.total,
                "unit": self.unit,
                "rate": round(self.rate, 1),
            },
            "started": self.started,
            "finished": self.finished,
            "owner": self.owner,
            "result": self.result,
            "error": self.error,
        }


class JobRegistry:
    """The daemon's jobs: starts them in threads, lists, finds and cancels them."""

    def __init__(
        self, publish: Publish | None = None, *, keep: int = 200, keep_seconds: float = 3600.0
    ) -> None:
        self._publish = publish
        self._jobs: dict[str, Job] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        #: finished jobs kept, at most
        self.keep = keep
        #: seconds a finished job is kept
        self.keep_seconds = keep_seconds

    # -- starting --------------------------------------------------------------------------
    def start(
        self,
        kind: str,
        obj: str,
        work: Callable[[Job], Any],
        *,
        owner: str = "local",
        unit: str = "bytes",
        total: int = 0,
        bandwidth: int | None = None,
    ) -> Job:
        """Run ``work(job)`` in a new thread as a job; its return value is the result."""
        job = Job(
            self._new_id(), kind, obj, owner, unit=unit, total=total, bandwidth=bandwidth or None
        )
        job._registry = self
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"job-{job.id}", daemon=True
        )
        with self._lock:
            self._prune()
            self._jobs[job.id] = job
            self._threads[job.id] = thread
        self.emit(job, "started")
        thread.start()
        return job

    def _new_id(self) -> str:
        while True:
            jid = secrets.token_hex(4)
            if jid not in self._jobs:
                return jid

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        state: JobState = "completed"
        result: Any = None
        try:
            result = work(job)
        except CancelledError:
            state = "cancelled"
        except Exception as err:
            if job.token.cancelled:  # e.g. the reader of a download went away: still a cancel
                state = "cancelled"
            elif isinstance(err, PyvirtError):
                state = "failed"
                job.error = {"error": err.message, "hint": err.hint, "code": err.code}
            else:
                log.exception("job %s (%s) failed", job.id, job.kind)
                state = "failed"
                job.error = {
                    "error": f"internal error: {type(err).__name__}: {err}",
                    "hint": "this is a bug in pyvirtd; the daemon log has the traceback",
                    "code": "internal",
                }
        with self._changed:
            job.state, job.result, job.finished = state, result, time.time()
            if state == "completed" and job.total:
                job.done = job.total
            spent = job.finished - job.started
            job.rate = job.done / spent if spent > 0 else job.rate  # the average, once done
            self._threads.pop(job.id, None)
            self._prune()
            self._changed.notify_all()
        self.emit(job, state)

    # -- events ----------------------------------------------------------------------------
    def emit(self, job: Job, event: str) -> None:
        """Publish a ``job`` event (``started``, ``progress``, ``completed``, ``failed``,
        ``cancelled``); its data is ``{"job": JOB}``."""
        if self._publish is None:
            return
        try:
            detail = job.kind if event != "failed" else str((job.error or {}).get("error", ""))
            self._publish("job", "job", job.id, event, detail, job=job.to_json())
        except Exception:  # an event must never break the job
            log.exception("cannot publish job event")

    # -- queries ---------------------------------------------------------------------------
    def list(self, *, all: bool = True) -> list[Job]:
        """The jobs, oldest first: running ones, and finished ones too with ``all``."""
        with self._lock:
            self._prune()
            jobs = list(self._jobs.values())
        return [j for j in jobs if all or j.running]

    def get(self, job_id: str) -> Job:
        """The job ``job_id``.

        :raises NotFoundError: no such job (or it finished long ago)
        """
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFoundError(
                f"no job with id '{job_id}'", hint="'pyvirt job-list --all' lists the jobs"
            )
        return job

    def running_on(self, obj: str) -> Job | None:
        """The running job working on ``obj`` (``domain/NAME``...), if any."""
        with self._lock:
            for job in reversed(self._jobs.values()):
                if job.object == obj and job.running:
                    return job
        return None

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """The job once it finished, or as it is after ``timeout`` seconds."""
        job = self.get(job_id)
        with self._changed:
            self._changed.wait_for(lambda: not job.running, timeout)
        return job

    # -- cancelling ------------------------------------------------------------------------
    def cancel(self, job_id: str) -> Job:
        """Ask the job to stop; it removes what it had half-made and ends ``cancelled``.

        :raises NotFoundError: no such job
        :raises InvalidStateError: the job already finished
        """
        job = self.get(job_id)
        if not job.running:
            raise InvalidStateError(
                f"job '{job_id}' already {job.state}", hint="only running jobs can be cancelled"
            )
        job.token.cancel()
        return job

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel every running job and wait up to ``timeout`` seconds for them to clean up."""
        with self._lock:
            threads = list(self._threads.items())
        for jid, _ in threads:
            self._jobs[jid].token.cancel()
        deadline = time.monotonic() + timeout
        for _, thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _prune(self) -> None:
        """Forget finished jobs past their time or beyond :attr:`keep` (lock held)."""
        now = time.time()
        done = [j for j in self._jobs.values() if not j.running]
        drop = {
            j.id for j in done if j.finished is not None and now - j.finished > self.keep_seconds
        }
        excess = len(done) - len(drop) - self.keep
        if excess > 0:
            drop.update(j.id for j in [j for j in done if j.id not in drop][:excess])
        for jid in drop:
            del self._jobs[jid]


def registry_of(daemon: Daemon) -> JobRegistry:
    """The job registry of ``daemon`` (events go to its bus)."""
    return daemon.jobs
