"""Jobs over REST: list, show and cancel them, and the routes that start long operations.

- ``GET /api/v1/jobs[?all=false]``, ``GET /api/v1/jobs/{id}[?wait=SECONDS]``,
  ``DELETE /api/v1/jobs/{id}`` (cancel; 409 once finished);
- ``POST /api/v1/pools/{pool}/volumes/{vol}/clone`` ``{"name"}``,
  ``POST .../wipe`` ``{"algorithm"}``, ``POST /api/v1/domains/{name}/clone`` (virt-clone's
  options): ``202 {"job": ...}`` and ``Location: /api/v1/jobs/{id}``;
- ``PUT .../content?offset=&length=``: the request body is written into the volume as it
  arrives (a job while it runs; the answer comes once the body is written);
- ``GET .../content?offset=&length=``: the volume's bytes, streamed (a job while it runs; its
  id is in the ``X-Pyvirt-Job`` header);
- ``GET /api/v1/domains/{name}/job`` and ``DELETE`` there (``domjobinfo``/``domjobabort``).

The volume clone and wipe bodies accept ``bandwidth`` (bytes per second, at most), honoured
by the copies pyvirt does itself (raw volumes, wipes); a qemu-img copy (qcow2) is not slowed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from pyvirt.daemon.context import Daemon, daemon_of
from pyvirt.daemon.jobs import Job, JobRegistry, registry_of
from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    error_class,
)

if TYPE_CHECKING:  # the pools' API (and lxml) loads with the first volume job
    import pyvirt.api.pools

__all__ = ["router", "setup"]

router = APIRouter(prefix="/api/v1", tags=["jobs"])

_BANDWIDTH = Field(None, ge=1, description="bytes per second, at most (default: no limit)")
_MAX_WAIT = 30.0


class JobProgress(BaseModel):
    """How far a job got."""

    done: int
    total: int
    unit: str
    rate: float


class JobModel(BaseModel):
    """One job (see :class:`pyvirt.daemon.jobs.Job`)."""

    id: str
    kind: str
    object: str
    state: str
    progress: JobProgress
    started: float
    finished: float | None
    owner: str
    result: Any = None
    error: dict[str, Any] | None = None


class JobAccepted(BaseModel):
    """A started job."""

    job: JobModel


class DomainJob(BaseModel):
    """The running job of a domain, or none."""

    job: JobModel | None


class VolumeCloneBody(BaseModel):
    """``vol-clone``'s options."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    prealloc_metadata: bool = False
    bandwidth: int | None = _BANDWIDTH


class VolumeWipeBody(BaseModel):
    """``vol-wipe``'s options."""

    model_config = ConfigDict(extra="forbid")
    algorithm: str = Field("zero", min_length=1, max_length=32)
    bandwidth: int | None = _BANDWIDTH


