"""Domain resources: ``/api/v1/domains`` (list, define, create) and ``/api/v1/domains/{name}``
(inspection, XML with revisions, lifecycle verbs as actions).

Handlers are plain ``def`` (FastAPI runs them in its thread pool) and call the embedded
public API (``daemon.conn``); the per-domain file locks serialize them with each other and
with CLIs working on the same state directory. Results are the API types' ``to_json()``.

Revisions: ``GET .../{name}`` and ``GET .../{name}/xml`` send the persistent definition's
revision as ``ETag``; ``PUT .../{name}/xml`` with ``If-Match`` redefines only if the definition
is still at that revision, else 412 (``precondition_failed``) and nothing is written. Without
``If-Match`` the PUT is unconditional.

Events: definitions published here (``Defined Added|Updated|Renamed``, ``Undefined
Removed|Renamed``); start/stop events come from the supervisor, which sees QEMU's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Request, Response
from fastapi.responses import JSONResponse

from pyvirt.api.domains import Domain, DomainStatus, Reason, State
from pyvirt.daemon.context import Daemon, daemon_of
from pyvirt.daemon.routes import domain_models as m
from pyvirt.errors import InvalidStateError, NotFoundError, PreconditionFailedError, PyvirtError

__all__ = ["router", "status_json"]

router = APIRouter(prefix="/api/v1/domains", tags=["domains"])

_ERRORS: dict[int | str, dict[str, str]] = {
    404: {"description": 'no such domain (`{"error","hint","code"}`)'},
    409: {"description": "not possible in the domain's state, or the name is taken"},
}
_XML = {"content": {"application/xml": {"schema": {"type": "string"}}}}
XmlBody = Annotated[bytes, Body(media_type="application/xml", description="libvirt domain XML")]


def _domain(request: Request, name: str) -> tuple[Daemon, Domain]:
    daemon = daemon_of(request)
    return daemon, daemon.conn.domains.get(name)


def _etag(dom: Domain) -> dict[str, str]:
    """The ``ETag`` header of a persistent definition (none for a transient domain)."""
    try:
        return {"ETag": f'"{dom.revision()}"'}
    except InvalidStateError:
        return {}


def _if_match(header: str | None) -> str | None:
    """The revision named by ``If-Match`` (``None``: absent or ``*``, i.e. unconditional)."""
    if header is None:
        return None
    value = header.strip()
    if value == "*":
        return None
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"')


# -- the collection ------------------------------------------------------------------------
@router.get("", response_model=list[m.DomainStatus], summary="list domains")
def list_domains(
    request: Request,
    all_: Annotated[bool, Query(alias="all", description="shut-off domains too")] = False,
    state: Annotated[
        list[State] | None, Query(description="only these states (overrides all)")
    ] = None,
    persistent: bool | None = None,
    autostart: bool | None = None,
    uuids: Annotated[
        bool, Query(description="false: no UUID for shut-off domains (fast with thousands)")
    ] = True,
) -> Response:
    """Every domain's status (``list``): running ones first by id, then by name."""
    if state:
        wanted: set[State] = set(state)
    elif all_:
        wanted = set(State)
    else:
        wanted = {State.RUNNING, State.PAUSED}
    rows = daemon_of(request).conn.domains.list(
        states=wanted, persistent=persistent, autostart=autostart, with_uuids=uuids
    )
    return JSONResponse([status_json(s) for s in rows])


def status_json(st: DomainStatus) -> dict[str, Any]:
    """``st.to_json()`` without ``dataclasses.asdict`` (its deep copy costs ~30 ms for 1000
    rows); a unit test keeps the two equal."""
    out: dict[str, Any] = {
        "name": st.name, "uuid": st.uuid, "id": st.id, "state": st.state.value,
        "reason": st.reason.value, "persistent": st.persistent, "autostart": st.autostart,
        "pid": st.pid,
    }  # fmt: skip
    if st.problem is not None:
        out["problem"] = st.problem
    return out


