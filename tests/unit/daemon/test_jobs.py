"""The daemon's job registry: progress, events, cancellation, errors and bounded history."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from pyvirt.daemon.jobs import Job, JobRegistry
from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError
from pyvirt.progress import CancelToken


class Events:
    """A stand-in for the bus's publish: records (event, job state, done)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def __call__(self, kind: str, obj: str, name: str, event: str, detail: str = "",
                 **data: Any) -> None:  # fmt: skip
        assert (kind, obj) == ("job", "job")
        with self.lock:
            self.seen.append((name, event, data["job"]))

    def events(self, job_id: str) -> list[str]:
        return [e for n, e, _ in self.seen if n == job_id]


def _copy(chunks: int, size: int = 1 << 20, pause: float = 0.0) -> Any:
    """Work that reports ``chunks`` steps of ``size`` bytes, checking the cancel token."""

    def work(job: Job) -> Any:
        for i in range(1, chunks + 1):
            time.sleep(pause)
            job.report(i * size, chunks * size)
        return {"bytes": chunks * size}

    return work


def test_a_job_completes_with_progress_and_result() -> None:
    ev = Events()
    reg = JobRegistry(ev)
    job = reg.start("vol-clone", "volume/p/v", _copy(8, pause=0.01), owner="alice", total=8 << 20)
    assert job.running and job.to_json()["state"] == "running"
    done = reg.wait(job.id, 10)
    doc = done.to_json()
    assert doc["state"] == "completed"
    assert doc["result"] == {"bytes": 8 << 20}
    assert doc["progress"]["done"] == doc["progress"]["total"] == 8 << 20
    assert doc["progress"]["unit"] == "bytes" and doc["progress"]["rate"] > 0
    assert doc["owner"] == "alice" and doc["finished"] >= doc["started"]
    names = ev.events(job.id)
    assert names[0] == "started" and names[-1] == "completed"


def test_progress_events_are_throttled() -> None:
    ev = Events()
    reg = JobRegistry(ev)
    job = reg.start("vol-wipe", "volume/p/v", _copy(200, pause=0.005))
    reg.wait(job.id, 20)
    progress = ev.events(job.id).count("progress")
    elapsed = job.finished - job.started  # type: ignore[operator]
    assert 1 <= progress <= elapsed * 4 + 2, (progress, elapsed)
    dones = [d["progress"]["done"] for n, e, d in ev.seen if n == job.id and e == "progress"]
    assert dones == sorted(dones)


def test_cancel_stops_the_work_and_marks_it_cancelled() -> None:
    reg = JobRegistry()
    cleaned = threading.Event()

    def work(job: Job) -> Any:
        try:
            for i in range(1000):
                time.sleep(0.01)
                job.report(i, 1000)
        finally:
            cleaned.set()  # the work removes its half-made output here

    job = reg.start("vol-clone", "volume/p/v", work)
    time.sleep(0.1)
    assert reg.list(all=False) == [job]
    reg.cancel(job.id)
    reg.wait(job.id, 5)
    assert job.state == "cancelled" and cleaned.is_set()
    assert job.done < 1000 and job.error is None
    assert reg.list(all=False) == []
    with pytest.raises(InvalidStateError, match="already cancelled"):
        reg.cancel(job.id)


def test_a_failed_job_keeps_the_error_shape() -> None:
    reg = JobRegistry()

    def work(job: Job) -> Any:
        raise InvalidConfigError("volume 'x' is too big", hint="free some space")

    job = reg.wait(reg.start("vol-clone", "volume/p/x", work).id, 5)
    assert job.state == "failed"
    assert job.error == {"error": "volume 'x' is too big", "hint": "free some space",
                         "code": "invalid_config"}  # fmt: skip

    def bug(job: Job) -> Any:
        raise KeyError("x")

    job = reg.wait(reg.start("vol-wipe", "volume/p/x", bug).id, 5)
    assert job.state == "failed" and job.error is not None and job.error["code"] == "internal"


def test_an_error_after_cancel_counts_as_cancelled() -> None:
    reg = JobRegistry()
    go = threading.Event()

    def work(job: Job) -> Any:
        go.wait(5)
        raise BrokenPipeError(32, "broken pipe")  # the reader of a download went away

    job = reg.start("vol-download", "volume/p/x", work)
    reg.cancel(job.id)
    go.set()
    assert reg.wait(job.id, 5).state == "cancelled"


def test_history_is_bounded_by_count_and_age() -> None:
    reg = JobRegistry(keep=3, keep_seconds=3600)
    ids = []
    for _ in range(6):
        ids.append(reg.start("vol-wipe", "volume/p/v", _copy(1)).id)
        reg.wait(ids[-1], 5)
    kept = [j.id for j in reg.list()]
    assert kept == ids[-3:]
    with pytest.raises(NotFoundError, match="no job with id"):
        reg.get(ids[0])
    reg.keep_seconds = 0.0
    time.sleep(0.01)
    assert reg.list() == []


def test_running_jobs_are_never_pruned() -> None:
    reg = JobRegistry(keep=0, keep_seconds=0)
    gate = threading.Event()
    job = reg.start("domain-clone", "domain/web", lambda j: gate.wait(60))
    wipe = reg.wait(reg.start("vol-wipe", "volume/p/v", _copy(1)).id, 60)  # a loaded machine
    assert not wipe.running and reg.list() == [job]
    assert reg.running_on("domain/web") is job and reg.running_on("domain/db") is None
    gate.set()
    reg.wait(job.id, 60)
    assert reg.running_on("domain/web") is None


def test_bandwidth_slows_the_work_down() -> None:
    reg = JobRegistry()
    t = time.monotonic()
    job = reg.start("vol-clone", "volume/p/v", _copy(4, size=1 << 20), bandwidth=8 << 20)
    reg.wait(job.id, 5)
    assert job.state == "completed" and time.monotonic() - t >= 0.45


def test_shutdown_cancels_running_jobs() -> None:
    reg = JobRegistry()
    job = reg.start("vol-clone", "volume/p/v", _copy(1000, pause=0.01))
    reg.shutdown(timeout=5)
    assert job.state == "cancelled"


def test_cancel_token() -> None:
    tok = CancelToken()
    assert not tok.cancelled and not tok.wait(0.01)
    tok.check()
    tok.cancel()
    assert tok.cancelled and tok.wait(10)
    with pytest.raises(Exception, match="copy cancelled") as err:
        tok.check("copy")
    assert getattr(err.value, "code", "") == "cancelled"