class DomainCloneBody(BaseModel):
    """virt-clone's options (the original is the domain of the path)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=255)
    auto_clone: bool = False
    files: list[str] = Field(default_factory=list, max_length=64)
    macs: list[str] = Field(default_factory=list, max_length=64)
    uuid: str | None = None
    preserve_data: bool = False
    nonsparse: bool = False
    reflink: bool = False
    linked: bool = False
    force: bool = False
    skip_copy: list[str] = Field(default_factory=list, max_length=64)
    #: virt-install's ``--check`` text, e.g. ``path_in_use=off``
    check: str | None = Field(None, max_length=1024)


def setup(daemon: Daemon) -> None:
    """Make the registry; cancel running jobs (they clean up) when the daemon stops."""
    reg = registry_of(daemon)

    async def stop() -> None:
        await asyncio.to_thread(reg.shutdown)

    daemon.on_shutdown.append(stop)


def owner_of(request: Request) -> str:
    """Who asked: the identity the authentication put on the request, else ``local``."""
    for attr in ("identity", "owner", "user"):
        who = getattr(request.state, attr, None)
        if who:
            return str(getattr(who, "name", who))
    return "local"


def accepted(job: Job) -> JSONResponse:
    """The 202 answer of a route that started *job* (its document and ``Location``)."""
    return JSONResponse(
        {"job": job.to_json()}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )


def _failure(job: Job) -> JSONResponse:
    """The error answer of a job that did not complete (cancelled: 409, code ``cancelled``)."""
    if job.state == "cancelled":
        body = {"error": f"job '{job.id}' ({job.kind}) cancelled", "hint": None,
                "code": "cancelled"}  # fmt: skip
        return JSONResponse(body, status_code=409)
    body = job.error or {"error": f"job '{job.id}' failed", "hint": None, "code": "failed"}
    status = 500 if body.get("code") == "internal" else error_class(str(body["code"])).status
    return JSONResponse(body, status_code=status)


# -- the jobs ------------------------------------------------------------------------------
@router.get("/jobs")
def list_jobs(request: Request, all: bool = True) -> list[JobModel]:
    """Jobs, oldest first: running and recently finished ones (``all=false``: running only)."""
    jobs = registry_of(daemon_of(request)).list(all=all)
    return [JobModel.model_validate(j.to_json()) for j in jobs]


@router.get("/jobs/{job_id}")
def job_info(
    request: Request, job_id: str, wait: float = Query(0.0, ge=0.0, le=_MAX_WAIT)
) -> JobModel:
    """One job; with ``wait`` the answer comes when it finishes or after that many seconds."""
    reg = registry_of(daemon_of(request))
    job = reg.wait(job_id, wait) if wait else reg.get(job_id)
    return JobModel.model_validate(job.to_json())


@router.delete("/jobs/{job_id}")
def cancel_job(request: Request, job_id: str) -> JobModel:
    """Cancel a running job (409 once finished); it ends ``cancelled`` after removing what it
    had half-made (see ``GET`` with ``wait``)."""
    job = registry_of(daemon_of(request)).cancel(job_id)
    return JobModel.model_validate(job.to_json())


# -- volume jobs ---------------------------------------------------------------------------
def _volume(request: Request, pool: str, vol: str) -> pyvirt.api.pools.Volume:
    return daemon_of(request).conn.pools.get(pool).volume(vol)


@router.post("/pools/{pool}/volumes/{vol}/clone", status_code=202, response_model=JobAccepted)
def clone_volume(request: Request, pool: str, vol: str, body: VolumeCloneBody) -> JSONResponse:
    """``vol-clone`` as a job: a full copy named ``name`` in the same pool."""
    src = _volume(request, pool, vol)
    p = src.pool
    try:
        p.volume(body.name)
    except NotFoundError:
        pass
    else:
        raise AlreadyExistsError(f"storage volume '{body.name}' already exists in pool '{pool}'")
    info = src.info()
    size = info.capacity
    bandwidth = body.bandwidth if info.format == "raw" else None

    def work(job: Job) -> Any:
        new = src.clone(
            body.name,
            prealloc_metadata=body.prealloc_metadata,
            progress=job.report,
            cancel=job.token,
        )
        return new.info().to_json()

    reg = registry_of(daemon_of(request))
    job = reg.start("vol-clone", f"volume/{src.pool_name}/{src.name}", work,
                    owner=owner_of(request), total=size, bandwidth=bandwidth)  # fmt: skip
    return accepted(job)


@router.post("/pools/{pool}/volumes/{vol}/wipe", status_code=202, response_model=JobAccepted)
def wipe_volume(request: Request, pool: str, vol: str, body: VolumeWipeBody) -> JSONResponse:
    """``vol-wipe`` as a job."""
    src = _volume(request, pool, vol)
    size = src.info().capacity

    def work(job: Job) -> Any:
        src.wipe(algorithm=body.algorithm, progress=job.report, cancel=job.token)
        return None

    reg = registry_of(daemon_of(request))
    job = reg.start("vol-wipe", f"volume/{src.pool_name}/{src.name}", work,
                    owner=owner_of(request), total=size, bandwidth=body.bandwidth)  # fmt: skip
    return accepted(job)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@router.put("/pools/{pool}/volumes/{vol}/content", response_model=JobAccepted)
async def upload_volume(
    request: Request,
    pool: str,
    vol: str,
    offset: int = Query(0, ge=0),
    length: int | None = Query(None, ge=0),
    sparse: bool = False,
) -> Response:
    """``vol-upload``: the request body (``application/octet-stream``) is written into the
    volume at ``offset``. The answer (``{"job": ...}``, completed) comes once it is written."""
    dst = await run_in_threadpool(_volume, request, pool, vol)
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            body_len = int(declared)
        except ValueError:
            raise InvalidConfigError("invalid Content-Length") from None
        length = body_len if length is None else min(length, body_len)
    r, w = os.pipe()
    src = open(r, "rb", buffering=0)  # noqa: SIM115 - the job closes it

    def work(job: Job) -> Any:
        with src:
            done = dst.upload(src, offset=offset, length=length, sparse=sparse,
                              progress=job.report, cancel=job.token)  # fmt: skip
        return {"transferred": done}

    reg = registry_of(daemon_of(request))
    job = reg.start("vol-upload", f"volume/{dst.pool_name}/{dst.name}", work,
                    owner=owner_of(request), total=length or 0)  # fmt: skip
    writing = True
    try:
        async for chunk in request.stream():
            if writing and chunk and job.running:
                try:
                    await run_in_threadpool(_write_all, w, chunk)
                except OSError:  # the job stopped reading (its state says why): drain the rest
                    writing = False
    except ClientDisconnect:  # the client went away (Ctrl-C): nothing more will come
        job.token.cancel()
    except BaseException:
        job.token.cancel()
        raise
    finally:
        os.close(w)
    await run_in_threadpool(reg.wait, job.id)
    if job.state != "completed":
        return _failure(job)
    return JSONResponse({"job": job.to_json()}, headers={"Location": f"/api/v1/jobs/{job.id}"})


@router.get(
    "/pools/{pool}/volumes/{vol}/content",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def download_volume(
    request: Request,
    pool: str,
    vol: str,
    offset: int = Query(0, ge=0),
    length: int | None = Query(None, ge=0),
) -> Response:
    """``vol-download``: the volume's bytes from ``offset`` (``Content-Length`` says how many);
    a job while they stream (``X-Pyvirt-Job``); cancelling it ends the body early."""
    src = await run_in_threadpool(_volume, request, pool, vol)
    info = await run_in_threadpool(src.info)
    size = info.physical if info.type == "file" and info.physical else info.capacity
    if offset > size:
        raise InvalidConfigError(
            f"offset {offset} is beyond the end of volume '{info.name}' ({size} bytes)"
        )
    count = size - offset if length is None else min(length, size - offset)
    r, w = os.pipe()
    dst = open(w, "wb", buffering=0)  # noqa: SIM115 - the job closes it

    def work(job: Job) -> Any:
        with dst:
            done = src.download(dst, offset=offset, length=count, progress=job.report,
                                cancel=job.token)  # fmt: skip
        return {"transferred": done}

    reg = registry_of(daemon_of(request))
    job = reg.start("vol-download", f"volume/{src.pool_name}/{src.name}", work,
                    owner=owner_of(request), total=count)  # fmt: skip
    first = await run_in_threadpool(os.read, r, 1 << 20)
    if not first and count:
        os.close(r)
        await run_in_threadpool(reg.wait, job.id)
        if job.state != "completed":
            return _failure(job)

    async def body() -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk:
                yield chunk
                chunk = await run_in_threadpool(os.read, r, 1 << 20)
        finally:
            if job.running:
                job.token.cancel()  # the client went away
            os.close(r)

    headers = {"Content-Length": str(count), "X-Pyvirt-Job": job.id,
               "Location": f"/api/v1/jobs/{job.id}"}  # fmt: skip
    return StreamingResponse(body(), media_type="application/octet-stream", headers=headers)


# -- domain jobs ---------------------------------------------------------------------------
@router.post("/domains/{name}/clone", status_code=202, response_model=JobAccepted)
def clone_domain(request: Request, name: str, body: DomainCloneBody) -> JSONResponse:
    """virt-clone as a job: planned (and checked) at once, disks copied in the job; the
    result is ``{"name", "uuid", "warnings"}``. A cancelled clone leaves nothing."""
    from pyvirt.api.install import CloneRequest, parse_check  # lazy

    conn = daemon_of(request).conn
    orig = conn.domains.get(name)
    fields = body.model_dump(exclude={"check"})
    req = CloneRequest(original=orig.name, **fields)
    if body.check:
        req.check = parse_check(body.check)
    plan = conn.domains.prepare_clone(req)

    def work(job: Job) -> Any:
        dom = plan.run(progress=job.report, cancel=job.token)
        return {"name": dom.name, "uuid": dom.status().uuid, "warnings": plan.warnings}

    reg = registry_of(daemon_of(request))
    job = reg.start("domain-clone", f"domain/{orig.name}", work, owner=owner_of(request))
    return accepted(job)


def _domain_job(request: Request, name: str) -> tuple[JobRegistry, Job | None]:
    dom = daemon_of(request).conn.domains.get(name)
    reg = registry_of(daemon_of(request))
    return reg, reg.running_on(f"domain/{dom.name}")


@router.get("/domains/{name}/job")
def domain_job(request: Request, name: str) -> DomainJob:
    """``domjobinfo``: the domain's running job (``{"job": null}`` when there is none)."""
    _, job = _domain_job(request, name)
    return DomainJob(job=None if job is None else JobModel.model_validate(job.to_json()))


@router.delete("/domains/{name}/job")
def abort_domain_job(request: Request, name: str) -> JobModel:
    """``domjobabort``: cancel the domain's running job.

    :raises InvalidStateError: no job runs on the domain
    """
    reg, job = _domain_job(request, name)
    if job is None:
        raise InvalidStateError(f"no job is active on domain '{name}'")
    return JobModel.model_validate(reg.cancel(job.id).to_json())