@router.post(
    "",
    status_code=201,
    response_model=m.DomainDefined,
    summary="define a domain (or create and start one with create=true)",
    responses={400: {"description": "invalid XML"},
               412: {"description": "If-Match/If-None-Match not met"}, **_ERRORS},
)  # fmt: skip
def define_domain(
    request: Request,
    response: Response,
    xml: XmlBody,
    create: Annotated[bool, Query(description="create and start (transient)")] = False,
    paused: Annotated[bool, Query(description="with create: leave it paused")] = False,
    force: Annotated[
        bool, Query(description="accept what the NUMA advisor or host-path checks refuse")
    ] = False,
    if_match: Annotated[
        str | None, Header(description='redefine only if still at "REVISION"')
    ] = None,
    if_none_match: Annotated[
        str | None, Header(description="*: define only if no such domain exists")
    ] = None,
) -> m.DomainDefined:
    """``define`` (a persistent definition; redefines an existing one) or ``create``."""
    daemon = daemon_of(request)
    domains = daemon.conn.domains
    if create:
        dom = domains.create(xml, paused=paused)
        warnings: list[str] = []
    else:
        dom, warnings = _define(daemon, xml, force, if_match, if_none_match)
    response.headers["Location"] = f"/api/v1/domains/{dom.name}"
    return m.DomainDefined(name=dom.name, uuid=dom.status().uuid, warnings=warnings)


def _define(
    daemon: Daemon, xml: bytes, force: bool, if_match: str | None, if_none_match: str | None
) -> tuple[Domain, list[str]]:
    """Define under the request's conditions; publish ``Defined Added|Updated``."""
    domains = daemon.conn.domains
    if if_match is None and if_none_match is None:  # unconditional: no parse before define's
        name = domains.name_of(xml)
        try:
            before = _revision(daemon, name) if name else None
        except PyvirtError:  # a name define refuses: let it say why
            name = None
        if name:
            dom, warnings = domains.define(xml, force=force, expect_revision=False)
            daemon.bus.publish("lifecycle", "domain", dom.name, "Defined",
                               "Added" if before is None else "Updated")  # fmt: skip
            return dom, warnings
    name = domains.validate(xml)
    before = _revision(daemon, name)
    conditional = True
    expect: str | None = None  # with ``conditional``: None = must not be defined
    if if_none_match is not None and if_none_match.strip() == "*":
        expect = None
    elif if_match is not None:
        expect = _if_match(if_match)
        if expect is None:  # "*": whatever revision it has, but it must exist
            if before is None:
                raise PreconditionFailedError(
                    f"domain '{name}' is not defined; nothing was written"
                )
            expect = before
    else:
        conditional = False
    if conditional and before != expect:
        raise _stale(name, expect)
    try:
        dom, warnings = domains.define(
            xml, force=force, expect_revision=expect if conditional else False
        )
    except InvalidStateError:
        if conditional and _revision(daemon, name) != expect:
            raise _stale(name, expect) from None  # changed between the check and the write
        raise
    daemon.bus.publish("lifecycle", "domain", dom.name, "Defined",
                       "Added" if before is None else "Updated")  # fmt: skip
    return dom, warnings


def _revision(daemon: Daemon, name: str) -> str | None:
    """The revision of ``name``'s persistent definition (``None``: not defined)."""
    try:
        return daemon.conn.domains.get(name).revision()
    except (NotFoundError, InvalidStateError):
        return None


def _stale(name: str, expect: str | None) -> PreconditionFailedError:
    if expect is None:
        return PreconditionFailedError(
            f"domain '{name}' is already defined; nothing was written",
            hint="drop If-None-Match to redefine it",
        )
    return PreconditionFailedError(
        f"domain '{name}' changed since revision {expect}; nothing was written",
        hint="read it again (GET .../xml gives the current ETag) and retry",
    )


