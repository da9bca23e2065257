"""Backups of a domain over REST (virsh's ``backup-begin``, ``backup-dumpxml``; ``domjobinfo``
and ``domjobabort`` through ``routes/jobs.py``).

- ``POST /api/v1/domains/{name}/backup`` ``{"backup_xml","checkpoint_xml","reuse_external",
  "bandwidth"}`` → ``202 {"job": ..., "xml", "warnings", "checkpoint"}`` with ``Location:
  /api/v1/jobs/{id}``: the backup began (its XML with the defaults filled in) and a daemon job
  of kind ``backup`` on ``domain/NAME`` follows it. A push backup's job reports the bytes
  copied and completes with the :class:`BackupJobInfo` as its result; cancelling it
  (``DELETE /api/v1/jobs/{id}`` or ``domjobabort``) aborts QEMU's jobs and removes the
  partial targets. A pull backup's job runs as long as the NBD export does; cancelling it
  ends the export (its normal end: the job completes);
- ``GET .../backup?completed=bool`` → ``{"job": the domain's latest backup job | null,
  "info": BackupJobInfo | null}`` (``info``: the active backup, or with ``completed`` the
  last finished one);
- ``GET .../backup/xml`` → the active backup's ``<domainbackup>`` (``backup-dumpxml``);
- ``DELETE .../backup`` → the ended backup's :class:`BackupJobInfo` (``backup-end``): the
  daemon job is cancelled and waited for; a backup begun without the daemon is ended
  directly.

Paths in the XML (targets, NBD sockets) are paths on the daemon's host.
"""

from __future__ import annotations

import contextlib
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.domain import Domain
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, JobRegistry, registry_of
from pyvirt.daemon.routes._common import xml_response
from pyvirt.daemon.routes.jobs import JobModel, owner_of
from pyvirt.errors import InvalidStateError
from pyvirt.progress import CancelledError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/domains/{name}", tags=["backups"])

KIND = "backup"
#: seconds between the checks that a pull backup's export still runs
PULL_POLL = 0.5
#: seconds ``DELETE .../backup`` waits for the cancelled job to clean up
END_WAIT = 60.0

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such domain or checkpoint"},
    409: {"description": "the domain is not running, or a backup job is (not) active"},
}


class BeginBody(BaseModel):
    """``backup-begin``'s options."""

    model_config = ConfigDict(extra="forbid")
    backup_xml: str | None = Field(None, max_length=1 << 20, description="<domainbackup>")
    checkpoint_xml: str | None = Field(None, max_length=1 << 20, description="<domaincheckpoint>")
    reuse_external: bool = False
    bandwidth: int | None = Field(None, ge=0, description="bytes per second (push), at most")


class BackupInfoModel(BaseModel):
    """A backup job as ``domjobinfo`` shows it (see :class:`BackupJobInfo`)."""

    mode: str
    state: str
    done: int
    total: int
    started: float
    finished: float | None = None
    error: str = ""
    incremental: str | None = None
    checkpoint: str | None = None
    disks: list[str] = []


class BackupBegun(BaseModel):
    """A begun backup: its daemon job and what ``backup-begin`` did."""

    job: JobModel
    xml: str
    warnings: list[str]
    checkpoint: str | None


class BackupState(BaseModel):
    """The domain's latest backup job and the backup it follows."""

    job: JobModel | None
    info: BackupInfoModel | None


def _domain(request: Request, name: str) -> Domain:
    return daemon_of(request).conn.domains.get(name)


def _latest(reg: JobRegistry, dom: Domain) -> Job | None:
    """The domain's latest backup job (running or finished)."""
    obj = f"domain/{dom.name}"
    jobs = [j for j in reg.list(all=True) if j.kind == KIND and j.object == obj]
    return jobs[-1] if jobs else None


def _push(dom: Domain, job: Job) -> dict[str, Any]:
    """Follow a push backup to its end; the job's cancel aborts it (targets removed)."""

    def report(done: int, total: int) -> None:
        # a cancel: the wait sees the token and aborts the backup itself
        with contextlib.suppress(CancelledError):
            job.report(done, total)

    try:
        return dom.backup_wait(progress=report, cancel=job.token).to_json()
    except InvalidStateError:
        # a backup that ended before the job's first look (another poller finished it)
        info = dom.backup_job_info(completed=True)
        if info is None:
            raise
        return info.to_json()


def _pull(dom: Domain, job: Job) -> dict[str, Any] | None:
    """Keep the job running while the export does; its cancel ends the export."""
    while not job.token.wait(PULL_POLL):
        if not dom.has_backup_job():  # ended without the daemon, or the domain stopped
            info = dom.backup_job_info(completed=True)
            return None if info is None else info.to_json()
    return dom.backup_end().to_json()


@router.post("/backup", status_code=202, response_model=BackupBegun, responses=_ERRORS)
def begin_backup(request: Request, name: str, body: BeginBody) -> JSONResponse:
    """``backup-begin``: start the backup and the daemon job following it."""
    dom = _domain(request, name)
    started = dom.backup_begin(body.backup_xml, body.checkpoint_xml,
                               reuse_external=body.reuse_external,
                               bandwidth=body.bandwidth or None)  # fmt: skip
    pull = "mode='pull'" in started.xml or 'mode="pull"' in started.xml

    def work(job: Job) -> Any:
        return _pull(dom, job) if pull else _push(dom, job)

    reg = registry_of(daemon_of(request))
    job = reg.start(KIND, f"domain/{dom.name}", work, owner=owner_of(request))
    doc = {"job": job.to_json(), "xml": started.xml, "warnings": started.warnings,
           "checkpoint": started.checkpoint}  # fmt: skip
    return JSONResponse(doc, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"})


@router.get("/backup", responses=_ERRORS)
def backup_state(request: Request, name: str, completed: bool = False) -> BackupState:
    """The domain's latest backup job and its active (or last finished) backup."""
    dom = _domain(request, name)
    job = _latest(registry_of(daemon_of(request)), dom)
    info = dom.backup_job_info(completed=completed)
    return BackupState(
        job=None if job is None else JobModel.model_validate(job.to_json()),
        info=None if info is None else BackupInfoModel(**info.to_json()),
    )


@router.get("/backup/xml", responses=_ERRORS)
def backup_xml(request: Request, name: str) -> Response:
    """``backup-dumpxml``: the active backup's ``<domainbackup>``."""
    return xml_response(_domain(request, name).backup_xml())


@router.delete("/backup", responses=_ERRORS)
def end_backup(request: Request, name: str) -> BackupInfoModel:
    """End the backup (``backup-end``): its daemon job is cancelled and waited for.

    :raises InvalidStateError: no backup is active
    """
    dom = _domain(request, name)
    reg = registry_of(daemon_of(request))
    job = _latest(reg, dom)
    if job is None or not job.running:
        return BackupInfoModel(**dom.backup_end().to_json())
    reg.cancel(job.id)
    reg.wait(job.id, END_WAIT)
    info = dom.backup_job_info(completed=True)
    if info is None:
        raise InvalidStateError(f"no backup job is active on domain '{dom.name}'")
    return BackupInfoModel(**info.to_json())
