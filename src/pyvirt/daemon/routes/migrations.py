"""Live migration over REST: each host's half of ``migrate``
(:mod:`pyvirt.api.domain_migrate` drives them in order).

The destination host:

- ``POST /api/v1/migrations/incoming`` ``{"xml","listen","tcp_host","policy","disks",
  "incremental"}`` → 201 ``{"name","uri","storage","warnings"}``: after the checks (CPU,
  memory, networks, images), a QEMU waiting for the state, the address the source sends it
  to, and the NBD exports of the copied disks;
- ``POST /api/v1/migrations/incoming/{name}/finish`` ``{"paused","persistent_xml"}``: run it
  (``running (migrated)``); ``DELETE /api/v1/migrations/incoming/{name}``: abort (nothing
  stays);
- ``POST /api/v1/migrations/incoming/{name}/run``: in post-copy, run the guest here from the
  switch on (``running (post-copy)``; the driver calls it once the source is in
  ``postcopy-active``, before the migration completed);
- ``POST /api/v1/migrations/incoming/{name}/tunnel`` (``--tunnelled``): the body (chunked,
  ``application/octet-stream``) is the migration stream, written into the incoming QEMU's
  unix socket as it arrives (asyncio streams in the event loop, never a blocking call);
  answers ``{"received"}`` once the stream ended.

The source host:

- ``POST /api/v1/domains/{name}/migration/disks`` ``{"targets","incremental"}``: the disks
  a ``--copy-storage-*`` migration copies (sizes, formats, backing files);
- ``POST /api/v1/domains/{name}/migration/perform`` ``{"uri","policy","storage"}``: 202 job
  (``domain-migrate``, progress in RAM bytes; cancel leaves the guest running here); its
  result is what the migration measured;
- ``POST /api/v1/domains/{name}/migration/confirm`` ``{"undefine"}`` (stop the source QEMU)
  and ``POST .../migration/recover`` (run the guest here again);
- while it runs: ``GET``/``PATCH .../migration/tuning`` ``{"downtime_ms","bandwidth",
  "compcache","postcopy_bandwidth"}`` (``migrate-setmaxdowntime``, ``-setspeed [--postcopy]``,
  ``-compcache``), ``POST
  .../migration/postcopy``, ``GET .../migration/status`` (``domjobinfo``'s live figures; ``GET
  .../migration/completed``: the last completed migration's, ``--completed``) and
  ``POST .../migration/cancel`` (refused with 409 in post-copy);
- post-copy recovery: ``POST .../migration/postcopy/pause`` (``domjobabort --postcopy``:
  both QEMUs wait in ``postcopy-paused``), then ``POST /api/v1/migrations/incoming/{name}/
  recover`` ``{"listen","tcp_host"}`` → ``{"uri"}`` on the destination and ``POST
  .../migration/resume`` ``{"uri"}`` (202 job, as perform) on the source.

Peer-to-peer (``migrate --p2p``, the web console's Migrate dialog): the source daemon drives
both halves itself (:mod:`pyvirt.api.migrate_p2p`):

- ``POST /api/v1/domains/{name}/migrate`` ``{"dest_uri", "token", "ca", "insecure", "live",
  "persistent", "undefinesource", "suspend", "dname", "offline", "migrate_uri", "policy"}``:
  202 job (``domain-migrate``, progress in RAM bytes; ``DELETE /api/v1/jobs/{id}`` cancels it,
  the guest running on here and nothing left on the destination); ``"tunnelled": true``
  sends the stream through the destination daemon's channel; ``"xml"``, ``"persistent_xml"``
  (the documents' text), ``"copy_storage_all"``, ``"copy_storage_inc"``,
  ``"migrate_disks"``, ``"postcopy_resume"`` and ``"tls"`` are ``migrate``'s options. ``token`` (the
  destination's API token) and ``ca`` (its CA's PEM) are used for this migration only: not
  logged, not in the job's record.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

import pyvirt.api
from pyvirt.api.migrate_p2p import Destination, migrate_p2p
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.routes.jobs import JobAccepted, accepted, owner_of
from pyvirt.errors import OperationFailedError

__all__ = ["MigrateBody", "PolicyBody", "router"]

router = APIRouter(tags=["migration"])
log = logging.getLogger("pyvirtd.migrations")

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
    initial_downtime_ms: int = Field(
        50, ge=1, le=3_600_000, description="the limit to start from when none was set"
    )
    max_downtime_ms: int = Field(2000, ge=1, le=3_600_000)
    auto_converge: bool = False
    auto_converge_initial: int | None = Field(None, ge=1, le=99)
    auto_converge_increment: int | None = Field(None, ge=1, le=99)
    compressed: bool = False
    parallel: int | None = Field(None, ge=1, le=255)
    postcopy: bool = False
    postcopy_bandwidth: int | None = Field(None, ge=1, description="bytes/s")
    postcopy_after_passes: int | None = Field(None, ge=1)
    stall_passes: int = Field(3, ge=1, le=1000)
    max_passes: int = Field(60, ge=1, le=100_000)
    timeout: float | None = Field(None, gt=0)
    timeout_action: str = Field("suspend", pattern="^(suspend|postcopy|abort)$")
    offline_copy: bool = False
    abort_on_error: bool = Field(False, description="cancel on a guest's disk I/O error")
    cluster_handover: bool = Field(
        False, description="the caller moves a cluster domain's ownership (cluster evacuate)"
    )

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
    run_on_arrival: bool = Field(
        False, description="run the guest as soon as its state is in, before finish"
    )


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


class ResumeBody(BaseModel):
    """Where the source resumes a migration paused in post-copy."""

    model_config = ConfigDict(extra="forbid")
    uri: str = _URI


class RecoverBody(BaseModel):
    """Where the destination listens again for a migration paused in post-copy."""

    model_config = ConfigDict(extra="forbid")
    listen: str | None = _URI
    tcp_host: str | None = Field(None, min_length=1, max_length=255, pattern=r"^[\w.:\[\]-]+$")


class UriOut(BaseModel):
    """The URI the source resumes to."""

    uri: str


class TuningBody(BaseModel):
    """Migration parameters to change (None: unchanged)."""

    model_config = ConfigDict(extra="forbid")
    downtime_ms: int | None = Field(None, ge=1, le=3_600_000)
    bandwidth: int | None = Field(None, ge=0, le=1 << 62, description="bytes/s")
    compcache: int | None = Field(None, ge=0, le=1 << 62, description="bytes")
    postcopy_bandwidth: int | None = Field(
        None, ge=0, le=1 << 62, description="bytes/s of post-copy's transfer (0: unlimited)"
    )


class TuningOut(BaseModel):
    """The migration parameters now."""

    downtime_ms: int
    bandwidth: int
    compcache: int
    postcopy_bandwidth: int = Field(0, description="bytes/s (0: unlimited)")


class StatusOut(BaseModel):
    """The running (or last) outgoing migration (:class:`pyvirt.service.domain.migrate.
    LiveStatus`)."""

    status: str
    elapsed_ms: int
    transferred: int
    remaining: int
    total: int
    dirty_rate: int
    iteration: int
    expected_downtime_ms: int | None
    rate: int
    downtime_ms: int | None


class SourceRecoverBody(BaseModel):
    """What the source does after the destination could not take the guest over."""

    model_config = ConfigDict(extra="forbid")
    #: false: keep it paused (``paused (migrating)``): the destination may run it already
    running: bool = True


class ConfirmBody(BaseModel):
    """What the source does after the destination took the guest over."""

    model_config = ConfigDict(extra="forbid")
    undefine: bool = False


class MigrateBody(BaseModel):
    """A peer-to-peer migration the source daemon drives (``migrate --p2p``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)
    dest_uri: str = Field(min_length=1, max_length=4096, pattern=r"^pyvirt(\+\w+)?:/[^\s]*$",
                          description="the destination's connection URI")  # fmt: skip
    token: SecretStr | None = Field(None, max_length=4096, description="its API token")
    ca: SecretStr | None = Field(None, max_length=1 << 16, description="its CA (PEM)")
    insecure: bool = False
    live: bool = True
    offline: bool = False
    persistent: bool = False
    undefinesource: bool = False
    suspend: bool = False
    dname: str | None = Field(None, min_length=1, max_length=255)
    migrate_uri: str | None = Field(None, min_length=5, max_length=4096,
                                    pattern=r"^(tcp:|unix:/)[^\s]*$")  # fmt: skip
    policy: PolicyBody | None = None
    tunnelled: bool = Field(False, description="the stream through the daemons' channel")
    xml: str | None = Field(None, min_length=1, max_length=1 << 20,
                            description="the domain XML for the destination (--xml)")  # fmt: skip
    persistent_xml: str | None = Field(None, min_length=1, max_length=1 << 20,
                                       description="the XML to define there")  # fmt: skip
    copy_storage_all: bool = Field(False, description="copy the disks (non-shared storage)")
    copy_storage_inc: bool = Field(False, description="copy the top images only")
    migrate_disks: list[str] | None = Field(None, max_length=256,
                                            description="the disk targets to copy")  # fmt: skip
    postcopy_resume: bool = Field(False, description="resume a paused post-copy migration")
    tls: bool = Field(False, description="QEMU's TLS for the streams, trusting ``ca``")

    def destination(self) -> Destination:
        """Where to, with which credentials."""
        return Destination(
            self.dest_uri,
            token=self.token.get_secret_value() if self.token else None,
            ca_pem=self.ca.get_secret_value() if self.ca else None,
            insecure=self.insecure,
        )


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
        run_on_arrival=body.run_on_arrival,
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