# -- one domain ------------------------------------------------------------------------------
@router.get("/{name}", response_model=m.DomainInfo, summary="dominfo", responses=_ERRORS)
def get_domain(request: Request, name: str) -> Response:
    """The status and a summary of the definition (``dominfo``); ``ETag``: its revision."""
    _, dom = _domain(request, name)
    return JSONResponse(dom.info().to_json(), headers=_etag(dom))  # one row: to_json is fine


@router.get("/{name}/state", response_model=m.DomainStatus, summary="domstate",
            responses=_ERRORS)  # fmt: skip
def get_state(request: Request, name: str) -> Response:
    """The state and its reason (``domstate --reason``), with the rest of the status
    (``list``'s row: name, UUID, id, persistence, autostart): cheap, no definition parsed."""
    _, dom = _domain(request, name)
    return _status(dom)


@router.get("/{name}/xml", summary="dumpxml", responses={200: _XML, **_ERRORS},
            response_class=Response)  # fmt: skip
def get_xml(
    request: Request, name: str, inactive: bool = False, security_info: bool = False
) -> Response:
    """The definition (``dumpxml``): the live one while it runs unless ``inactive``;
    ``ETag``: the persistent definition's revision."""
    _, dom = _domain(request, name)
    xml = dom.xml_desc(inactive=inactive, security_info=security_info)
    return Response(xml, media_type="application/xml", headers=_etag(dom))


@router.put(
    "/{name}/xml",
    response_model=m.Redefined,
    summary="redefine (edit)",
    responses={412: {"description": "If-Match names a stale revision"}, **_ERRORS},
)
def put_xml(
    request: Request,
    response: Response,
    name: str,
    xml: XmlBody,
    if_match: Annotated[str | None, Header(description='"REVISION" from the ETag')] = None,
) -> m.Redefined:
    """Replace the definition, keeping the name; with ``If-Match`` only if it is still at
    that revision (else 412, nothing written)."""
    daemon, dom = _domain(request, name)
    expect = _if_match(if_match)
    if expect is not None:
        _check_revision(dom, expect)
    try:
        warnings = dom.redefine(xml, expect_revision=expect)
    except InvalidStateError:
        if expect is not None:
            _check_revision(dom, expect)  # changed between the check and the write: 412
        raise
    daemon.bus.publish("lifecycle", "domain", dom.name, "Defined", "Updated")
    response.headers.update(_etag(dom))
    return m.Redefined(warnings=warnings)


def _check_revision(dom: Domain, expect: str) -> None:
    try:
        current: str | None = dom.revision()
    except InvalidStateError:
        current = None
    if current != expect:
        raise _stale(dom.name, expect)


@router.delete("/{name}", response_model=m.Undefined, summary="undefine", responses=_ERRORS)
def undefine_domain(
    request: Request,
    name: str,
    remove_all_storage: bool = False,
    storage: Annotated[
        list[str] | None, Query(description="delete only these disks (targets or paths)")
    ] = None,
    force: Annotated[bool, Query(description="remove even a definition that cannot be read")] = (
        False
    ),
    snapshots_metadata: Annotated[
        bool, Query(description="also remove the domain's snapshot metadata")
    ] = False,
    managed_save: Annotated[
        bool, Query(description="also discard the domain's managed save image")
    ] = False,
    nvram: Annotated[bool, Query(description="also delete the domain's UEFI variables file")] = (
        False
    ),
    keep_nvram: Annotated[bool, Query(description="keep the domain's UEFI variables file")] = (
        False
    ),
    tpm: Annotated[bool, Query(description="delete the TPM state even if persistent")] = False,
    keep_tpm: Annotated[bool, Query(description="keep the domain's TPM state")] = False,
) -> m.Undefined:
    """Remove the persistent definition (a running domain becomes transient)."""
    daemon, dom = _domain(request, name)
    removed = dom.undefine(
        remove_all_storage=remove_all_storage,
        storage=storage or (),
        force=force,
        snapshots_metadata=snapshots_metadata,
        managed_save=managed_save,
        nvram=nvram,
        keep_nvram=keep_nvram,
        tpm=tpm,
        keep_tpm=keep_tpm,
    )
    daemon.bus.publish("lifecycle", "domain", dom.name, "Undefined", "Removed")
    return m.Undefined(removed=removed)


