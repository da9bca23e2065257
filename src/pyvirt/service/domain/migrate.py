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
   domain persistent if asked, run the vCPUs (``running (migrated)``); in post-copy the
   destination runs the guest earlier, at the switch (:func:`run_postcopy`, called back by
   step 2 once the source is in ``postcopy-active``: ``running (post-copy)`` there,
   ``paused (post-copy)`` here);
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    MonitorError,
    NotFoundError,
    OperationFailedError,
    UnsupportedError,
)
from pyvirt.progress import CancelledError, CancelToken, Progress
from pyvirt.service.domain.types import DomainStatus, Reason

if TYPE_CHECKING:
    from pathlib import Path

    from pyvirt.drivers.qemu.monitor.migration import MigrationParameters, MigrationStatus
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
    "LiveStatus",
    "MigrationResult",
    "Policy",
    "Tuning",
    "abort",
    "cancel",
    "confirm",
    "finish",
    "live_status",
    "pause_postcopy",
    "perform",
    "prepare",
    "recover",
    "recover_incoming",
    "renamed_xml",
    "resume",
    "run_postcopy",
    "set_tuning",
    "start_postcopy",
    "storage_plan",
    "tuning",
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

    Convergence: QEMU ends a pre-copy migration when what is left to send fits into the
    downtime limit at the measured bandwidth. The policy starts low, at
    :attr:`initial_downtime_ms` (``downtime_ms`` when given; the source QEMU's own limit when
    a user changed it from QEMU's default before the migration). When the remaining RAM
    stops shrinking (:attr:`stall_passes` passes over memory without a 10 % drop), the
    policy doubles the allowed downtime up to :attr:`max_downtime_ms`; with
    :attr:`auto_converge` QEMU also throttles the vCPUs; with :attr:`postcopy` it switches
    to post-copy after :attr:`postcopy_after_passes` passes. After :attr:`max_passes` passes (or
    :attr:`timeout` seconds, whose action is :attr:`timeout_action`) it gives up, cancels and
    says why; the guest runs on at the source.
    """

    #: bytes/s (None: QEMU's default, 128 MiB/s)
    bandwidth: int | None = None
    downtime_ms: int | None = None
    #: the downtime limit (ms) to start from when neither ``downtime_ms`` nor a
    #: ``migrate-setmaxdowntime`` before the migration set one (Nova's first step too: 500
    #: ms in 10 steps). Lower than QEMU's 300 ms: QEMU checks the limit as it goes, and with
    #: 300 ms it often stops the guest in the middle of a 100 ms bandwidth window with 20-30
    #: MB still to send; with 100 ms, ~13 MB. From 50 ms an idle guest's last pass starts
    #: with almost nothing left: its pause was 16 ms shorter than from 100 ms, the move no
    #: longer (docs/migration.md, "Stop 20")
    initial_downtime_ms: int = 50
    max_downtime_ms: int = 2000
    auto_converge: bool = False
    auto_converge_initial: int | None = None
    auto_converge_increment: int | None = None
    compressed: bool = False
    #: multifd channels (``--parallel --parallel-connections N``); None: one stream
    parallel: int | None = None
    postcopy: bool = False
    #: bytes/s of post-copy's background transfer (``--postcopy-bandwidth``; None: unlimited)
    postcopy_bandwidth: int | None = None
    #: switch to post-copy once this many passes completed (``--postcopy-after-precopy``: 1)
    postcopy_after_passes: int | None = None
    stall_passes: int = 3
    max_passes: int = 60
    timeout: float | None = None
    #: ``suspend`` (pause the guest so the rest is sent at once), ``postcopy`` or ``abort``
    timeout_action: str = "suspend"
    #: pause the guest for the whole migration (not ``--live``)
    offline_copy: bool = False
    #: cancel it when the guest stops on an I/O error of a disk (``--abort-on-error``; else
    #: the paused guest migrates as it is)
    abort_on_error: bool = False
    #: the caller moves a cluster domain's ownership at the switch (``cluster evacuate``);
    #: else a cluster domain is refused (:func:`pyvirt.service.cluster.guard.before_migrate`)
    cluster_handover: bool = False

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
            "max_postcopy_bandwidth": self.postcopy_bandwidth,
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
    run_on_arrival: bool = False,
    on_listening: Callable[[str], None] | None = None,
    on_spawning: Callable[[], None] | None = None,
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
    :param run_on_arrival: run the guest the moment its state is in, before :func:`finish`
        (the domain's watcher sends ``cont``: the guest's pause does not wait for the source
        to report, nor for finish's monitor session); for a finish without ``paused`` and
        ``persistent_xml`` only
    :param on_listening: called with the URI the moment QEMU listens (without *copy*), while
        prepare goes on (the pseudo-terminals, the watcher): the source may send from then
        on; if prepare fails afterwards, the caller aborts the migration as for any other
        failure after it began
    :param on_spawning: called once the checks passed and prepare's Python before QEMU's
        start is done, right before QEMU is spawned (the caller's source may set its QEMU up
        from then on, without taking the interpreter's lock from prepare)
    :raises InvalidStateError: a domain of that name runs here
    :raises InvalidConfigError: the XML or the listen URI is not acceptable
    """
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy
    from pyvirt.drivers.qemu.runtime import RUN_ON_ARRIVAL_FILE  # lazy
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
            listening: list[tuple[str, StorageCopy | None]] = []

            def ready(rec: RuntimeRecord) -> None:
                """QEMU listens for the stream (before the pseudo-terminals are read and its
                watcher starts, whose start-up would compete for the CPU with QEMU's and this
                process's)."""
                storage.save_created(mgr, dom.name, created)
                run_dir = mgr.rundir(dom.name).path
                where = listen
                if where is None and tcp_host:
                    where = f"tcp:{_bracket(tcp_host)}:0"
                elif where is None:
                    from pyvirt.service.domain.dac import scratch_dir  # lazy

                    # QEMU binds it as the QEMU user: in its scratch directory (made at launch)
                    where = f"unix:{scratch_dir(mgr, dom.name) / 'migrate-in.sock'}"
                if run_on_arrival:
                    (run_dir / RUN_ON_ARRIVAL_FILE).touch()
                if not copy and server is None:  # finish has no NBD export nor TLS to drop
                    (run_dir / _PLAIN_FILE).touch()
                if policy is not None and (policy.parallel is not None or policy.postcopy):
                    (run_dir / _CAPS_FILE).touch()  # finish turns them off again
                try:
                    # one round trip with the connection; not for TLS (its files go once
                    # QEMU read them) nor post-copy (a refusal is explained)
                    plain = server is None and not (policy is not None and policy.postcopy)
                    with contextlib.closing(SyncMonitor(rec.qmp_socket, name=dom.name)) as mon:
                        with mon.pipelined() if plain else contextlib.nullcontext():
                            _incoming_capabilities(mon, dom.name, policy or Policy())
                            if policy is not None and policy.parallel is not None:
                                mon.set_migration_parameters(multifd_channels=policy.parallel)
                            if server is not None:
                                migrate_tls.server_creds(mgr, dom.name, mon, server)
                                mon.set_migration_parameters(tls_creds=migrate_tls.CREDS)
                            mon.migrate_incoming(where)
                        uri = _listening_uri(mon, where)
                        copying = None
                        if copy:
                            nbd = storage.export(mgr, dom.name, mon, uri, copy,
                                                 tls=server is not None)  # fmt: skip
                            copying = storage.StorageCopy(
                                nbd, {c.target: c.target for c in copy}, incremental
                            )
                        listening.append((uri, copying))
                except BaseException:
                    _stop_incoming(mgr, dom.name)
                    raise
                if on_listening is not None and not copy:
                    on_listening(uri)

            try:
                lifecycle.launch_incoming(
                    mgr, dom, transient=not mgr.store.exists(dom.name), ready=ready,
                    spawning=on_spawning,
                )  # fmt: skip
            except BaseException:
                storage.remove_created(created)
                raise
    uri, copying = listening[0]
    return Incoming(dom.name, uri, copying, tuple(warnings))


def _incoming_capabilities(mon: Monitor, name: str, policy: Policy) -> None:
    """Set what the incoming side needs; post-copy needs userfaultfd for QEMU's user.

    :raises UnsupportedError: this QEMU cannot take a post-copy migration
    """
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    try:  # a QEMU just started: every capability is off
        mon.set_migration_capabilities(**policy.incoming_capabilities(), current={})
    except QmpCommandError as err:
        if not policy.postcopy:
            raise
        raise UnsupportedError(
            f"the destination cannot take domain '{name}' in post-copy: {err.desc}",
            hint="QEMU's user needs userfaultfd there (sysctl vm.unprivileged_userfaultfd=1); "
            "or migrate without --postcopy",
        ) from err


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
    on_running: Callable[[], None] | None = None,
) -> DomainStatus:
    """Run the migrated domain once QEMU has its whole state.

    :param paused: leave its vCPUs stopped (``--suspend``)
    :param persistent_xml: define it here with this XML (``--persistent``)
    :param on_running: called once the guest runs here for good, before the records are
        written (prepare's ``run_on_arrival``: the moment finish knows the watcher ran it;
        else as finish returns): the caller's source may stop its QEMU meanwhile; a failure
        after it still raises here
    :raises OperationFailedError: the incoming migration failed (the caller aborts)
    """
    from dataclasses import replace  # lazy

    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy
    from pyvirt.drivers.qemu.runtime import ARRIVED_FILE, RUN_ON_ARRIVAL_FILE  # lazy
    from pyvirt.service.domain.types import State  # lazy

    name = mgr.resolve(name)  # NotFoundError for a name that is nothing here
    run_dir = mgr.rundir(name).path
    _await_arrival(run_dir, min(timeout, _ARRIVAL_WAIT))
    # the guest stands still from the source's switch-over until the ``cont`` here: one
    # plain-socket monitor session (no event loop to set up) waits for QEMU's MIGRATION
    # event and resumes it at once, and the rest follows in the same session; with
    # --persistent the definition comes first (a failure before ``cont`` can still resume
    # the source) and the namespace lock comes before a domain's lock
    with mgr.locked(name):
        rec = _incoming_record(mgr, name)
        if persistent_xml is None and not paused and _ran_on_arrival(run_dir):
            # the watcher ran it (so the state is in) and nothing needs QEMU: no session
            # beside a guest that just resumed
            if on_running is not None:
                on_running()
            status = _settle(mgr, name, rec, None, paused=False, resumed=True)
            return replace(status, state=State.RUNNING, reason=Reason.MIGRATED)
        with SyncMonitor(rec.qmp_socket, name=name, purpose=_PURPOSE) as mon:
            _wait_incoming(mon, name, timeout)
            # the watcher ran it already if prepare asked (and it was connected): the
            # ``cont`` below is then a no-op; a later outgoing migration never runs it
            for left in (RUN_ON_ARRIVAL_FILE, ARRIVED_FILE):
                (run_dir / left).unlink(missing_ok=True)
            if persistent_xml is None:
                if not paused:
                    mon.cont()
                status = _settle(mgr, name, rec, mon, paused=paused, resumed=not paused)
    if persistent_xml is not None:
        mgr.define(persistent_xml)
        with mgr.locked(name):
            rec = _incoming_record(mgr, name)
            with SyncMonitor(rec.qmp_socket, name=name) as mon:
                status = _settle(mgr, name, rec, mon, paused=paused, resumed=False)
    if on_running is not None:
        on_running()
    if not paused:
        return replace(status, state=State.RUNNING, reason=Reason.MIGRATED)
    return status


