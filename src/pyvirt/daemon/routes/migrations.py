"""Live migration over REST: each host's half of ``migrate``
(:mod:`pyvirt.api.domain_migrate` drives them in order).

The destination host:

- ``POST /api/v1/migrations/incoming`` ``{"xml","listen","tcp_host","policy","disks",
  "incremental"}`` → 201 ``{"name","uri","storage","warnings"}``: after the checks (CPU,
  memory, networks, images), a QEMU waiting for the state, the address the source sends it
  to, and the NBD exports of the copied disks;
- ``POST /api/v1/migrations/incoming/{name}/finish`` ``{"paused","persistent_xml"}``: run it
  (``running (migrated)``); ``DELETE /api/v1/migrations/incoming/{name}``: abort (nothing
  stays).

The source host:

- ``POST /api/v1/domains/{name}/migration/disks`` ``{"targets","incremental"}``: the disks
  a ``--copy-storage-*`` migration copies (sizes, formats, backing files);
- ``POST /api/v1/domains/{name}/migration/perform`` ``{"uri","policy","storage"}``: 202 job
  (``domain-migrate``, progress in RAM bytes; cancel leaves the guest running here); its
  result is what the migration measured;
- ``POST /api/v1/domains/{name}/migration/confirm`` ``{"undefine"}`` (stop the source QEMU)
  and ``POST .../migration/recover`` (run the guest here again).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

import pyvirt.api
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.routes.jobs import JobAccepted, owner_of

__all__ = ["PolicyBody", "router"]

router = APIRouter(tags=["migration"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"description": "no such domain"},
    409: {"description": "not possible in the domain's state"},
}
_URI = Field(min_length=5, max_length=4096, pattern=r"^(tcp:|unix:/)[^\s]*$")


class PolicyBody(BaseModel):
    """How the source drives the migration (:class:`pyvirt.api.MigrationPolicy`)."""

    model_config = ConfigDict(extra="forbid")
    bandwidth: int | None = Field(None, ge=1, description="bytes/s")
    downtime_ms: int | None = Field(None, ge=1, le=3_600_000)
    max_downtime_ms: int = Field(2000, ge=1, le=3_600_000)
    auto_converge: bool = False
    auto_converge_initial: int | None = Field(None, ge=1, le=99)
    auto_converge_increment: int | None = Field(None, ge=1, le=99)
    compressed: bool = False
    parallel: int | None = Field(None, ge=1, le=255)
    postcopy: bool = False
    postcopy_after_passes: int | None = Field(None, ge=1)
    stall_passes: int = Field(3, ge=1, le=1000)
    max_passes: int = Field(60, ge=1, le=100_000)
    timeout: float | None = Field(None, gt=0)
    timeout_action: str = Field("suspend", pattern="^(suspend|postcopy|abort)$")
    offline_copy: bool = False

    def policy(self) -> Any:
        """The API's policy value."""
        return pyvirt.api.MigrationPolicy(**self.model_dump())


class DiskCopyBody(BaseModel):
    """One disk a ``--copy-storage-*`` migration copies (:class:`DiskCopy`)."""

    model_config = ConfigDict(extra="forbid")
    target: str = Field(min_length=1, max_length=64, pattern=r"^[\w.-]+$")
    format: str = Field(min_length=1, max_length=32, pattern=r"^[\w.-]+$")
    capacity: int = Field(ge=0)
    backing: str | None = Field(None, min_length=1, max_length=4096)
    backing_format: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[\w.-]+$")


class PrepareBody(BaseModel):
    """The destination half's input."""

    model_config = ConfigDict(extra="forbid")
    xml: str = Field(min_length=1, max_length=1 << 20, description="the live domain XML")
    listen: str | None = _URI
    tcp_host: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[\w.:\[\]-]+$")
    policy: PolicyBody | None = None
    disks: list[DiskCopyBody] = Field(default_factory=list, max_length=256)
    incremental: bool = False
    tls: bool = Field(False, description="QEMU's TLS with this daemon's certificate")


class StorageCopyBody(BaseModel):
    """Where the source mirrors the copied disks: the destination's NBD server."""

    model_config = ConfigDict(extra="forbid")
    nbd: str = _URI
    exports: dict[str, str] = Field(max_length=256)
    incremental: bool = False

    def storage(self) -> Any:
        """The API's value."""
        return pyvirt.api.MigrationStorage(self.nbd, dict(self.exports), self.incremental)


class IncomingOut(BaseModel):
    """A prepared incoming migration."""

    name: str
    uri: str
    storage: StorageCopyBody | None = None
    warnings: list[str] = Field(default_factory=list)


class DisksBody(BaseModel):
    """Which disks a ``--copy-storage-*`` migration copies."""

    model_config = ConfigDict(extra="forbid")
    targets: list[str] | None = Field(None, max_length=256)
    incremental: bool = False


class DisksOut(BaseModel):
    """The disks to copy and what the destination makes for them."""

    disks: list[DiskCopyBody]


class FinishBody(BaseModel):
    """How the destination runs the migrated domain."""

    model_config = ConfigDict(extra="forbid")
    paused: bool = False
    persistent_xml: str | None = Field(None, max_length=1 << 20)