# -- actions: each answers with the domain's status afterwards -----------------------------------
def _status(dom: Domain) -> Response:
    return JSONResponse(status_json(dom.status()))


@router.post("/{name}/start", response_model=m.DomainStatus, responses=_ERRORS)
def start(request: Request, name: str, body: m.StartRequest | None = None) -> Response:
    """Start the shut-off, defined domain (``start``)."""
    _, dom = _domain(request, name)
    body = body or m.StartRequest(paused=False, force_boot=False)
    return JSONResponse(status_json(dom.start(paused=body.paused, force_boot=body.force_boot)))


@router.post("/{name}/shutdown", response_model=m.DomainStatus, responses=_ERRORS)
def shutdown(request: Request, name: str, body: m.ShutdownRequest | None = None) -> Response:
    """Ask the guest to power off; returns at once (``shutdown``)."""
    _, dom = _domain(request, name)
    dom.shutdown(body.mode if body else None)
    return _status(dom)


@router.post("/{name}/destroy", response_model=m.DomainStatus, responses=_ERRORS)
def destroy(request: Request, name: str, body: m.DestroyRequest | None = None) -> Response:
    """Stop QEMU at once (``destroy``). A transient domain no longer exists afterwards: its
    last status (shut off, destroyed) is returned."""
    # answers once QEMU is gone: the stop work (hooks, run directory) is left to the
    # supervisor when it watches the domain (it runs the moment QEMU's events end)
    from pyvirt.daemon.supervisor import watches  # lazy: routes load before the supervisor

    daemon, dom = _domain(request, name)
    before = dom.status()
    graceful = body.graceful if body else False
    dom.destroy(graceful=graceful, stop_work=not watches(daemon, before.name))
    try:
        return _status(dom)
    except NotFoundError:  # transient: gone with its QEMU
        gone = replace(before, id=None, pid=None, state=State.SHUTOFF, reason=Reason.DESTROYED)
        return JSONResponse(status_json(gone))


def _action(verb: str, doc: str) -> None:
    def handler(request: Request, name: str) -> Response:
        _, dom = _domain(request, name)
        getattr(dom, verb)()
        return _status(dom)

    handler.__doc__ = doc
    handler.__name__ = verb
    router.add_api_route(f"/{{name}}/{verb}", handler, methods=["POST"],
                         response_model=m.DomainStatus, responses=_ERRORS)  # fmt: skip


_action("reboot", "Reboot the guest (``reboot``).")
_action("reset", "Reset the machine like its reset button (``reset``).")
_action("suspend", "Pause the vCPUs (``suspend``).")
_action("resume", "Run the vCPUs of a paused domain again (``resume``).")


@router.post("/{name}/rename", response_model=m.DomainStatus, responses=_ERRORS)
def rename(request: Request, name: str, body: m.RenameRequest) -> Response:
    """Rename the shut-off, persistent domain (``domrename``)."""
    daemon, dom = _domain(request, name)
    old = dom.name
    dom.rename(body.new_name)
    daemon.bus.publish("lifecycle", "domain", old, "Undefined", "Renamed", new_name=dom.name)
    daemon.bus.publish("lifecycle", "domain", dom.name, "Defined", "Renamed", old_name=old)
    return _status(dom)


@router.put("/{name}/autostart", response_model=m.DomainStatus, responses=_ERRORS)
def set_autostart(request: Request, name: str, body: m.AutostartRequest) -> Response:
    """Start the domain (or not) when the host starts (``autostart [--disable]``)."""
    _, dom = _domain(request, name)
    dom.set_autostart(body.enabled)
    return _status(dom)