@router.post("/api/v1/migrations/incoming/{name}/run", status_code=204, responses=_ERRORS)
def postcopy_run(request: Request, name: str) -> Response:
    """Run the guest of an incoming migration that switched to post-copy."""
    daemon_of(request).conn.domains.migration_postcopy_run(name)
    return Response(status_code=204)


@router.delete("/api/v1/migrations/incoming/{name}", status_code=204, responses=_ERRORS)
def abort(request: Request, name: str) -> Response:
    """Stop the incoming QEMU of a failed migration."""
    daemon_of(request).conn.domains.migration_abort(name)
    return Response(status_code=204)


@router.post("/api/v1/migrations/incoming/{name}/recover", response_model=UriOut, responses=_ERRORS)
def recover_incoming(request: Request, name: str, body: RecoverBody | None = None) -> UriOut:
    """Listen again for the source of a migration paused in post-copy."""
    opts = body or RecoverBody(listen=None, tcp_host=None)
    conn = daemon_of(request).conn
    uri = conn.domains.migration_recover_incoming(name, listen=opts.listen,
                                                  tcp_host=opts.tcp_host)  # fmt: skip
    return UriOut(uri=uri)


class TunnelOut(BaseModel):
    """A tunnelled migration stream that ended."""

    received: int = Field(description="bytes written into the incoming QEMU")


