"""Live migration of a running domain between two pyvirt hosts (virsh ``migrate``).

A migration has a destination half and a source half, each a set of short steps on one host
(a :class:`~pyvirt.service.domain.manager.DomainManager`); :mod:`pyvirt.api.domain_migrate`
runs them in order over two connections, embedded or through the hosts' pyvirtd:

1. destination :func:`prepare`: start QEMU for the domain's live XML paused with
   ``-incoming defer`` and let it listen (``migrate-incoming``) on a TCP port QEMU picks
   itself (port 0: no check-then-bind race) or on a unix socket;
2. source :func:`perform`: ``migrate`` to that address and follow it until it completes (the
   source QEMU ends paused in ``postmigrate``), under the convergence policy of
   :class:`Policy`; a cancel or a failure cancels it and the guest runs on at the source;
3. destination :func:`finish`: wait until the destination QEMU has the whole state, make the
   domain persistent if asked, run the vCPUs (``running (migrated)``);
4. source :func:`confirm`: stop the source QEMU (``shut off (migrated)``), undefine it if
   asked. A failure in step 3 runs :func:`recover` (source resumes) and :func:`abort`
   (destination QEMU stopped, nothing defined): a failed migration never leaves the guest
   running twice or nowhere.

Both QEMUs open the same disk images when the storage is shared: QEMU keeps the incoming
side's images inactive (no writes, no write lock) until the source has let go of them.
Non-shared disks are copied (:mod:`~pyvirt.service.domain.migrate_storage`), the
destination checks it can run the guest before its QEMU starts
(:mod:`~pyvirt.service.domain.migrate_checks`), and ``--tls`` puts both streams on QEMU's
TLS (:mod:`~pyvirt.service.domain.migrate_tls`).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    MonitorError,
    NotFoundError,
    OperationFailedError,
)
from pyvirt.progress import CancelledError, CancelToken, Progress
from pyvirt.service.domain.types import DomainStatus, Reason

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.drivers.qemu.runtime import RuntimeRecord
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.service.domain.migrate_storage import DiskCopy, StorageCopy
    from pyvirt.service.domain.migrate_tls import TlsClient, TlsServer

# lazy: function-local imports marked ``# lazy``: QMP, the model and lxml load only when a
# migration runs (``start`` and ``list`` never import this module).

log = logging.getLogger(__name__)

__all__ = [
    "Incoming",
    "MigrationResult",
    "Policy",
    "abort",
    "confirm",
    "finish",
    "perform",
    "prepare",
    "recover",
    "renamed_xml",
    "storage_plan",
]

_POLL = 0.02


@dataclass(frozen=True)
class Incoming:
    """What :func:`prepare` made: the domain waiting for its state, and where to send it."""

    name: str
    #: QEMU's migration URI for the source (``tcp:HOST:PORT`` or ``unix:PATH``)
    uri: str
    #: where the source mirrors the copied disks (``--copy-storage-*``), else None
    storage: StorageCopy | None = None
    #: what the destination's checks found worth saying (a host-model CPU...)
    warnings: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "uri": self.uri,
            "storage": self.storage.to_json() if self.storage else None,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Policy:
    """How the source drives a migration towards its end (virsh's ``migrate`` options).

    Convergence: QEMU ends a pre-copy migration when what is left to send fits into
    ``downtime_ms`` at the measured bandwidth. When the remaining RAM stops shrinking
    (:attr:`stall_passes` passes over memory without a 10 % drop), the policy doubles the
    allowed downtime up to :attr:`max_downtime_ms`; with :attr:`auto_converge` QEMU also
    throttles the vCPUs; with :attr:`postcopy` it switches to post-copy after
    :attr:`postcopy_after_passes` passes. After :attr:`max_passes` passes (or
    :attr:`timeout` seconds, whose action is :attr:`timeout_action`) it gives up, cancels and
    says why; the guest runs on at the source.
    """

    #: bytes/s (None: QEMU's default, 128 MiB/s)
    bandwidth: int | None = None
    downtime_ms: int | None = None
    max_downtime_ms: int = 2000
    auto_converge: bool = False
    auto_converge_initial: int | None = None
    auto_converge_increment: int | None = None
    compressed: bool = False
    #: multifd channels (``--parallel --parallel-connections N``); None: one stream
    parallel: int | None = None
    postcopy: bool = False
    #: switch to post-copy after this many passes (``--postcopy-after-precopy``: 1)
    postcopy_after_passes: int | None = None
    stall_passes: int = 3
    max_passes: int = 60
    timeout: float | None = None
    #: ``suspend`` (pause the guest so the rest is sent at once), ``postcopy`` or ``abort``
    timeout_action: str = "suspend"
    #: pause the guest for the whole migration (not ``--live``)
    offline_copy: bool = False

    def capabilities(self) -> dict[str, bool]:
        """The migration capabilities this policy needs (set before ``migrate``)."""
        return {
            "auto_converge": self.auto_converge,
            "xbzrle": self.compressed,
            "multifd": self.parallel is not None,
            "postcopy": self.postcopy,
        }

    def incoming_capabilities(self) -> dict[str, bool]:
        """The capabilities the destination QEMU needs too."""
        # the images stay the source's until the destination runs: a failed hand-over
        # can still resume the guest at the source
        return {
            "multifd": self.parallel is not None,
            "postcopy": self.postcopy,
            "late_block_activate": True,
        }

    def parameters(self) -> dict[str, int]:
        """The migration parameters this policy sets before ``migrate`` (None left out)."""
        params = {
            "max_bandwidth": self.bandwidth,
            "downtime_limit_ms": self.downtime_ms,
            "multifd_channels": self.parallel,
            "throttle_initial": self.auto_converge_initial,
            "throttle_increment": self.auto_converge_increment,
        }
        return {k: v for k, v in params.items() if v is not None}


@dataclass(frozen=True)
class MigrationResult:
    """What the source saw of a completed migration (``domjobinfo --completed``)."""

    total_time_ms: int
    downtime_ms: int | None
    transferred: int
    passes: int
    downtime_limit_ms: int | None
    postcopy: bool

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "total_time_ms": self.total_time_ms,
            "downtime_ms": self.downtime_ms,
            "transferred": self.transferred,
            "passes": self.passes,
            "downtime_limit_ms": self.downtime_limit_ms,
            "postcopy": self.postcopy,
        }


def renamed_xml(xml: str, name: str) -> str:
    """Domain *xml* with its ``<name>`` set to *name* (``--dname``); the UUID stays."""
    from lxml import etree  # lazy

    from pyvirt.model.xmltree import parse_xml  # lazy

    root = parse_xml(xml, what="domain XML")
    node = root.find("name")
    if node is None:
        raise InvalidConfigError("the domain XML has no <name>")
    if node.text == name:
        return xml
    node.text = name
    return str(etree.tostring(root, encoding="unicode"))


# -- destination ---------------------------------------------------------------------------
def prepare(
    mgr: DomainManager,
    xml: str,
    *,
    listen: str | None = None,
    tcp_host: str | None = None,
    policy: Policy | None = None,
    copy: Sequence[DiskCopy] = (),
    incremental: bool = False,
    tls: TlsServer | bool | None = None,
) -> Incoming:
    """Start a QEMU waiting for the incoming state of the domain *xml* describes, after the
    checks of :mod:`~pyvirt.service.domain.migrate_checks` (nothing has moved yet).

    :param listen: QEMU's URI to listen on (``tcp:HOST:PORT``, port 0 for any, or
        ``unix:PATH``); None: ``tcp:`` on *tcp_host* with a port QEMU picks, or a unix
        socket in the domain's run directory when *tcp_host* is None too (both hosts share
        this machine)
    :param tcp_host: the address of this host as the source reaches it
    :param policy: the source's policy (post-copy and multifd need the destination's side)
    :param copy: the disks the source copies (``--copy-storage-*``): their images are made
        here and exported over NBD (:mod:`~pyvirt.service.domain.migrate_storage`)
    :param incremental: the source mirrors the top images only (``-inc``)
    :param tls: listen with QEMU's TLS (``--tls``; :mod:`~pyvirt.service.domain.migrate_tls`)
        with this identity (True: the daemon's self-signed pair of this state directory)
    :raises InvalidStateError: a domain of that name runs here
    :raises InvalidConfigError: the XML or the listen URI is not acceptable
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.model.domain import Domain  # lazy
    from pyvirt.service.domain import lifecycle, migrate_tls  # lazy
    from pyvirt.service.domain import migrate_storage as storage  # lazy
    from pyvirt.service.domain.migrate_checks import check_destination  # lazy
    from pyvirt.state.names import check_new_name  # lazy

    dom = Domain.from_xml(xml)
    check_new_name(dom.name, paths=mgr.paths)
    if listen is not None and not listen.startswith(("tcp:", "unix:")):
        raise InvalidConfigError(
            f"unsupported migration listen URI '{listen}'", hint="use tcp:HOST:PORT or unix:PATH"
        )
    server = migrate_tls.default_server(mgr) if tls is True else tls or None
    with mgr.namespace():
        mgr.check_unique(dom, allow_same_name=True)
        with mgr.locked(dom.name):
            if mgr.live_record(dom.name, cleanup=True) is not None:
                raise InvalidStateError(
                    f"domain '{dom.name}' is already running on the destination",
                    hint="a domain runs on one host at a time",
                )
            lifecycle.refuse_lost(mgr, dom.name, dom.uuid)
            warnings = check_destination(mgr, dom, {c.target for c in copy})
            created = storage.create_images(dom, copy)
            try:
                lifecycle.launch_incoming(mgr, dom, transient=not mgr.store.exists(dom.name))
            except BaseException:
                storage.remove_created(created)
                raise
            storage.save_created(mgr, dom.name, created)
            rec = mgr.record(dom.name)
            assert rec is not None
            if listen is None:
                if tcp_host:
                    listen = f"tcp:{_bracket(tcp_host)}:0"
                else:
                    from pyvirt.service.domain.dac import scratch_dir  # lazy

                    # QEMU binds it as the QEMU user: in its scratch directory
                    listen = f"unix:{scratch_dir(mgr, dom.name) / 'migrate-in.sock'}"
            try:
                with Monitor(rec.qmp_socket, name=dom.name) as mon:
                    mon.set_migration_capabilities(**(policy or Policy()).incoming_capabilities())
                    if policy is not None and policy.parallel is not None:
                        mon.set_migration_parameters(multifd_channels=policy.parallel)
                    if server is not None:
                        migrate_tls.server_creds(mgr, dom.name, mon, server)
                        mon.set_migration_parameters(tls_creds=migrate_tls.CREDS)
                    mon.migrate_incoming(listen)
                    uri = _listening_uri(mon, listen)
                    copying = None
                    if copy:
                        nbd = storage.export(mgr, dom.name, mon, uri, copy, tls=server is not None)
                        copying = storage.StorageCopy(
                            nbd, {c.target: c.target for c in copy}, incremental
                        )
            except BaseException:
                _stop_incoming(mgr, dom.name)
                raise
    return Incoming(dom.name, uri, copying, tuple(warnings))


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _listening_uri(mon: Monitor, listen: str) -> str:
    """The URI QEMU listens on (the port it picked for ``tcp:HOST:0``)."""
    if not listen.startswith("tcp:") or not listen.endswith(":0"):
        return listen
    for addr in mon.query_migrate().socket_addresses:
        if addr.get("type") == "inet" and addr.get("port"):
            host = listen[4:].rsplit(":", 1)[0]
            return f"tcp:{host}:{addr['port']}"
    raise OperationFailedError("QEMU did not say which port it listens on for the migration")


def finish(
    mgr: DomainManager,
    name: str,
    *,
    paused: bool = False,
    persistent_xml: str | None = None,
    timeout: float = 30.0,
) -> DomainStatus:
    """Run the migrated domain once QEMU has its whole state.

    :param paused: leave its vCPUs stopped (``--suspend``)
    :param persistent_xml: define it here with this XML (``--persistent``)
    :raises OperationFailedError: the incoming migration failed (the caller aborts)
    """
    from dataclasses import replace  # lazy

    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain import migrate_storage as storage  # lazy
    from pyvirt.service.domain import migrate_tls  # lazy
    from pyvirt.service.domain.types import State  # lazy

    name = mgr.resolve(name)  # NotFoundError for a name that is nothing here
    with mgr.locked(name):
        rec = _incoming_record(mgr, name)
        with Monitor(rec.qmp_socket, name=name) as mon:
            deadline = time.monotonic() + timeout
            while True:
                st = mon.query_migrate()
                if st.status == "completed":
                    break
                if st.status in ("failed", "cancelled") or time.monotonic() > deadline:
                    raise OperationFailedError(
                        f"the incoming migration of domain '{name}' {st.status}"
                        + (f": {st.error}" if st.error else ""),
                        hint="the guest runs on the source",
                    )
                time.sleep(_POLL)
    if persistent_xml is not None:  # the namespace lock comes before a domain's lock
        mgr.define(persistent_xml)
    with mgr.locked(name):
        rec = _incoming_record(mgr, name)
        rec.transient = not mgr.store.exists(name)
        with Monitor(rec.qmp_socket, name=name) as mon:
            storage.stop_export(mon)
            migrate_tls.drop_creds(mon)  # a later save (an fd migration) must be plain
            if not paused:
                mon.cont()
        storage.created_of(mgr, name)  # the images are the domain's now
        rec.paused = paused
        rec.reason = str(Reason.MIGRATED) if not paused else None
        mgr.rundir(name).save_record(rec)
        status = mgr.status(name)
    if not paused:
        return replace(status, state=State.RUNNING, reason=Reason.MIGRATED)
    return status


def _incoming_record(mgr: DomainManager, name: str) -> RuntimeRecord:
    rec = mgr.live_record(name, cleanup=True)
    if rec is None:
        raise NotFoundError(
            f"no incoming migration of domain '{name}' runs here",
            hint="the guest runs on the source",
        )
    return rec


def abort(mgr: DomainManager, name: str) -> None:
    """Stop the incoming QEMU of a failed or cancelled migration; nothing stays behind (a
    domain that was defined here before stays defined and shut off)."""
    name = mgr.resolve(name)
    with mgr.locked(name):
        _stop_incoming(mgr, name)


def _stop_incoming(mgr: DomainManager, name: str) -> None:
    from pyvirt.drivers.qemu import process  # lazy
    from pyvirt.service.domain import migrate_storage as storage  # lazy

    rec = mgr.record(name)
    if rec is None:
        return
    before = mgr.shutoff_reason(name)
    created = storage.created_of(mgr, name)
    mgr.rundir(name).mark_destroying()
    process.terminate(rec.pid, rec.starttime, timeout=3.0)
    mgr.reap(name, rec)
    storage.remove_created(created)  # a failed copy leaves no image behind
    if mgr.store.exists(name):
        _set_last_reason(mgr, name, before)


# -- source ----------------------------------------------------------------------------------
def perform(
    mgr: DomainManager,
    ident: str,
    uri: str,
    policy: Policy,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    storage: StorageCopy | None = None,
    tls: TlsClient | None = None,
) -> MigrationResult:
    """Send running domain *ident*'s state to the QEMU listening on *uri*; returns once it
    completed, with the source QEMU paused (``postmigrate``).

    With *storage* (``--copy-storage-*``) the disks are mirrored to the destination's NBD
    exports first; the RAM follows once every mirror is ready, and the mirrors end at
    switch-over (:mod:`~pyvirt.service.domain.migrate_storage`). Progress counts both.
    With *tls* both streams use QEMU's TLS, trusting the destination's CA
    (:mod:`~pyvirt.service.domain.migrate_tls`).

    :raises InvalidStateError: it is not running
    :raises CancelledError: cancelled (the guest runs on here)
    :raises OperationFailedError: QEMU failed or the migration did not converge (the guest
        runs on here)
    """
    from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError  # lazy
    from pyvirt.service.domain import migrate_storage as disks  # lazy
    from pyvirt.service.domain import migrate_tls  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(
                f"domain '{name}' is not running", hint="migrate a shut-off domain with --offline"
            )
        with Monitor(rec.qmp_socket, name=name) as mon:
            if tls is not None:
                try:
                    migrate_tls.client_creds(mgr, name, mon, tls)
                    mon.set_migration_parameters(
                        tls_creds=migrate_tls.CREDS, tls_hostname=tls.hostname
                    )
                except QmpCommandError as err:
                    migrate_tls.drop_creds(mon)
                    raise OperationFailedError(
                        f"cannot migrate domain '{name}' over TLS: {err.desc}",
                        hint="check the destination's CA (?ca=FILE); the guest runs on",
                    ) from err
            was_running = mon.query_status()[1]
            try:
                mon.set_migration_capabilities(
                    **policy.capabilities(), pause_before_switchover=storage is not None
                )
                params: dict[str, Any] = dict(policy.parameters())
                if params:
                    mon.set_migration_parameters(**params)
            except QmpCommandError as err:
                if tls is not None:
                    migrate_tls.drop_creds(mon)
                raise OperationFailedError(
                    f"cannot migrate domain '{name}': {err.desc}",
                    hint="QEMU here does not support one of the options asked for",
                ) from err
            if policy.offline_copy and was_running:
                mon.stop()
            jobs: list[str] = []
            try:
                if storage is not None:
                    creds = (migrate_tls.CREDS, tls.hostname) if tls is not None else None
                    disks.start_mirrors(mgr, name, mon, storage, progress, cancel, jobs, creds)
                try:
                    mon.migrate(uri)
                except QmpCommandError as err:
                    raise OperationFailedError(
                        f"cannot migrate domain '{name}': {err.desc}", hint="the guest runs on"
                    ) from err
                return _follow(mon, name, policy, progress, cancel, jobs)
            except BaseException:
                with contextlib.suppress(MonitorError):
                    if mon.query_migrate().status not in ("none", "completed", "failed",
                                                          "cancelled"):  # fmt: skip
                        mon.migrate_cancel()
                        _wait_finished(mon)
                    disks.drop_mirrors(mon, jobs)
                    if storage is not None:  # later migrations (a save) must not pause
                        mon.set_migration_capabilities(**policy.capabilities())
                    if tls is not None:
                        migrate_tls.drop_creds(mon)
                    if was_running and mon.query_status()[0] in ("paused", "postmigrate"):
                        mon.cont()
                raise


def _follow(
    mon: Monitor,
    name: str,
    policy: Policy,
    progress: Progress | None,
    cancel: CancelToken | None,
    jobs: Sequence[str] = (),
) -> MigrationResult:
    """Follow a migration to its end, applying *policy*; end the disk mirrors *jobs* at
    switch-over."""
    from pyvirt.service.domain import migrate_storage as disks  # lazy

    started = time.monotonic()
    downtime = policy.downtime_ms or 300
    best_remaining: int | None = None
    stalled = 0
    last_pass = 0
    in_postcopy = False
    suspended = False
    while True:
        st = mon.query_migrate()
        if st.finished:
            break
        if st.status == "pre-switchover":  # the vCPUs are stopped: the disks catch up
            disks.complete_mirrors(mon, jobs, name)
            mon.migrate_continue()
            jobs = ()
            time.sleep(_POLL)
            continue
        passes = st.passes
        if progress is not None and st.total:
            done, total, _ = disks.disk_progress(mon, jobs, name) if jobs else (0, 0, True)
            progress(st.total - st.remaining + done, st.total + total)
        if cancel is not None and cancel.cancelled:
            raise CancelledError(f"migration of domain '{name}' cancelled; it runs on the source")
        if st.status == "active" and passes > last_pass and not in_postcopy:
            last_pass = passes
            remaining = st.remaining
            if best_remaining is None or remaining < best_remaining * 0.9:
                best_remaining, stalled = remaining, 0
            else:
                stalled += 1
            if policy.postcopy and passes >= (policy.postcopy_after_passes or 1 << 30):
                mon.migrate_start_postcopy()
                in_postcopy = True
            elif stalled >= policy.stall_passes and downtime < policy.max_downtime_ms:
                downtime = min(downtime * 2, policy.max_downtime_ms)
                mon.set_migration_parameters(downtime_limit_ms=downtime)
                log.info("migration of '%s': downtime limit raised to %d ms", name, downtime)
                stalled = 0
            elif passes >= policy.max_passes:
                raise OperationFailedError(
                    f"migration of domain '{name}' did not converge after {passes} passes over "
                    f"its memory (downtime limit {downtime} ms)",
                    hint="raise --bandwidth, allow --postcopy or --auto-converge, or migrate "
                    "while the guest is less busy; the guest runs on the source",
                )
        if (
            policy.timeout is not None
            and not suspended
            and not in_postcopy
            and time.monotonic() - started > policy.timeout
        ):
            if policy.timeout_action == "abort":
                raise OperationFailedError(
                    f"migration of domain '{name}' did not finish in {policy.timeout:g} s",
                    hint="the guest runs on the source",
                )
            if policy.timeout_action == "postcopy" and policy.postcopy:
                mon.migrate_start_postcopy()
                in_postcopy = True
            else:
                mon.stop()  # the rest goes at once; the destination runs it
                suspended = True
        time.sleep(_POLL)
    if st.status != "completed":
        raise OperationFailedError(
            f"migration of domain '{name}' failed: {st.error or st.status}",
            hint="the guest runs on the source",
        )
    if progress is not None:
        progress(st.total, st.total)
    return MigrationResult(
        total_time_ms=st.total_time_ms,
        downtime_ms=st.downtime_ms,
        transferred=st.transferred,
        passes=st.passes,
        downtime_limit_ms=downtime,
        postcopy=in_postcopy,
    )


def _wait_finished(mon: Monitor, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not mon.query_migrate().finished and time.monotonic() < deadline:
        time.sleep(_POLL)


def confirm(mgr: DomainManager, name: str, *, undefine: bool = False) -> None:
    """Stop the source QEMU after a completed migration (``shut off (migrated)``); with
    *undefine* remove the definition here too (``--undefinesource``).

    :raises InvalidStateError: no completed outgoing migration of *name* waits here
    """
    from pyvirt.drivers.qemu import process  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(name)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise _no_migration(name)
        with Monitor(rec.qmp_socket, name=name) as mon:
            if mon.query_migrate().status != "completed":
                raise _no_migration(name)
            mgr.rundir(name).mark_destroying()
            with contextlib.suppress(MonitorError):
                mon.quit()
        process.terminate(rec.pid, rec.starttime, timeout=10.0)
        mgr.reap(name, rec)
        defined = mgr.store.exists(name)
        if defined:
            _set_last_reason(mgr, name, Reason.MIGRATED)
    if undefine and defined:
        mgr.undefine(name, managed_save=True)


def _no_migration(name: str) -> InvalidStateError:
    return InvalidStateError(
        f"domain '{name}' has no completed outgoing migration",
        hint="confirm follows a completed perform step",
    )


def recover(mgr: DomainManager, name: str, *, running: bool = True) -> None:
    """Run the source guest again after the destination could not take it over.

    :raises InvalidStateError: it is not running here
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(name)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(f"domain '{name}' is not running on the source")
        with Monitor(rec.qmp_socket, name=name) as mon:
            if running and mon.query_status()[0] in ("paused", "postmigrate"):
                mon.cont()


def _set_last_reason(mgr: DomainManager, name: str, reason: Reason) -> None:
    import json  # lazy

    from pyvirt.state.atomic import atomic_write  # lazy

    mgr.paths.domain_run_root.mkdir(parents=True, exist_ok=True)
    atomic_write(
        mgr.paths.domain_last_state(name),
        json.dumps({"state": "shut off", "reason": str(reason), "at": time.time()}).encode(),
        sync=False,
    )


def storage_plan(
    mgr: DomainManager, ident: str, targets: Sequence[str] | None, *, incremental: bool = False
) -> list[DiskCopy]:
    """Source side of ``--copy-storage-*``: the disks of running domain *ident* to copy
    (*targets*, ``--migrate-disks``, or every writable image disk) and what the destination
    must create for them.

    :raises InvalidStateError: it is not running
    :raises NotFoundError: a named disk is not the domain's
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy
    from pyvirt.service.domain import migrate_storage as disks  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(
                f"domain '{name}' is not running", hint="migrate a shut-off domain with --offline"
            )
        with Monitor(rec.qmp_socket, name=name) as mon:
            return disks.plan(mgr, name, mon, targets, incremental)