#: prepare's note that the incoming QEMU has neither NBD exports nor TLS credentials
_PLAIN_FILE = "migrate-plain"
#: prepare's note that the incoming QEMU has multifd or post-copy on (a later save or
#: outgoing migration must not inherit them; the others are incoming-only or the defaults)
_CAPS_FILE = "migrate-caps"
#: seconds finish waits for a connected watcher to run the guest on arrival before it asks
#: QEMU itself
_ARRIVAL_WAIT = 5.0


def _await_arrival(run_dir: Path, timeout: float) -> None:
    """Wait for the watcher to take the run-on-arrival flag and send ``cont`` (QEMU's
    incoming migration completed), if it is connected: a monitor session opened while the
    destination loads the last of the state (in its main loop) would only slow that down."""
    from pyvirt.drivers.qemu import runtime  # lazy

    flag, sent = run_dir / runtime.RUN_ON_ARRIVAL_FILE, run_dir / runtime.RUN_ON_ARRIVAL_SENT_FILE
    if not flag.exists() and not sent.exists():
        return
    info = runtime.read_watcher(run_dir)
    if info is None or not (info.connected and info.alive):
        return
    deadline = time.monotonic() + timeout
    while (flag.exists() or sent.exists()) and time.monotonic() < deadline:
        time.sleep(0.001)


def _ran_on_arrival(run_dir: Path) -> bool:
    """Whether the watcher ran the guest on arrival and finish has nothing to ask QEMU (no
    NBD export, TLS credentials, multifd or post-copy set up by prepare)."""
    from pyvirt.drivers.qemu.runtime import ARRIVED_FILE  # lazy

    arrived = run_dir / ARRIVED_FILE
    if not arrived.exists():
        return False
    arrived.unlink(missing_ok=True)
    return (run_dir / _PLAIN_FILE).exists() and not (run_dir / _CAPS_FILE).exists()


def _settle(
    mgr: DomainManager,
    name: str,
    rec: RuntimeRecord,
    mon: Monitor | None,
    *,
    paused: bool,
    resumed: bool,
) -> DomainStatus:
    """The destination's work once the state is in (caller holds the domain lock): the NBD
    exports, the TLS credentials and multifd or post-copy go (a later save, an fd migration,
    must be plain; each goes only if prepare set it up: QMP commands take QEMU's big lock
    the resumed vCPUs want too), the vCPUs run unless *paused* (or
    *resumed* already), the runtime record says ``migrated``. *mon* may be None when
    :func:`_ran_on_arrival` said there is nothing to ask."""
    from pyvirt.service.domain import migrate_storage as storage  # lazy
    from pyvirt.service.domain import migrate_tls  # lazy

    rec.transient = not mgr.store.exists(name)
    plain = mgr.rundir(name).path / _PLAIN_FILE
    if plain.exists():  # the guest runs already: no command it need not wait for
        plain.unlink()
    else:
        assert mon is not None
        storage.stop_export(mon)
        migrate_tls.drop_creds(mon)
    caps = mgr.rundir(name).path / _CAPS_FILE
    if caps.exists():
        assert mon is not None
        with contextlib.suppress(MonitorError):
            mon.set_migration_capabilities()
        caps.unlink()
    if not paused and not resumed:
        assert mon is not None
        mon.cont()
    storage.created_of(mgr, name)  # the images are the domain's now
    rec.paused = paused
    rec.reason = str(Reason.MIGRATED) if not paused else None
    mgr.rundir(name).save_record(rec)
    return mgr.status(name)