@router.post(
    "/api/v1/migrations/incoming/{name}/tunnel",
    response_model=TunnelOut,
    responses={**_ERRORS, 500: {"description": "the incoming QEMU closed the stream"}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)  # fmt: skip
async def tunnel(request: Request, name: str) -> TunnelOut:
    """Write the request body, a tunnelled migration's stream, into the incoming QEMU."""
    domains = daemon_of(request).conn.domains
    path = await run_in_threadpool(domains.migration_tunnel_socket, name)
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except OSError as err:
        raise OperationFailedError(
            f"cannot reach the incoming migration of domain '{name}': {err.strerror or err}",
            hint="the guest runs on the source",
        ) from None
    received = 0
    try:
        async for chunk in request.stream():
            writer.write(chunk)
            received += len(chunk)
            await writer.drain()  # the incoming QEMU's pace is the stream's
        if writer.can_write_eof():
            writer.write_eof()
        await writer.drain()
    except ClientDisconnect:  # the source broke it off: the incoming QEMU fails, is aborted
        log.info("tunnelled migration of '%s' broken off by the source after %d bytes", name,
                 received)  # fmt: skip
    except OSError as err:
        raise OperationFailedError(
            f"the incoming QEMU of domain '{name}' closed the migration stream after "
            f"{received} bytes: {err.strerror or err}",
            hint="the guest runs on the source; the destination's domain log says why",
        ) from None
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
    return TunnelOut(received=received)


# -- source ----------------------------------------------------------------------------------
@router.post(
    "/api/v1/domains/{name}/migration/resume",
    status_code=202,
    response_model=JobAccepted,
    responses=_ERRORS,
)
def resume(request: Request, name: str, body: ResumeBody) -> JSONResponse:
    """Go on with the migration paused in post-copy (a job, as perform)."""
    dom = daemon_of(request).conn.domains.get(name)
    dom.status()  # 404 now rather than in the job

    def work(job: Job) -> Any:
        return dom.migration_resume(body.uri, progress=job.report, cancel=job.token).to_json()

    reg = registry_of(daemon_of(request))
    job = reg.start("domain-migrate", f"domain/{dom.name}", work, owner=owner_of(request))
    return accepted(job)


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
    return accepted(job)


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
def recover(request: Request, name: str, body: SourceRecoverBody | None = None) -> Response:
    """Run the guest here again after the destination could not take it over (or keep it
    paused: ``running`` false)."""
    opts = body or SourceRecoverBody()
    daemon_of(request).conn.domains.get(name).migration_recover(running=opts.running)
    return Response(status_code=204)


@router.post(
    "/api/v1/domains/{name}/migrate", status_code=202, response_model=JobAccepted,
    responses=_ERRORS,
)  # fmt: skip
def migrate(request: Request, name: str, body: MigrateBody) -> JSONResponse:
    """Move the domain to another host, this daemon driving both halves (a job)."""
    conn = daemon_of(request).conn
    dom = conn.domains.get(name)
    dom.status()  # 404 now rather than in the job
    policy = body.policy.policy() if body.policy else None
    dest = body.destination()

    def work(job: Job) -> Any:
        result = migrate_p2p(
            conn, dom.name, dest, live=body.live, offline=body.offline, persistent=body.persistent,
            undefine_source=body.undefinesource, suspend=body.suspend, dname=body.dname,
            migrate_uri=body.migrate_uri, policy=policy, progress=job.report, cancel=job.token,
            tunnelled=body.tunnelled, xml=body.xml, persistent_xml=body.persistent_xml,
            copy_storage_all=body.copy_storage_all, copy_storage_inc=body.copy_storage_inc,
            migrate_disks=body.migrate_disks, postcopy_resume=body.postcopy_resume,
            tls=body.tls,
        )  # fmt: skip
        return {**(result.to_json() if result else {}), "destination": _public(dest.uri)}

    reg = registry_of(daemon_of(request))
    job = reg.start("domain-migrate", f"domain/{dom.name}", work, owner=owner_of(request))
    return accepted(job)


def _public(uri: str) -> str:
    """The URI without its query (nothing secret is in it, but nothing is needed either)."""
    return uri.split("?", 1)[0]


# -- while it runs ---------------------------------------------------------------------------
@router.get("/api/v1/domains/{name}/migration/tuning", responses=_ERRORS)
def get_tuning(request: Request, name: str) -> TuningOut:
    """The downtime limit, bandwidth and compression cache of the domain's migration."""
    t = daemon_of(request).conn.domains.get(name).migration_tuning()
    return TuningOut(**t.to_json())


@router.patch("/api/v1/domains/{name}/migration/tuning", responses=_ERRORS)
def set_tuning(request: Request, name: str, body: TuningBody) -> TuningOut:
    """Change them, also while a migration runs (the user's downtime wins over the
    policy's)."""
    dom = daemon_of(request).conn.domains.get(name)
    t = dom.set_migration_tuning(**body.model_dump())
    return TuningOut(**t.to_json())


@router.post("/api/v1/domains/{name}/migration/postcopy", status_code=204, responses=_ERRORS)
def postcopy(request: Request, name: str) -> Response:
    """Switch the running migration to post-copy."""
    daemon_of(request).conn.domains.get(name).migration_start_postcopy()
    return Response(status_code=204)


@router.get("/api/v1/domains/{name}/migration/status", responses=_ERRORS)
def status(request: Request, name: str) -> StatusOut:
    """Where the running (or last) outgoing migration is."""
    st = daemon_of(request).conn.domains.get(name).migration_status()
    return StatusOut(**st.to_json())


@router.get("/api/v1/domains/{name}/migration/completed", responses=_ERRORS)
def completed(request: Request, name: str) -> StatusOut | None:
    """What the last completed outgoing migration measured (``domjobinfo --completed``;
    null: none since the domain last started)."""
    st = daemon_of(request).conn.domains.get(name).migration_completed()
    return StatusOut(**st.to_json()) if st is not None else None


@router.post("/api/v1/domains/{name}/migration/cancel", status_code=204, responses=_ERRORS)
def cancel(request: Request, name: str) -> Response:
    """Cancel the outgoing migration; the guest runs on here (refused in post-copy)."""
    daemon_of(request).conn.domains.get(name).migration_cancel()
    return Response(status_code=204)


@router.post("/api/v1/domains/{name}/migration/postcopy/pause", status_code=204, responses=_ERRORS)
def pause_postcopy(request: Request, name: str) -> Response:
    """Pause the outgoing migration in post-copy; both sides wait for a resume."""
    daemon_of(request).conn.domains.get(name).migration_pause_postcopy()
    return Response(status_code=204)