class TlsBody(BaseModel):
    """What the source QEMU trusts for ``--tls``."""

    model_config = ConfigDict(extra="forbid")
    ca_pem: str = Field(min_length=1, max_length=1 << 20, description="the destination's CA")
    hostname: str = Field(min_length=1, max_length=255, pattern=r"^[\w.:-]+$")


class PerformBody(BaseModel):
    """The source half's input."""

    model_config = ConfigDict(extra="forbid")
    uri: str = _URI
    policy: PolicyBody | None = None
    storage: StorageCopyBody | None = None
    tls: TlsBody | None = None


class ConfirmBody(BaseModel):
    """What the source does after the destination took the guest over."""

    model_config = ConfigDict(extra="forbid")
    undefine: bool = False


# -- destination ---------------------------------------------------------------------------
@router.post(
    "/api/v1/migrations/incoming", status_code=201, response_model=IncomingOut, responses=_ERRORS
)
def prepare(request: Request, body: PrepareBody) -> IncomingOut:
    """Start a QEMU waiting for a migrating domain's state."""
    daemon = daemon_of(request)
    conn = daemon.conn
    cfg = daemon.config
    files = (cfg.tls_cert, cfg.tls_key, cfg.tls_client_ca) if cfg.tls_cert and cfg.tls_key else None
    inc = conn.domains.migration_prepare(
        body.xml,
        listen=body.listen,
        tcp_host=body.tcp_host,
        policy=body.policy.policy() if body.policy else None,
        copy=[pyvirt.api.MigrationDisk(**d.model_dump()) for d in body.disks],
        incremental=body.incremental,
        tls=body.tls,
        tls_files=files,
    )
    st = inc.storage
    return IncomingOut(
        name=inc.name,
        uri=inc.uri,
        storage=StorageCopyBody(nbd=st.nbd, exports=st.exports, incremental=st.incremental)
        if st
        else None,
        warnings=list(inc.warnings),
    )


@router.post("/api/v1/migrations/incoming/{name}/finish", status_code=204, responses=_ERRORS)
def finish(request: Request, name: str, body: FinishBody | None = None) -> Response:
    """Run the migrated domain once its whole state is here."""
    opts = body or FinishBody(persistent_xml=None)
    conn = daemon_of(request).conn
    conn.domains.migration_finish(name, paused=opts.paused, persistent_xml=opts.persistent_xml)
    return Response(status_code=204)


@router.delete("/api/v1/migrations/incoming/{name}", status_code=204, responses=_ERRORS)
def abort(request: Request, name: str) -> Response:
    """Stop the incoming QEMU of a failed migration."""
    daemon_of(request).conn.domains.migration_abort(name)
    return Response(status_code=204)


# -- source ----------------------------------------------------------------------------------
@router.post(
    "/api/v1/domains/{name}/migration/perform",
    status_code=202,
    response_model=JobAccepted,
    responses=_ERRORS,
)
def perform(request: Request, name: str, body: PerformBody) -> JSONResponse:
    """Send the running domain's state to the destination's QEMU (a job)."""
    dom = daemon_of(request).conn.domains.get(name)
    dom.status()  # 404 now rather than in the job
    policy = (body.policy or PolicyBody.model_validate({})).policy()
    storage = body.storage.storage() if body.storage else None
    tls = pyvirt.api.MigrationTls(**body.tls.model_dump()) if body.tls else None

    def work(job: Job) -> Any:
        result = dom.migration_perform(body.uri, policy, progress=job.report, cancel=job.token,
                                       storage=storage, tls=tls)  # fmt: skip
        return result.to_json()

    reg = registry_of(daemon_of(request))
    job = reg.start("domain-migrate", f"domain/{dom.name}", work, owner=owner_of(request))
    return JSONResponse(
        {"job": job.to_json()}, status_code=202, headers={"Location": f"/api/v1/jobs/{job.id}"}
    )


@router.post("/api/v1/domains/{name}/migration/disks", response_model=DisksOut, responses=_ERRORS)
def disks(request: Request, name: str, body: DisksBody | None = None) -> DisksOut:
    """The disks a ``--copy-storage-*`` migration of the running domain copies."""
    opts = body or DisksBody(targets=None)
    dom = daemon_of(request).conn.domains.get(name)
    found = dom.migration_disks(opts.targets, incremental=opts.incremental)
    return DisksOut(disks=[DiskCopyBody(**d.to_json()) for d in found])


@router.post("/api/v1/domains/{name}/migration/confirm", status_code=204, responses=_ERRORS)
def confirm(request: Request, name: str, body: ConfirmBody | None = None) -> Response:
    """Stop the source QEMU after the destination took the guest over."""
    opts = body or ConfirmBody()
    daemon_of(request).conn.domains.get(name).migration_confirm(undefine=opts.undefine)
    return Response(status_code=204)


@router.post("/api/v1/domains/{name}/migration/recover", status_code=204, responses=_ERRORS)
def recover(request: Request, name: str) -> Response:
    """Run the guest here again after the destination could not take it over."""
    daemon_of(request).conn.domains.get(name).migration_recover()
    return Response(status_code=204)