def _wait_incoming(mon: Monitor, name: str, timeout: float) -> None:
    """Wait until the incoming migration completed (woken by QEMU's events).

    :raises OperationFailedError: it failed, or did not complete in *timeout* seconds
    """
    deadline = time.monotonic() + timeout
    while True:
        st = mon.query_migrate()
        if st.status == "completed":
            return
        left = deadline - time.monotonic()
        if st.status in ("failed", "cancelled") or left <= 0:
            raise OperationFailedError(
                f"the incoming migration of domain '{name}' {st.status}"
                + (f": {st.error}" if st.error else ""),
                hint="the guest runs on the source",
            )
        mon.wait_event(_EVENTS, min(left, 0.25))


def run_postcopy(mgr: DomainManager, name: str, *, timeout: float = 30.0) -> DomainStatus:
    """Run the guest of an incoming migration that switched to post-copy (``running
    (post-copy)``): the destination runs it from the switch on, QEMU fetching from the source
    each page the guest touches before it arrived. Called once the source is in
    ``postcopy-active``; waits until this QEMU has the devices' state. :func:`finish` follows
    as for any migration (``running (migrated)``).

    :raises NotFoundError: no incoming migration of *name* is here
    :raises OperationFailedError: it failed, or did not reach post-copy in *timeout* seconds
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(name)
    with mgr.locked(name):
        rec = _incoming_record(mgr, name)
        with Monitor(rec.qmp_socket, name=name, purpose=_PURPOSE) as mon:
            _wait_postcopy(mon, name, timeout)
            mon.cont()
        rec.paused = False
        rec.reason = str(Reason.POSTCOPY)
        mgr.rundir(name).save_record(rec)
        return mgr.status(name)


def _wait_postcopy(mon: Monitor, name: str, timeout: float) -> None:
    """Wait until the incoming QEMU loaded the devices' state of a post-copy migration
    (QEMU leaves ``inmigrate`` once it did; a ``cont`` before would only mark it to run).

    :raises OperationFailedError: it failed, or did not get there in *timeout* seconds
    """
    deadline = time.monotonic() + timeout
    while True:
        st = mon.query_migrate()
        left = deadline - time.monotonic()
        if st.status in ("failed", "cancelled") or left <= 0:
            raise OperationFailedError(
                f"the incoming migration of domain '{name}' did not reach post-copy "
                f"({st.status}" + (f": {st.error})" if st.error else ")"),
                hint="it runs once the migration completed",
            )
        if st.status.startswith("postcopy") or st.status == "completed":
            if mon.query_status()[0] != "inmigrate":
                return
            time.sleep(0.002)  # the devices' state is loading: no event says when it is done
        else:
            mon.wait_event(_EVENTS, min(left, 0.25))


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


#: QEMU's own ``downtime-limit`` (ms) until someone sets one
QEMU_DEFAULT_DOWNTIME_MS = 300


def starting_parameters(policy: Policy, before: MigrationParameters) -> dict[str, int]:
    """The migration parameters perform sets before ``migrate``: the policy's, and its
    :attr:`~Policy.initial_downtime_ms` unless a downtime limit was given or *before* (the
    source QEMU's parameters) shows one a user set (``migrate-setmaxdowntime``)."""
    params = policy.parameters()
    if "downtime_limit_ms" not in params and before.downtime_limit_ms == QEMU_DEFAULT_DOWNTIME_MS:
        params["downtime_limit_ms"] = policy.initial_downtime_ms
    return params


# -- source ----------------------------------------------------------------------------------
#: seconds the perform loop holds the source's monitor at most before letting other sessions
#: (verbs, the statistics sampler, the tuning verbs below) in for :data:`_GAP` seconds
_HOLD = 0.25
_GAP = 0.015
#: holds the loop may add without a gap while the migration may complete within the next
#: (:meth:`_Follow.may_end_soon`): its end is seen at once, not after a gap and a new
#: session (a 128 MiB guest at QEMU's default 128 MiB/s ends ~2 holds in, in step with
#: the gaps: 2 of 8 moves saw their end 15-20 ms late); bounded, so that a migration that
#: hovers near its end still lets the others in every ~0.75 s
_HOLD_MORE = 2
#: how long a resumed post-copy migration may take to connect to the destination again
#: before a ``postcopy-paused`` it still reports means it paused again
_RESUME_CONNECT = 15.0
#: QEMU's events that move a migration on (the loop wakes on them rather than sleeping)
_EVENTS = ("MIGRATION", "MIGRATION_PASS")
_PURPOSE = "migration"
#: the name of the socket a tunnelled migration's stream goes into (``getfd``)
_TUNNEL_FD = "migrate-tunnel"


def perform(
    mgr: DomainManager,
    ident: str,
    uri: str | Callable[[], str],
    policy: Policy,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    storage: StorageCopy | None = None,
    tls: TlsClient | None = None,
    tunnel_fd: int | None = None,
    on_postcopy: Callable[[], None] | None = None,
) -> MigrationResult:
    """Send running domain *ident*'s state to the QEMU listening on *uri*; returns once it
    completed, with the source QEMU paused (``postmigrate``).

    *uri* may be a callable that waits for it: the caller's destination is still being
    prepared meanwhile (its QEMU starting) while the source QEMU is set up here; it is called
    once, after the set-up and before anything moves (the guest is paused for a non-live
    migration only then); what it raises ends the migration as any failure before it
    started (the guest runs on, the policy's settings go).

    Once it is in post-copy (the policy's switch, ``migrate-postcopy``, a timeout's) the
    source QEMU is paused for good (``paused (post-copy)``) and *on_postcopy* is called,
    once, from the loop that follows it: the caller runs the guest at the destination then
    (:func:`run_postcopy`); a failure of it is logged, the guest then runs at :func:`finish`.

    With *tunnel_fd* (``--tunnelled``) QEMU writes the stream into that connected socket
    instead (passed to it as ``fd:``; *uri* is unused): the caller carries the bytes to the
    destination (:mod:`pyvirt.api.migrate_tunnel`).

    With *storage* (``--copy-storage-*``) the disks are mirrored to the destination's NBD
    exports first; the RAM follows once every mirror is ready, and the mirrors end at
    switch-over (:mod:`~pyvirt.service.domain.migrate_storage`). Progress counts both.
    With *tls* both streams use QEMU's TLS, trusting the destination's CA
    (:mod:`~pyvirt.service.domain.migrate_tls`).

    The loop that follows the migration holds the domain's monitor for at most
    :data:`_HOLD` seconds at a time: the tuning verbs (:func:`set_tuning`,
    :func:`start_postcopy`, :func:`live_status`, :func:`cancel`) and others get their turn
    in between.

    :raises InvalidStateError: it is not running
    :raises CancelledError: cancelled (the guest runs on here)
    :raises OperationFailedError: QEMU failed or the migration did not converge (the guest
        runs on here)
    """
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy
    from pyvirt.service.domain import migrate_storage as disks  # lazy
    from pyvirt.service.domain import migrate_tls  # lazy

    name = mgr.resolve(ident)
    if not policy.cluster_handover:
        from pyvirt.service.cluster.guard import before_migrate  # lazy

        before_migrate(mgr.paths, name)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(
                f"domain '{name}' is not running", hint="migrate a shut-off domain with --offline"
            )
        sock = rec.qmp_socket
        jobs: list[str] = []  # the disk mirrors of --copy-storage-*
        with SyncMonitor(sock, name=name, purpose=_PURPOSE) as mon:
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
            # what the policy changes goes back when the migration ends here (a later save
            # or migration must not inherit this one's bandwidth, downtime or capabilities)
            before = mon.query_migration_parameters()
            _save_before(mgr, name, before)
            _save_copied(mgr, name, storage)
            try:
                mon.set_migration_capabilities(
                    **policy.capabilities(), pause_before_switchover=storage is not None,
                    current=mon.query_migration_capabilities(),
                )  # fmt: skip
                params: dict[str, Any] = dict(starting_parameters(policy, before))
                if params:
                    mon.set_migration_parameters(**params)
                downtime = int(params.get("downtime_limit_ms", before.downtime_limit_ms))
            except QmpCommandError as err:
                with contextlib.suppress(MonitorError):
                    _restore(mon, before)
                if tls is not None:
                    migrate_tls.drop_creds(mon)
                raise OperationFailedError(
                    f"cannot migrate domain '{name}': {err.desc}",
                    hint="QEMU here does not support one of the options asked for",
                ) from err
            try:
                if callable(uri):  # the destination's prepare ran meanwhile
                    uri = uri()
                if policy.offline_copy and was_running:
                    mon.stop()
                if storage is not None:
                    creds = (migrate_tls.CREDS, tls.hostname) if tls is not None else None
                    disks.start_mirrors(mgr, name, mon, storage, progress, cancel, jobs, creds)
                if tunnel_fd is not None:  # QEMU owns its copy; the caller closes its own
                    mon.getfd(tunnel_fd, _TUNNEL_FD)
                    uri = f"fd:{_TUNNEL_FD}"
                mon.migrate(uri)
            except BaseException as err:
                _abandon(mon, was_running, before, jobs, tls=tls)
                if isinstance(err, QmpCommandError):
                    raise OperationFailedError(
                        f"cannot migrate domain '{name}': {err.desc}", hint="the guest runs on"
                    ) from err
                raise
        follow = _Follow(sock, name, policy, downtime, progress, cancel, jobs)
        follow.on_postcopy = lambda: _postcopy_began(mgr, name, on_postcopy)
        had: list[str | None] = []  # the record's reason before the policy paused the guest
        follow.on_pause = lambda why: had.append(_mark_paused(mgr, name, True, str(why)))
        try:
            return follow.run()
        except BaseException as err:
            with contextlib.suppress(MonitorError), SyncMonitor(sock, name=name) as mon:
                st = _abandon(mon, was_running, before, jobs, tls=tls, sent=True)
                if st is not None and isinstance(err, Exception):
                    # too late to stop (a cancel as it ended): the destination has the whole
                    # guest and may run it already (run_on_arrival); it is finished there
                    log.warning("migration of '%s' completed despite: %s", name, err)
                    return MigrationResult(st.total_time_ms, st.downtime_ms, st.transferred,
                                           st.passes, None, postcopy=False)  # fmt: skip
                if had and follow.suspended:  # --timeout-suspend's pause: it runs on here
                    _mark_paused(mgr, name, False, had[0])
            raise


def _postcopy_began(mgr: DomainManager, name: str, then: Callable[[], None] | None) -> None:
    """The source's half of the switch to post-copy (the caller holds the domain's lock):
    its guest is ``paused (post-copy)`` from now on; then *then*, whose failure is logged
    (the migration goes on: the destination runs the guest at :func:`finish` then)."""
    rec = mgr.record(name)
    if rec is not None:
        rec.paused = True
        rec.reason = str(Reason.POSTCOPY)
        mgr.rundir(name).save_record(rec)
    if then is None:
        return
    try:
        then()
    except Exception as err:  # a callback's error must not break a migration in post-copy
        log.warning("migration of '%s': the destination did not run the guest at the switch "
                    "to post-copy: %s", name, getattr(err, "message", err))  # fmt: skip


def _mark_paused(mgr: DomainManager, name: str, paused: bool, reason: str | None) -> str | None:
    """Record that the migration paused the guest (``domstate`` says why: ``migrating``, ``I/O
    error``) or that it runs again; returns the reason the record gave before."""
    rec = mgr.record(name)
    if rec is None:
        return None
    was, rec.paused, rec.reason = rec.reason, paused, reason
    mgr.rundir(name).save_record(rec)
    return was


def _abandon(
    mon: Monitor,
    was_running: bool,
    before: MigrationParameters,
    jobs: Sequence[str],
    *,
    tls: TlsClient | None,
    sent: bool = False,
) -> MigrationStatus | None:
    """Cancel the outgoing migration if it runs, drop the disk mirrors, the policy's
    parameters and capabilities and the TLS settings (a later save or migration must neither
    be throttled, pause nor encrypt) and resume the guest here. A migration paused in
    post-copy stays as it is: the destination has part of the guest's state
    (:func:`resume` goes on with it). With *sent* (``migrate`` was issued), one that
    completed (a cancel too late) leaves the guest paused and is returned: the destination
    has all of it and may run it already (``run_on_arrival``); the caller finishes it there
    (or :func:`recover` resumes it here). Without, a ``completed`` is an earlier
    migration's (QEMU reports an incoming one's too)."""
    from pyvirt.service.domain import migrate_storage as disks  # lazy
    from pyvirt.service.domain import migrate_tls  # lazy

    with contextlib.suppress(MonitorError):
        st = mon.query_migrate()
        if st.status.startswith("postcopy"):
            return None
        if st.status not in ("none", "completed", "failed", "cancelled"):
            mon.migrate_cancel()
            _wait_finished(mon)
            st = mon.query_migrate()
        disks.drop_mirrors(mon, list(jobs))
        _restore(mon, before)
        if tls is not None:
            migrate_tls.drop_creds(mon)
        if sent and st.status == "completed":
            return st
        if was_running and mon.query_status()[0] in ("paused", "postmigrate"):
            mon.cont()
    return None


def _restore(mon: Monitor, before: MigrationParameters) -> None:
    """Put back the migration parameters *before* a migration and turn its capabilities
    off (a bandwidth limit left behind would throttle the next migration; multifd would
    break a save)."""
    mon.set_migration_parameters(
        max_bandwidth=before.max_bandwidth,
        downtime_limit_ms=before.downtime_limit_ms,
        multifd_channels=before.multifd_channels,
        throttle_initial=before.throttle_initial,
        throttle_increment=before.throttle_increment,
        max_postcopy_bandwidth=before.max_postcopy_bandwidth,
    )
    mon.set_migration_capabilities()


#: the images an outgoing migration copies (``--copy-storage-*``), for :func:`confirm`
_COPIED_FILE = "migrate-copied.json"


def _save_before(mgr: DomainManager, name: str, before: MigrationParameters) -> None:
    """Keep *before* in the run directory: :func:`recover` puts it back after a migration
    that completed here but that the destination could not take over (its time is the
    migration's start: :func:`pyvirt.service.cluster.fence.outgoing` reads it)."""
    import json  # lazy
    from dataclasses import asdict  # lazy

    from pyvirt.drivers.qemu.runtime import MIGRATE_BEFORE_FILE  # lazy
    from pyvirt.state.atomic import atomic_write  # lazy

    path = mgr.rundir(name).path / MIGRATE_BEFORE_FILE
    atomic_write(path, json.dumps(asdict(before)).encode(), sync=False)


def _save_copied(mgr: DomainManager, name: str, storage: StorageCopy | None) -> None:
    """Note the images this migration copies (:func:`confirm` hands the others over)."""
    import json  # lazy

    from pyvirt.service.domain.migrate_storage import copied_paths  # lazy
    from pyvirt.state.atomic import atomic_write  # lazy

    path = mgr.rundir(name).path / _COPIED_FILE
    if storage is None:  # every image shared (a migration's setup: no write for it)
        path.unlink(missing_ok=True)
        return
    copied = copied_paths(mgr, name, storage.exports)
    atomic_write(path, json.dumps(copied).encode(), sync=False)


def _copied(mgr: DomainManager, name: str) -> list[str]:
    """What :func:`_save_copied` noted ([]: nothing, every image shared)."""
    import json  # lazy

    try:
        paths = json.loads((mgr.rundir(name).path / _COPIED_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [str(p) for p in paths] if isinstance(paths, list) else []


def _load_before(mgr: DomainManager, name: str) -> MigrationParameters | None:
    """What :func:`_save_before` kept (and forget it), None if nothing."""
    import json  # lazy

    from pyvirt.drivers.qemu.monitor.migration import MigrationParameters  # lazy
    from pyvirt.drivers.qemu.runtime import MIGRATE_BEFORE_FILE  # lazy

    path = mgr.rundir(name).path / MIGRATE_BEFORE_FILE
    try:
        before = MigrationParameters(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    path.unlink(missing_ok=True)
    return before


class _Follow:
    """Follows one outgoing migration to its end, applying the policy (see :class:`Policy`).

    The downtime limit the policy raises is its own as long as nobody else changed it: once
    QEMU's limit differs from the last one the policy set (a user's
    ``migrate-setmaxdowntime``), the user's value stays.
    """

    def __init__(
        self,
        sock: str,
        name: str,
        policy: Policy,
        downtime: int,
        progress: Progress | None,
        cancel: CancelToken | None,
        jobs: Sequence[str] = (),
    ) -> None:
        self.sock = sock
        #: the disk mirrors (``--copy-storage-*``), ended at switch-over
        self.jobs: Sequence[str] = jobs
        self.name = name
        self.policy = policy
        self.downtime = downtime or QEMU_DEFAULT_DOWNTIME_MS
        self.user_downtime = False
        self.progress = progress
        self.cancel = cancel
        self.started = time.monotonic()
        self.best_remaining: int | None = None
        self.stalled = 0
        self.last_pass = 0
        self.in_postcopy = False
        self.suspended = False
        self.warned_cancel = False
        #: after ``migrate --postcopy-resume``: until when ``postcopy-paused`` is still the
        #: old pause (QEMU reports it until its migration thread has connected again)
        self.resuming_until = 0.0
        #: called once when it is first seen in ``postcopy-active`` (see :func:`perform`)
        self.on_postcopy: Callable[[], None] | None = None
        #: called when the guest stands still for the policy (``--timeout-suspend``) or on an
        #: I/O error (``--abort-on-error``), with the reason
        self.on_pause: Callable[[Reason], None] | None = None

    def run(self) -> MigrationResult:
        """Follow it in short monitor sessions until it finished."""
        from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy

        while True:  # a plain-socket session: no event loop to set up every _HOLD
            with SyncMonitor(self.sock, name=self.name, purpose=_PURPOSE) as mon:
                until = time.monotonic() + _HOLD
                more = _HOLD_MORE
                while True:
                    st = mon.query_migrate()
                    if st.finished:
                        return self._result(mon, st)
                    self._step(mon, st)
                    left = until - time.monotonic()
                    if left <= 0 and more and self.may_end_soon(st):
                        more -= 1
                        until, left = until + _HOLD, _HOLD
                    if left <= 0:
                        break
                    mon.wait_event(_EVENTS, min(left, 0.1))
            time.sleep(_GAP)

    def may_end_soon(self, st: MigrationStatus) -> bool:
        """Whether the migration may complete within the next hold: QEMU sends the devices'
        state (or waits for the disks' switch-over), or the RAM left goes within a hold
        plus the downtime limit at the throughput QEMU measured (the last part goes while
        the guest is paused)."""
        if st.status in ("device", "pre-switchover"):
            return True
        if st.status != "active" or st.mbps <= 0:
            return False
        return st.remaining * 8 / (st.mbps * 1e6) <= _HOLD + self.downtime / 1000

    def _step(self, mon: Monitor, st: MigrationStatus) -> None:
        from pyvirt.service.domain import migrate_storage as disks  # lazy

        policy, name = self.policy, self.name
        if st.status == "pre-switchover":  # the vCPUs are stopped: the disks catch up
            disks.complete_mirrors(mon, self.jobs, name)
            mon.migrate_continue()
            self.jobs = ()
            return
        if st.status.startswith("postcopy"):
            self.in_postcopy = True  # also after a user's migrate-postcopy
        if st.status == "postcopy-active" and self.on_postcopy is not None:
            began, self.on_postcopy = self.on_postcopy, None
            began()  # the destination runs the guest from now on
        if st.status != "postcopy-paused":
            self.resuming_until = 0.0  # connected again: a pause from now on is a new one
        elif time.monotonic() < self.resuming_until:
            return  # the resumed stream is not connected yet
        else:  # domjobabort --postcopy, or the network broke
            raise OperationFailedError(
                f"migration of domain '{name}' is paused in post-copy",
                hint="both hosts hold part of the guest; resume it with 'migrate "
                "--postcopy-resume' to the same destination",
            )
        if self.progress is not None and st.total:
            done, total, _ = (
                disks.disk_progress(mon, self.jobs, name) if self.jobs else (0, 0, True)
            )
            self.progress(st.total - st.remaining + done, st.total + total)
        if policy.abort_on_error and not self.in_postcopy and mon.query_status()[0] == "io-error":
            if self.on_pause is not None:
                self.on_pause(Reason.IOERROR)
            raise OperationFailedError(
                f"migration of domain '{name}' aborted: the guest stopped on an I/O error of "
                "a disk (--abort-on-error)",
                hint="it stays paused on the source: fix its storage (e.g. free space), then "
                "'resume' it",
            )
        if self.cancel is not None and self.cancel.cancelled:
            if not self.in_postcopy:
                raise CancelledError(
                    f"migration of domain '{name}' cancelled; it runs on the source"
                )
            if not self.warned_cancel:  # the destination runs the guest already
                log.warning("migration of '%s' is in post-copy: it cannot be cancelled", name)
                self.warned_cancel = True
        passes = st.passes
        if st.status == "active" and passes > self.last_pass and not self.in_postcopy:
            self.last_pass = passes
            remaining = st.remaining
            if self.best_remaining is None or remaining < self.best_remaining * 0.9:
                self.best_remaining, self.stalled = remaining, 0
            else:
                self.stalled += 1
            # QEMU counts a pass when it begins (1 from the start): N passes are complete
            # once the (N+1)th begins
            if policy.postcopy and passes > (policy.postcopy_after_passes or 1 << 30):
                mon.migrate_start_postcopy()
                self.in_postcopy = True
            elif self.stalled >= policy.stall_passes and self._may_raise_downtime(mon):
                self.downtime = min(self.downtime * 2, policy.max_downtime_ms)
                mon.set_migration_parameters(downtime_limit_ms=self.downtime)
                log.info("migration of '%s': downtime limit raised to %d ms", name, self.downtime)
                self.stalled = 0
            elif passes >= policy.max_passes:
                raise OperationFailedError(
                    f"migration of domain '{name}' did not converge after {passes} passes over "
                    f"its memory (downtime limit {self.downtime} ms)",
                    hint="raise --bandwidth, allow --postcopy or --auto-converge, or migrate "
                    "while the guest is less busy; the guest runs on the source",
                )
        if (
            policy.timeout is not None
            and not self.suspended
            and not self.in_postcopy
            and time.monotonic() - self.started > policy.timeout
        ):
            if policy.timeout_action == "abort":
                raise OperationFailedError(
                    f"migration of domain '{name}' did not finish in {policy.timeout:g} s",
                    hint="the guest runs on the source",
                )
            if policy.timeout_action == "postcopy" and policy.postcopy:
                mon.migrate_start_postcopy()
                self.in_postcopy = True
            else:
                mon.stop()  # the rest goes at once; the destination runs it
                self.suspended = True
                if self.on_pause is not None:
                    self.on_pause(Reason.MIGRATING)

    def _may_raise_downtime(self, mon: Monitor) -> bool:
        if self.user_downtime or self.downtime >= self.policy.max_downtime_ms:
            return False
        now = mon.query_migration_parameters().downtime_limit_ms
        if now != self.downtime:
            log.info("migration of '%s': downtime limit %d ms set by the user stays",
                     self.name, now)  # fmt: skip
            self.user_downtime = True
            self.downtime = now
            return False
        return True

    def _result(self, mon: Monitor, st: MigrationStatus) -> MigrationResult:
        name = self.name
        if st.status == "cancelled" and not (self.cancel and self.cancel.cancelled):
            raise CancelledError(
                f"migration of domain '{name}' cancelled (domjobabort); it runs on the source"
            )
        if st.status != "completed":
            raise OperationFailedError(
                f"migration of domain '{name}' failed: {st.error or st.status}",
                hint="the guest runs on the source",
            )
        if self.progress is not None:
            self.progress(st.total, st.total)
        # QEMU can answer "completed" before its migration thread has stored the final
        # figures (the status and the times are read apart; both times read 0, or the
        # downtime is missing): they follow within a moment, and asking again costs well
        # under a millisecond of the guest's pause
        until = time.monotonic() + 0.05
        while not _figures(st) and time.monotonic() < until:
            with contextlib.suppress(MonitorError):
                st = mon.query_migrate()
        with contextlib.suppress(MonitorError):  # the limit it ended with (the user's, maybe)
            self.downtime = mon.query_migration_parameters().downtime_limit_ms
        measured = _figures(st)
        # the parameters go back only if the guest runs here again (recover, from the copy
        # _save_before kept): not while it stands still, the source QEMU quits at confirm
        return MigrationResult(
            total_time_ms=st.total_time_ms
            if measured
            else int((time.monotonic() - self.started) * 1000),
            downtime_ms=st.downtime_ms if measured else None,
            transferred=st.transferred,
            passes=st.passes,
            downtime_limit_ms=self.downtime,
            postcopy=self.in_postcopy,
        )


def _figures(st: MigrationStatus) -> bool:
    """Whether a completed migration's status carries QEMU's final times."""
    return st.total_time_ms > 0 and st.downtime_ms is not None


def _wait_finished(mon: Monitor, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not mon.query_migrate().finished and time.monotonic() < deadline:
        time.sleep(_POLL)


# -- tuning a running migration (virsh migrate-setmaxdowntime ...) ---------------------------
@dataclass(frozen=True)
class Tuning:
    """What may be tuned while a migration runs (``migrate-getmaxdowntime``,
    ``migrate-getspeed``, ``migrate-compcache``)."""

    downtime_ms: int
    #: bytes/s
    bandwidth: int
    #: bytes of XBZRLE's page cache
    compcache: int
    #: bytes/s of post-copy's background transfer (``migrate-getspeed --postcopy``; 0:
    #: unlimited)
    postcopy_bandwidth: int = 0

    def to_json(self) -> dict[str, int]:
        """JSON-ready dict."""
        return {"downtime_ms": self.downtime_ms, "bandwidth": self.bandwidth,
                "compcache": self.compcache,
                "postcopy_bandwidth": self.postcopy_bandwidth}  # fmt: skip


@dataclass(frozen=True)
class LiveStatus:
    """A running (or the last) outgoing migration, as ``domjobinfo`` shows it."""

    status: str
    elapsed_ms: int
    transferred: int
    remaining: int
    total: int
    #: bytes the guest dirties per second
    dirty_rate: int
    #: passes over the guest's memory (``Iteration``)
    iteration: int
    expected_downtime_ms: int | None
    #: bytes/s measured
    rate: int
    #: the downtime of a completed migration
    downtime_ms: int | None

    @property
    def active(self) -> bool:
        """Whether a migration runs."""
        return self.status not in ("none", "completed", "failed", "cancelled")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        from dataclasses import asdict  # lazy

        return asdict(self)


def tuning(mgr: DomainManager, ident: str) -> Tuning:
    """The migration parameters of running domain *ident* now.

    :raises InvalidStateError: it is not running
    """
    name, rec = mgr.running(ident)
    return _tuning(_session(name, rec), name)


def _session(name: str, rec: RuntimeRecord) -> Monitor:
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    # no domain lock: the perform step holds it for the whole migration, and its loop
    # lets monitor sessions in between its polls
    return Monitor(rec.qmp_socket, name=name)


def _tuning(mon: Monitor, name: str) -> Tuning:
    with mon:
        p = mon.query_migration_parameters()
    return Tuning(p.downtime_limit_ms, p.max_bandwidth, p.xbzrle_cache_size,
                  p.max_postcopy_bandwidth or 0)  # fmt: skip


def set_tuning(
    mgr: DomainManager,
    ident: str,
    *,
    downtime_ms: int | None = None,
    bandwidth: int | None = None,
    compcache: int | None = None,
    postcopy_bandwidth: int | None = None,
) -> Tuning:
    """Change the downtime limit (ms), the bandwidth (bytes/s), XBZRLE's cache (bytes) or
    post-copy's bandwidth (bytes/s, 0: unlimited; ``migrate-setspeed --postcopy``) of running
    domain *ident*'s migration, running or next; None leaves one as it is. A downtime set
    here wins over the convergence policy's (it stops raising it).

    :raises InvalidConfigError: a value out of range
    :raises InvalidStateError: it is not running
    :returns: the parameters afterwards
    """
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    for what, value, low in (("downtime", downtime_ms, 1), ("bandwidth", bandwidth, 0),
                             ("compression cache", compcache, 0),
                             ("post-copy bandwidth", postcopy_bandwidth, 0)):  # fmt: skip
        if value is not None and not low <= value < 1 << 62:
            raise InvalidConfigError(f"{what} {value} is out of range")
    name, rec = mgr.running(ident)
    mon = _session(name, rec)
    try:
        with mon:
            mon.set_migration_parameters(
                downtime_limit_ms=downtime_ms, max_bandwidth=bandwidth,
                xbzrle_cache_size=compcache, max_postcopy_bandwidth=postcopy_bandwidth,
            )  # fmt: skip
    except QmpCommandError as err:
        raise InvalidConfigError(
            f"cannot tune the migration of domain '{name}': {err.desc}",
            hint="QEMU refused the value",
        ) from err
    return _tuning(mon, name)


def start_postcopy(mgr: DomainManager, ident: str) -> None:
    """Switch running domain *ident*'s migration to post-copy (``migrate-postcopy``).

    :raises InvalidStateError: no migration runs, or it was not started with post-copy
        allowed
    """
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    name, rec = mgr.running(ident)
    with _session(name, rec) as mon:
        if mon.query_migrate().status not in ("setup", "active"):
            raise _no_running(name)
        try:
            mon.migrate_start_postcopy()
        except QmpCommandError as err:
            raise InvalidStateError(
                f"cannot switch the migration of domain '{name}' to post-copy: {err.desc}",
                hint="migrate with --postcopy to allow it",
            ) from err


def live_status(mgr: DomainManager, ident: str) -> LiveStatus:
    """Where running domain *ident*'s outgoing migration is (``domjobinfo``); status
    ``none`` when it never migrated.

    :raises InvalidStateError: it is not running
    """
    name, rec = mgr.running(ident)
    with _session(name, rec) as mon:
        st = mon.query_migrate()
    return _live(st)


def _live(st: MigrationStatus) -> LiveStatus:
    return LiveStatus(
        status=st.status,
        elapsed_ms=st.total_time_ms,
        transferred=st.transferred,
        remaining=st.remaining,
        total=st.total,
        dirty_rate=st.dirty_rate * st.page_size,
        iteration=st.passes,
        expected_downtime_ms=st.expected_downtime_ms,
        rate=int(st.mbps * 1_000_000 / 8),
        downtime_ms=st.downtime_ms,
    )


def cancel(mgr: DomainManager, ident: str) -> None:
    """Cancel running domain *ident*'s outgoing migration (``domjobabort``); the guest runs
    on here. A migration in post-copy is refused: the destination runs the guest already
    and the source no longer has its whole memory.

    :raises InvalidStateError: no migration runs, or it is in post-copy
    """
    name, rec = mgr.running(ident)
    with _session(name, rec) as mon:
        status = mon.query_migrate().status
        if status.startswith("postcopy"):
            raise InvalidStateError(
                f"the migration of domain '{name}' is in post-copy and cannot be cancelled",
                hint="the guest runs on the destination already; wait for it to finish, or "
                "pause it with 'domjobabort --postcopy'",
            )
        if status not in ("setup", "active", "pre-switchover", "device"):
            raise _no_running(name)
        mon.migrate_cancel()


def pause_postcopy(mgr: DomainManager, ident: str) -> None:
    """Pause running domain *ident*'s outgoing migration in post-copy (``domjobabort
    --postcopy``): QEMU breaks the stream off and both sides wait in ``postcopy-paused``
    until :func:`resume` (``migrate --postcopy-resume``).

    :raises InvalidStateError: no migration in post-copy runs
    """
    name, rec = mgr.running(ident)
    with _session(name, rec) as mon:
        status = mon.query_migrate().status
        if status not in ("postcopy-active", "postcopy-recover"):
            raise InvalidStateError(
                f"the migration of domain '{name}' is not in post-copy",
                hint="cancel it with 'domjobabort' (without --postcopy)"
                if status in ("setup", "active", "pre-switchover", "device")
                else "start one with 'migrate --postcopy'",
            )
        mon.migrate_pause()


def recover_incoming(
    mgr: DomainManager, name: str, *, listen: str | None = None, tcp_host: str | None = None
) -> str:
    """Destination side of ``migrate --postcopy-resume``: let the incoming QEMU of a
    migration paused in post-copy listen again; returns the URI for :func:`resume`.

    :param listen: as :func:`prepare`'s (None: ``tcp:`` on *tcp_host*, port 0, or a unix
        socket in the domain's scratch directory)
    The request goes to the domain's watcher (:data:`~pyvirt.drivers.qemu.runtime.
    RECOVER_FILE`), which sends ``migrate-recover`` out-of-band on its own connection: the
    guest runs here during post-copy, and QEMU's main loop may be waiting for a page the
    paused stream does not bring, so that no new monitor session could even start. A
    watcher that does not answer (none serves it: the migration is not paused) leaves it to
    a monitor session, which says why.

    :raises NotFoundError: no incoming migration of *name* is here
    :raises InvalidStateError: it is not paused in post-copy
    :raises OperationFailedError: QEMU refused to listen there
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = mgr.resolve(name)
    with mgr.locked(name):
        rec = _incoming_record(mgr, name)
        if listen is None:
            if tcp_host:
                listen = f"tcp:{_bracket(tcp_host)}:{_free_port(tcp_host)}"
            else:
                from pyvirt.service.domain.dac import scratch_dir  # lazy

                sock = scratch_dir(mgr, name) / "migrate-resume.sock"
                sock.unlink(missing_ok=True)  # a former attempt's
                listen = f"unix:{sock}"
        elif listen.startswith("tcp:") and listen.endswith(":0"):
            host = listen[4:].rsplit(":", 1)[0]
            listen = f"tcp:{host}:{_free_port(host.strip('[]'))}"
        if _recover_by_watcher(mgr, name, listen):
            return listen
        with Monitor(rec.qmp_socket, name=name) as mon:
            status = mon.query_migrate().status
            if status != "postcopy-paused":
                raise InvalidStateError(
                    f"the incoming migration of domain '{name}' is not paused in post-copy "
                    f"({status})",
                    hint="only a post-copy migration paused by 'domjobabort --postcopy' or a "
                    "broken network can be resumed",
                )
            mon.migrate_recover(listen)
            return _listening_uri(mon, listen)


#: how long :func:`recover_incoming` waits for the watcher's answer
_RECOVER_ANSWER = 5.0


def _recover_by_watcher(mgr: DomainManager, name: str, uri: str) -> bool:
    """Ask *name*'s watcher for ``migrate-recover`` on *uri*; True once QEMU listens, False
    when no watcher answered (the request is taken back).

    :raises OperationFailedError: QEMU refused
    """
    import json  # lazy

    from pyvirt.drivers.qemu.runtime import RECOVER_DONE_FILE, RECOVER_FILE  # lazy
    from pyvirt.state.atomic import atomic_write  # lazy

    run_dir = mgr.paths.domain_run_dir(name)
    request, done = run_dir / RECOVER_FILE, run_dir / RECOVER_DONE_FILE
    done.unlink(missing_ok=True)
    atomic_write(request, json.dumps({"uri": uri}).encode(), sync=False)
    deadline = time.monotonic() + _RECOVER_ANSWER
    while time.monotonic() < deadline:
        try:
            answer = json.loads(done.read_bytes())
        except (OSError, ValueError):
            time.sleep(0.02)
            continue
        done.unlink(missing_ok=True)
        if isinstance(answer, dict) and answer.get("error"):
            raise OperationFailedError(
                f"the destination cannot listen again for the migration of domain '{name}': "
                f"{answer['error']}",
                hint="it stays paused in post-copy; try again",
            )
        return True
    request.unlink(missing_ok=True)
    return False


def _free_port(host: str) -> int:
    """A TCP port free on *host* now (QEMU's own choice could not be asked for while its
    main loop waits: :func:`recover_incoming`)."""
    import socket  # lazy

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def resume(
    mgr: DomainManager,
    ident: str,
    uri: str,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> MigrationResult:
    """Source side of ``migrate --postcopy-resume``: go on sending domain *ident*'s state,
    paused in post-copy, to the QEMU listening on *uri* (:func:`recover_incoming`); returns
    once it completed, as :func:`perform`.

    :raises InvalidStateError: its migration is not paused in post-copy
    :raises OperationFailedError: it failed or was paused again (resume again)
    """
    from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError  # lazy

    name = mgr.resolve(ident)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(f"domain '{name}' is not running on the source")
        sock = rec.qmp_socket
        with Monitor(sock, name=name, purpose=_PURPOSE) as mon:
            if mon.query_migrate().status != "postcopy-paused":
                raise InvalidStateError(
                    f"no post-copy migration of domain '{name}' is paused",
                    hint="'migrate --postcopy-resume' goes on with a post-copy migration "
                    "paused by 'domjobabort --postcopy' or a broken network",
                )
            downtime = mon.query_migration_parameters().downtime_limit_ms
            try:
                mon.migrate(uri, resume=True)
            except QmpCommandError as err:
                raise OperationFailedError(
                    f"cannot resume the migration of domain '{name}': {err.desc}",
                    hint="it stays paused in post-copy; try again",
                ) from err
        follow = _Follow(sock, name, Policy(postcopy=True), downtime, progress, cancel)
        follow.in_postcopy = True
        follow.resuming_until = time.monotonic() + _RESUME_CONNECT
        return follow.run()


def _no_running(name: str) -> InvalidStateError:
    return InvalidStateError(
        f"no migration of domain '{name}' is running", hint="start one with 'migrate'"
    )


def confirm(
    mgr: DomainManager,
    name: str,
    *,
    undefine: bool = False,
    when: Callable[[], None] | None = None,
) -> None:
    """Stop the source QEMU after a completed migration (``shut off (migrated)``); with
    *undefine* remove the definition here too (``--undefinesource``).

    :param when: waits until the destination runs the guest (its finish runs meanwhile):
        called once the checks here are done, before anything changes; what it raises is
        raised here, the source left as it was (paused, ``postmigrate``)
    :raises InvalidStateError: no completed outgoing migration of *name* waits here
    """
    from pyvirt.drivers.qemu import process  # lazy
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy
    from pyvirt.service.domain import dac  # lazy

    name = mgr.resolve(name)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise _no_migration(name)
        run = mgr.rundir(name)
        with SyncMonitor(rec.qmp_socket, name=name) as mon:
            done = mon.query_migrate()
            if done.status != "completed":
                raise _no_migration(name)
            if when is not None:
                when()
            # the destination's QEMU runs on the images it did not copy (shared storage):
            # this stop must not give them back to their owner, out of that QEMU's reach
            dac.hand_over(mgr, name, keep=_copied(mgr, name))
            run.mark_destroying(stop_work_here=True)
            with contextlib.suppress(MonitorError):
                mon.quit()
        process.terminate(rec.pid, rec.starttime, timeout=10.0)
        # this stop was asked for: no need to wait for the watcher to say why QEMU went
        run.record_destroyed()
        mgr.reap(name, rec, wait=0.0)
        defined = mgr.store.exists(name)
        if defined:  # with what it measured (domjobinfo --completed)
            _set_last_reason(mgr, name, Reason.MIGRATED, _live(done).to_json())
    if undefine and defined:  # the UEFI variables stay here (QEMU moved them in RAM only)
        mgr.undefine(name, managed_save=True, nvram=False)


def _no_migration(name: str) -> InvalidStateError:
    return InvalidStateError(
        f"domain '{name}' has no completed outgoing migration",
        hint="confirm follows a completed perform step",
    )


def recover(mgr: DomainManager, name: str, *, running: bool = True) -> None:
    """Run the source guest again after the destination could not take it over; with
    *running* False leave it paused and say so (``paused (migrating)``): the destination may
    run the guest already (its finish failed after the guest ran there).

    :raises InvalidStateError: it is not running here
    """
    from pyvirt.drivers.qemu.qmp_sync import SyncMonitor  # lazy

    name = mgr.resolve(name)
    with mgr.locked(name):
        rec = mgr.live_record(name, cleanup=True)
        if rec is None:
            raise InvalidStateError(f"domain '{name}' is not running on the source")
        with SyncMonitor(rec.qmp_socket, name=name) as mon:
            before = _load_before(mgr, name)
            if before is not None:  # what the completed migration's policy set goes
                with contextlib.suppress(MonitorError):
                    _restore(mon, before)
            if running and mon.query_status()[0] in ("paused", "postmigrate"):
                mon.cont()
        if not running:
            _mark_paused(mgr, name, True, str(Reason.MIGRATING))


def _set_last_reason(
    mgr: DomainManager, name: str, reason: Reason, migration: dict[str, Any] | None = None
) -> None:
    import json  # lazy

    from pyvirt.state.atomic import atomic_write  # lazy

    body: dict[str, Any] = {"state": "shut off", "reason": str(reason), "at": time.time()}
    if migration is not None:
        body["migration"] = migration
    mgr.paths.domain_run_root.mkdir(parents=True, exist_ok=True)
    atomic_write(mgr.paths.domain_last_state(name), json.dumps(body).encode(), sync=False)


def completed_status(mgr: DomainManager, ident: str) -> LiveStatus | None:
    """What the last outgoing migration of domain *ident* measured, once it completed and
    the domain stayed defined here (``domjobinfo --completed``); None: none since its last
    start."""
    import json  # lazy

    name = mgr.resolve(ident)
    try:
        data = json.loads(mgr.paths.domain_last_state(name).read_text())
        return LiveStatus(**data["migration"])
    except (OSError, ValueError, TypeError, KeyError):
        return None


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
