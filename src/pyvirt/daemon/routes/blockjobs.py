"""Block jobs over REST: ``blockcommit``, ``blockpull`` and ``blockcopy`` run as daemon jobs
(``domjobinfo`` shows them), ``blockjob`` reads and ends QEMU's job on a disk.

- ``POST /api/v1/domains/{name}/disks/{disk}/commit`` ``{"top","base","active","pivot",
  "keep_overlay","shallow","delete","bandwidth","timeout"}``,
  ``POST .../pull`` ``{"base","bandwidth","timeout"}``,
  ``POST .../copy`` ``{"dest","format","pivot","finish","shallow","reuse_external",
  "transient_job","blockdev","bandwidth","timeout"}``: ``202 {"job": ...}`` with
  ``Location: /api/v1/jobs/{id}``; kinds ``block-commit``, ``block-pull``, ``block-copy``,
  progress in bytes, the result :meth:`BlockJobResult.to_json`; cancelling the job aborts
  QEMU's (a copy's partial target is removed);
- ``GET .../blockjob`` ``{"job": BlockJobInfo | null}``; ``DELETE .../blockjob[?pivot=true]``
  (abort, or pivot); ``POST .../blockjob/pivot``; ``PUT .../blockjob/bandwidth``
  ``{"bandwidth"}``.

Bandwidths are bytes per second; the defaults are the API's (:mod:`pyvirt.api.domain_blockjobs`:
an active commit pivots unless ``pivot`` is false).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.domain import Domain
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.routes.jobs import JobAccepted, accepted, owner_of

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/domains/{name}/disks/{disk}", tags=["blockjobs"])

_BANDWIDTH = Field(None, ge=0, description="bytes per second, at most (default: no limit)")
_TIMEOUT = Field(None, gt=0, description="abort the job after this many seconds")
_PATH = Field(None, min_length=1, max_length=4096)


class CommitBody(BaseModel):
    """``blockcommit``'s options."""

    model_config = ConfigDict(extra="forbid")
    top: str | None = _PATH
    base: str | None = _PATH
    active: bool = False
    pivot: bool = True
    keep_overlay: bool = False
    shallow: bool = False
    delete: bool = False
    keep_relative: bool = False
    bandwidth: int | None = _BANDWIDTH
    timeout: float | None = _TIMEOUT


class PullBody(BaseModel):
    """``blockpull``'s options."""

    model_config = ConfigDict(extra="forbid")
    base: str | None = _PATH
    bandwidth: int | None = _BANDWIDTH
    timeout: float | None = _TIMEOUT


class CopyBody(BaseModel):
    """``blockcopy``'s options."""

    model_config = ConfigDict(extra="forbid")
    dest: str = Field(min_length=1, max_length=4096)
    format: str | None = Field(None, min_length=1, max_length=32)
    pivot: bool = False
    finish: bool = False
    shallow: bool = False
    reuse_external: bool = False
    transient_job: bool = False
    blockdev: bool = False
    bandwidth: int | None = _BANDWIDTH
    granularity: int | None = Field(None, ge=512, le=64 << 20, description="bytes, power of 2")
    buf_size: int | None = Field(None, ge=1, le=1 << 30, description="bytes in flight")
    dest_xml: str | None = Field(None, max_length=1 << 16, description="a <disk> destination")
    timeout: float | None = _TIMEOUT


class SpeedBody(BaseModel):
    """A new bandwidth limit (0: none)."""

    model_config = ConfigDict(extra="forbid")
    bandwidth: int = Field(ge=0, description="bytes per second")


class BlockJobModel(BaseModel):
    """A disk's running block job (see :class:`pyvirt.api.domain_blockjobs.BlockJobInfo`)."""

    disk: str
    kind: str
    done: int
    total: int
    bandwidth: int
    ready: bool
    status: str


class BlockJobOut(BaseModel):
    """The disk's block job, or none."""

    job: BlockJobModel | None


class BlockJobResultModel(BaseModel):
    """How a block job ended (see :class:`pyvirt.api.domain_blockjobs.BlockJobResult`)."""

    disk: str
    kind: str
    outcome: str
    source: str
    chain: list[str]


def _domain(request: Request, name: str) -> Domain:
    return daemon_of(request).conn.domains.get(name)


def _start(request: Request, kind: str, dom: Domain, work: Any) -> JSONResponse:
    def run(job: Job) -> Any:
        return work(job).to_json()

    reg = registry_of(daemon_of(request))
    job = reg.start(kind, f"domain/{dom.name}", run, owner=owner_of(request))
    return accepted(job)


@router.post("/commit", status_code=202, response_model=JobAccepted)
def block_commit(request: Request, name: str, disk: str, body: CommitBody) -> JSONResponse:
    """``blockcommit`` as a job (an active commit needs ``active``)."""
    dom = _domain(request, name)
    opts = body.model_dump()
    return _start(request, "block-commit", dom, lambda job: dom.block_commit(
        disk, **opts, wait=True, progress=job.report, cancel=job.token))  # fmt: skip


@router.post("/pull", status_code=202, response_model=JobAccepted)
def block_pull(request: Request, name: str, disk: str, body: PullBody) -> JSONResponse:
    """``blockpull`` as a job."""
    dom = _domain(request, name)
    opts = body.model_dump()
    return _start(request, "block-pull", dom, lambda job: dom.block_pull(
        disk, **opts, wait=True, progress=job.report, cancel=job.token))  # fmt: skip


@router.post("/copy", status_code=202, response_model=JobAccepted)
def block_copy(request: Request, name: str, disk: str, body: CopyBody) -> JSONResponse:
    """``blockcopy`` as a job; cancelled, it removes the partial ``dest`` it created."""
    dom = _domain(request, name)
    opts = body.model_dump(exclude={"dest"})
    return _start(request, "block-copy", dom, lambda job: dom.block_copy(
        disk, body.dest, **opts, wait=True, progress=job.report, cancel=job.token))  # fmt: skip


@router.get("/blockjob")
def block_job(request: Request, name: str, disk: str) -> BlockJobOut:
    """``blockjob --info``: QEMU's job on the disk (``{"job": null}`` when none)."""
    got = _domain(request, name).block_job_info(disk)
    return BlockJobOut(job=None if got is None else BlockJobModel(**got.to_json()))


@router.delete("/blockjob", status_code=204)
def abort_block_job(request: Request, name: str, disk: str, pivot: bool = False) -> Response:
    """``blockjob --abort`` (``pivot``: ``--pivot``)."""
    _domain(request, name).block_job_abort(disk, pivot=pivot)
    return Response(status_code=204)


@router.post("/blockjob/pivot")
def pivot_block_job(request: Request, name: str, disk: str) -> BlockJobResultModel:
    """``blockjob --pivot``: switch to the ready copy or the committed base."""
    return BlockJobResultModel(**_domain(request, name).block_job_pivot(disk).to_json())


@router.put("/blockjob/bandwidth", status_code=204)
def set_block_job_speed(request: Request, name: str, disk: str, body: SpeedBody) -> Response:
    """``blockjob --bandwidth``."""
    _domain(request, name).block_job_set_speed(disk, body.bandwidth)
    return Response(status_code=204)
