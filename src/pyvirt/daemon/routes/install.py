"""``/api/v1/install``: the New VM wizard over ``pyvirt install``'s code (issue 13).

- ``GET  /api/v1/install/os-variants``: the OS variant table with its defaults;
- ``POST /api/v1/install/preview`` (the wizard's choices, :class:`WizardBody`):
  ``{"name","xml","install_xml","warnings"}``, what ``--print-xml`` prints; nothing changes;
- ``POST /api/v1/install/fetch`` ``{"location": URL}``: a job fetching a network install
  tree's kernel and initrd (result ``{"location","tree"}``);
- ``POST /api/v1/install`` (the choices and ``customize``): a job that fetches the location if
  needed, creates the disks, defines the VM and starts the install (with ``customize``: only
  defines it); a two-phase install's job ends once the installer stopped and the final
  definition booted (cancel: stop waiting);
- ``POST /api/v1/install/{name}/begin``: "Begin Installation" of a customized VM, a job.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.install import InstallJob
from pyvirt.api.wizard import (
    WizardChoices,
    fetch_location,
    is_url,
    location_is_local,
    os_variants,
    prepare,
)
from pyvirt.daemon.context import daemon_of
from pyvirt.daemon.jobs import Job, registry_of
from pyvirt.daemon.models import ERRORS
from pyvirt.daemon.routes.jobs import JobAccepted, accepted, owner_of
from pyvirt.errors import InvalidConfigError, NotFoundError

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/install", tags=["install"], responses=ERRORS)

_S = Field(None, max_length=4096)
#: plans of VMs defined for "Customize configuration before install", by daemon and name
_PENDING: dict[tuple[int, str], InstallJob] = {}
_LOCK = threading.Lock()


class WizardBody(BaseModel):
    """The New VM wizard's choices (see :class:`pyvirt.api.wizard.WizardChoices`)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=255)
    method: str = Field("import", max_length=16)
    media_path: str | None = _S
    media_pool: str | None = _S
    media_vol: str | None = _S
    location: str | None = _S
    extra_args: str | None = _S
    disk_pool: str | None = _S
    disk_vol: str | None = _S
    disk_path: str | None = _S
    disk_size_gb: float | None = Field(None, ge=0, le=65536)
    disk_bus: str | None = _S
    os_variant: str | None = _S
    memory_mib: int | None = Field(None, ge=1, le=16 * 1024 * 1024)
    vcpus: int | None = Field(None, ge=1, le=4096)
    network: str | None = _S
    nic_model: str | None = _S
    kernel: str | None = _S
    initrd: str | None = _S
    kernel_args: str | None = _S
    uefi: bool = False
    virt_type: str | None = _S
    cloud_user: str | None = _S
    cloud_password: str | None = _S
    cloud_ssh_keys: list[str] = Field(default_factory=list, max_length=32)
    #: "Customize configuration before install": define only, then ``.../begin``
    customize: bool = False

    def choices(self) -> WizardChoices:
        """As the API's type."""
        return WizardChoices.from_json(self.model_dump(exclude={"customize"}))


class Preview(BaseModel):
    """What the install would define (``xml``) and first boot (``install_xml``)."""

    name: str
    xml: str
    install_xml: str | None
    warnings: list[str]


class FetchBody(BaseModel):
    """A network install location."""

    model_config = ConfigDict(extra="forbid")
    location: str = Field(min_length=1, max_length=4096)


def _finish_install(plan: InstallJob, job: Job) -> bool:
    """Wait for the install phase to end, then boot the final definition; False when the
    job was cancelled first (the guest goes on)."""
    if not plan.has_install_phase:
        return True
    while not job.token.cancelled:
        if plan.wait(0):
            return True
        time.sleep(1.0)
    return False


@router.get("/os-variants")
def list_os_variants() -> list[dict[str, Any]]:
    """The OS variants with their defaults (disk bus, NIC model, memory, vCPUs, firmware)."""
    return os_variants()


@router.post("/preview", response_model=Preview)
def preview(request: Request, body: WizardBody) -> Preview:
    """The definition the wizard's choices make (``--print-xml``); nothing changes."""
    plan = prepare(daemon_of(request).conn, body.choices())
    return Preview(name=plan.name, xml=plan.final_xml, install_xml=plan.install_xml,
                   warnings=plan.warnings)  # fmt: skip


@router.post("/fetch", status_code=202, response_model=JobAccepted)
def fetch(request: Request, body: FetchBody) -> JSONResponse:
    """Fetch a network install tree's kernel and initrd as a job."""
    daemon = daemon_of(request)
    if not is_url(body.location):
        raise InvalidConfigError(f"install location '{body.location}' is not an http(s) URL")

    def work(job: Job) -> Any:
        tree = fetch_location(daemon.conn, body.location, progress=job.report, cancel=job.token)
        return {"location": body.location, "tree": tree}

    reg = registry_of(daemon)
    return accepted(reg.start("install-fetch", body.location, work, owner=owner_of(request)))


@router.post("", status_code=202, response_model=JobAccepted)
def install(request: Request, body: WizardBody) -> JSONResponse:
    """Create the VM the choices describe as a job ("Finish"): fetch the location if needed,
    create the disks, define, start the install (``customize``: define only)."""
    daemon = daemon_of(request)
    conn = daemon.conn
    choices = body.choices()
    planned = prepare(conn, choices) if location_is_local(choices) else None

    def work(job: Job) -> Any:
        plan = planned
        if plan is None:
            assert choices.location is not None
            fetch_location(conn, choices.location, progress=job.report, cancel=job.token)
            plan = prepare(conn, choices)
        job.token.check("install")
        result = plan.run(start=not body.customize)
        daemon.bus.publish("lifecycle", "domain", plan.name, "Defined", "Added")
        out = {"name": plan.name, "defined": result.defined, "started": result.started,
               "generated_password": result.generated_password, "warnings": plan.warnings,
               "booted_final": False}  # fmt: skip
        if body.customize:
            with _LOCK:
                _PENDING[(id(daemon), plan.name)] = plan
            return out
        out["booted_final"] = _finish_install(plan, job)
        return out

    reg = registry_of(daemon)
    job = reg.start("install", f"domain/{body.name}", work, owner=owner_of(request))
    return accepted(job)


@router.post("/{name}/begin", status_code=202, response_model=JobAccepted)
def begin(request: Request, name: str) -> JSONResponse:
    """ "Begin Installation" of a VM defined with ``customize``, from its current definition."""
    daemon = daemon_of(request)
    with _LOCK:
        plan = _PENDING.get((id(daemon), name))
    if plan is None:
        raise NotFoundError(
            f"no install of '{name}' waits to begin",
            hint="it was begun already, or the daemon restarted: use Run",
        )
    daemon.conn.domains.get(name)  # still defined?

    def work(job: Job) -> Any:
        plan.begin()
        with _LOCK:
            _PENDING.pop((id(daemon), name), None)
        return {"name": name, "booted_final": _finish_install(plan, job)}

    reg = registry_of(daemon)
    return accepted(reg.start("install", f"domain/{name}", work, owner=owner_of(request)))
