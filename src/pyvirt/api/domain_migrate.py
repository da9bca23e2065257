"""Live migration (virsh ``migrate``): :meth:`DomainMigrate.migrate` moves a running domain
to the host of another connection.

The caller's process drives it over both connections (libvirt's "managed direct" mode): the
destination prepares an incoming QEMU (:meth:`DomainCollectionMigrate.migration_prepare`),
the source sends the state to it (:meth:`DomainMigrate.migration_perform`), the destination
runs the guest (``migration_finish``) and the source stops its QEMU
(``migration_confirm``). Each half is a verb of its own connection, so a connection to a
pyvirtd does its half in that daemon; the order and the guarantees (a failed or cancelled
migration leaves the guest running on the source and nothing on the destination) are
described in :mod:`pyvirt.service.domain.migrate`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from pyvirt.api.domain_base import DomainHandle
from pyvirt.errors import (
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
    PyvirtError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.api.domain import Domain
    from pyvirt.api.migrate_tunnel import Tunnel
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.domain.migrate import (
        Incoming,
        LiveStatus,
        MigrationResult,
        Policy,
        Tuning,
    )
    from pyvirt.service.domain.migrate_storage import DiskCopy, StorageCopy
    from pyvirt.service.domain.migrate_tls import TlsClient
    from pyvirt.service.domain.types import DomainStatus

__all__ = ["DomainMigrate", "MigrationSource", "migrate"]


# lazy: function-local imports marked ``# lazy``: the migration code (QMP, the model) loads
# only for these verbs.


class MigrationSource(Protocol):
    """The source half of a migration (a domain handle, embedded or remote)."""

    @property
    def name(self) -> str: ...

    def xml_desc(self, *, inactive: bool = False, security_info: bool = False) -> str: ...

    def status(self) -> DomainStatus: ...

    def migration_perform(
        self,
        uri: str | Callable[[], str],
        policy: Policy,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        storage: StorageCopy | None = None,
        tls: TlsClient | None = None,
        tunnel_fd: int | None = None,
        on_postcopy: Callable[[], None] | None = None,
    ) -> MigrationResult: ...

    def migration_disks(
        self, targets: Sequence[str] | None = None, *, incremental: bool = False
    ) -> list[DiskCopy]: ...

    def migration_confirm(
        self, *, undefine: bool = False, when: Callable[[], None] | None = None
    ) -> None: ...

    def migration_recover(self, *, running: bool = True) -> None: ...

    def migration_status(self) -> LiveStatus: ...

    def migration_resume(
        self, uri: str, *, progress: Progress | None = None, cancel: CancelToken | None = None
    ) -> MigrationResult: ...

    def undefine(self) -> list[str]: ...


class DomainMigrate(DomainHandle):
    """Migration verbs of :class:`~pyvirt.api.domains.Domain`."""

    def migrate(
        self,
        dest: Connection | str,
        *,
        live: bool = True,
        offline: bool = False,
        persistent: bool = False,
        undefine_source: bool = False,
        suspend: bool = False,
        dname: str | None = None,
        xml: str | None = None,
        persistent_xml: str | None = None,
        migrate_uri: str | None = None,
        policy: Policy | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        copy_storage_all: bool = False,
        copy_storage_inc: bool = False,
        migrate_disks: Sequence[str] | None = None,
        tls: bool = False,
        tunnelled: bool = False,
        on_warning: Callable[[str], None] | None = None,
        postcopy_resume: bool = False,
    ) -> MigrationResult | None:
        """Move this domain to the host of *dest* (a connection or its URI; ``migrate``).

        See :func:`migrate` for the parameters.
        """
        return migrate(
            self,  # type: ignore[arg-type]  # Domain has every verb MigrationSource names
            dest,
            live=live,
            offline=offline,
            persistent=persistent,
            undefine_source=undefine_source,
            suspend=suspend,
            dname=dname,
            xml=xml,
            persistent_xml=persistent_xml,
            migrate_uri=migrate_uri,
            policy=policy,
            progress=progress,
            cancel=cancel,
            copy_storage_all=copy_storage_all,
            copy_storage_inc=copy_storage_inc,
            migrate_disks=migrate_disks,
            tls=tls,
            tunnelled=tunnelled,
            on_warning=on_warning,
            postcopy_resume=postcopy_resume,
        )

    # -- the source half -------------------------------------------------------------------
    def migration_perform(
        self,
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
        """Send the running guest's state to the QEMU listening on *uri* (QEMU's migration
        URI from the destination's ``migration_prepare``; or a callable that waits for it
        while the source QEMU is set up); returns when it completed, the source QEMU paused.
        A cancel or a failure leaves the guest running here.

        :param progress: called with (bytes sent, bytes to send: RAM and copied disks)
        :param storage: mirror the copied disks to the destination's NBD exports first
        :param tls: QEMU's TLS for the streams, trusting this CA (``--tls``)
        :param tunnel_fd: write the stream into this socket instead of *uri* (``--tunnelled``,
            :mod:`pyvirt.api.migrate_tunnel`)
        :param on_postcopy: called once when it is in post-copy (the source paused for
            good): the caller runs the guest at the destination
        """
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.perform(self._domains, self._name, uri, policy, progress=progress,
                           cancel=cancel, storage=storage, tls=tls,
                           tunnel_fd=tunnel_fd, on_postcopy=on_postcopy)  # fmt: skip

    def migration_disks(
        self, targets: Sequence[str] | None = None, *, incremental: bool = False
    ) -> list[DiskCopy]:
        """The disks a ``--copy-storage-*`` migration copies (*targets*, or every writable
        image disk) and what the destination creates for them."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.storage_plan(self._domains, self._name, targets, incremental=incremental)

    def migration_confirm(
        self, *, undefine: bool = False, when: Callable[[], None] | None = None
    ) -> None:
        """Stop the source QEMU after the destination took the guest over (``shut off
        (migrated)``); *undefine* removes the definition here too.

        :param when: waits until the destination runs the guest (its finish runs
            meanwhile); called after the checks here, before anything changes: what it
            raises is raised here, the source paused as it was
        """
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.confirm(self._domains, self._name, undefine=undefine, when=when)

    def migration_recover(self, *, running: bool = True) -> None:
        """Run the guest here again after the destination could not take it over (*running*
        False: keep it paused, ``paused (migrating)``: the destination may run it already)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.recover(self._domains, self._name, running=running)

    # -- while it runs (migrate-setmaxdowntime, -setspeed, -compcache, -postcopy) ----------
    def migration_tuning(self) -> Tuning:
        """The downtime limit, bandwidth, compression cache and post-copy bandwidth of the
        running domain's migration (running or next)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.tuning(self._domains, self._name)

    def set_migration_tuning(
        self,
        *,
        downtime_ms: int | None = None,
        bandwidth: int | None = None,
        compcache: int | None = None,
        postcopy_bandwidth: int | None = None,
    ) -> Tuning:
        """Change them (None: unchanged; bandwidths in bytes/s, post-copy's 0 for unlimited,
        cache in bytes), also while a migration runs; a downtime set here wins over the
        convergence policy's."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.set_tuning(self._domains, self._name, downtime_ms=downtime_ms,
                              bandwidth=bandwidth, compcache=compcache,
                              postcopy_bandwidth=postcopy_bandwidth)  # fmt: skip

    def migration_start_postcopy(self) -> None:
        """Switch the running migration to post-copy (``migrate-postcopy``)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.start_postcopy(self._domains, self._name)

    def migration_status(self) -> LiveStatus:
        """Where the running (or last) outgoing migration is (``domjobinfo``)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.live_status(self._domains, self._name)

    def migration_completed(self) -> LiveStatus | None:
        """What the last completed outgoing migration measured, while the domain stays
        defined here (``domjobinfo --completed``); None: none since it last started."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.completed_status(self._domains, self._name)

    def migration_cancel(self) -> None:
        """Cancel the outgoing migration (``domjobabort``; refused in post-copy)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.cancel(self._domains, self._name)

    def migration_pause_postcopy(self) -> None:
        """Pause the outgoing migration in post-copy (``domjobabort --postcopy``): both
        hosts wait until ``migrate --postcopy-resume``."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.pause_postcopy(self._domains, self._name)

    def migration_resume(
        self, uri: str, *, progress: Progress | None = None, cancel: CancelToken | None = None
    ) -> MigrationResult:
        """Go on with the outgoing migration paused in post-copy, to the QEMU listening on
        *uri* (the destination's ``migration_recover_incoming``); returns when it completed."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.resume(self._domains, self._name, uri, progress=progress, cancel=cancel)


def migrate(
    src: MigrationSource,
    dest: Connection | str,
    *,
    live: bool = True,
    offline: bool = False,
    persistent: bool = False,
    undefine_source: bool = False,
    suspend: bool = False,
    dname: str | None = None,
    xml: str | None = None,
    persistent_xml: str | None = None,
    migrate_uri: str | None = None,
    policy: Policy | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    copy_storage_all: bool = False,
    copy_storage_inc: bool = False,
    migrate_disks: Sequence[str] | None = None,
    tls: bool = False,
    tunnelled: bool = False,
    on_warning: Callable[[str], None] | None = None,
    postcopy_resume: bool = False,
) -> MigrationResult | None:
    """Move domain *src* to the host of *dest*.

    :param live: keep the guest running while its memory is copied (False: pause it for the
        copy, virsh without ``--live``)
    :param offline: only move the definition (the domain may be shut off)
    :param persistent: define it on the destination (``--persistent``)
    :param undefine_source: remove the source's definition afterwards (``--undefinesource``)
    :param suspend: leave it paused on the destination (``--suspend``)
    :param dname: its name on the destination
    :param xml: the live XML to use on the destination (same hardware; other paths)
    :param persistent_xml: the XML to define there with ``persistent``
    :param migrate_uri: where the destination QEMU listens (``tcp://HOST[:PORT]``,
        ``tcp:HOST:PORT`` or ``unix:PATH``); default: the destination connection's host, or
        a unix socket when both hosts are this machine
    :param policy: bandwidth, downtime, convergence (:class:`~pyvirt.service.domain.migrate.
        Policy`)
    :param copy_storage_all: copy the disks to the destination (non-shared storage): images
        made there, mirrored over NBD while the guest runs
    :param copy_storage_inc: the same for the top images only (the destination has the
        backing chain)
    :param migrate_disks: the disk targets to copy (default: every writable image disk)
    :param tls: QEMU's TLS channel for the streams (RAM and disks): the destination's QEMU
        uses its pyvirtd's certificate, the source trusts the CA this client trusts for it;
        needs a ``pyvirt+tls://`` destination
    :param tunnelled: send the stream through the destination daemon's own channel (its TLS
        and token; :mod:`pyvirt.api.migrate_tunnel`) instead of QEMU to QEMU: no port is
        opened for QEMU; *src* must be this process's (``--p2p``)
    :param on_warning: called with what the destination's checks warn about
    :param postcopy_resume: go on with a migration of *src* to *dest* paused in post-copy
        (``domjobabort --postcopy`` or a broken network), then finish it as any other
    :returns: what the migration measured; None for ``offline``
    :raises InvalidStateError: it is not running (without ``offline``), or the destination
        lacks the memory
    :raises UnsupportedError: the destination's CPU lacks features the guest's CPU model
        needs (named), or ``tls`` without a TLS identity on either side
    :raises CancelledError: cancelled; the guest runs on at the source
    :raises OperationFailedError: the migration failed; the guest runs on at the source and
        nothing is left on the destination; or (said so) it completed and the destination
        may run the guest already (its QEMU is there, or it cannot be asked) but its finish
        step failed: the source keeps it paused
    """
    from pyvirt.service.domain.migrate import Policy, renamed_xml  # lazy
    from pyvirt.service.domain.types import State  # lazy

    if copy_storage_all and copy_storage_inc:
        raise InvalidConfigError(
            "options --copy-storage-all and --copy-storage-inc are mutually exclusive"
        )
    if migrate_disks and not (copy_storage_all or copy_storage_inc):
        raise InvalidConfigError("--migrate-disks needs --copy-storage-all or --copy-storage-inc")
    if tunnelled:
        _check_tunnelled(src, policy, tls=tls, migrate_uri=migrate_uri,
                         copy=copy_storage_all or copy_storage_inc)  # fmt: skip
    target = _connection(dest)
    trust = _tls_client(target) if tls else None
    new_name = dname or src.name
    status = src.status()
    if offline:
        if not status.persistent:
            raise InvalidStateError(
                f"domain '{src.name}' is transient; an offline migration moves a definition",
                hint="migrate it live, or define it first",
            )
        defined = renamed_xml(persistent_xml or src.xml_desc(inactive=True, security_info=True),
                           new_name)  # fmt: skip
        target.domains.define(defined)
        if undefine_source:
            src.undefine()
        return None
    if status.state is State.SHUTOFF:
        raise InvalidStateError(
            f"domain '{src.name}' is not running",
            hint="start it, or move its definition with --offline",
        )
    pol = policy or Policy()
    if not live:
        from dataclasses import replace  # lazy

        pol = replace(pol, offline_copy=True)
    live_xml = renamed_xml(xml or src.xml_desc(security_info=True), new_name)
    keep: str | None = None
    if persistent:
        base = persistent_xml or (
            src.xml_desc(inactive=True, security_info=True) if status.persistent else live_xml
        )
        keep = renamed_xml(base, new_name)
    # tunnelled: the incoming QEMU listens on a unix socket its daemon connects the tunnel to
    listen, tcp_host = (None, None) if tunnelled else _listen(migrate_uri, target)
    if postcopy_resume:
        if tunnelled:
            raise UnsupportedError(
                "--postcopy-resume is not supported with --tunnelled",
                hint="a tunnelled migration cannot be in post-copy",
            )
        if not _paused_in_postcopy(src):  # before asking the destination anything
            raise InvalidStateError(
                f"no post-copy migration of domain '{src.name}' is paused",
                hint="'migrate --postcopy-resume' goes on with a post-copy migration paused "
                "by 'domjobabort --postcopy' or a broken network",
            )
        again = target.domains.migration_recover_incoming(new_name, listen=listen,
                                                          tcp_host=tcp_host)  # fmt: skip
        result = src.migration_resume(again, progress=progress, cancel=cancel)
        target.domains.migration_finish(new_name, paused=suspend, persistent_xml=keep)
        src.migration_confirm(undefine=undefine_source)
        return result
    copy: list[DiskCopy] = []
    if copy_storage_all or copy_storage_inc:
        copy = src.migration_disks(migrate_disks or None, incremental=copy_storage_inc)
    # the destination runs the guest the moment its state is in (its watcher is connected
    # already) unless it must stay paused or be defined first (a failure there can still
    # resume the source): the guest's pause does not wait for the source's report
    on_arrival = not suspend and keep is None
    prepare = partial(
        target.domains.migration_prepare, live_xml, listen=listen, tcp_host=tcp_host,
        policy=pol, copy=copy, incremental=copy_storage_inc, tls=tls,
        run_on_arrival=on_arrival,
    )  # fmt: skip

    def arrived(incoming: Incoming) -> Incoming:
        for warning in incoming.warnings:
            if on_warning is not None:
                on_warning(warning)
        return incoming

    tunnel: Tunnel | None = None
    # post-copy: the destination runs the guest from the switch on (not --suspend)
    run_there = None if suspend or not pol.postcopy else _postcopy_run(target, new_name)
    # the destination's QEMU starts while the source QEMU is set up (a thread prepares; the
    # source asks for the URI once it is ready to send), unless the disks or the tunnel
    # need the destination's answer first, or the name runs there (the source's own host)
    # (the source sends as soon as that QEMU listens; the rest of prepare goes on meanwhile)
    incoming: Incoming | None = None
    background: _Preparing | None = None
    uri: str | Callable[[], str]
    if copy or tunnelled or not _free_there(target, new_name):
        incoming = arrived(prepare())
        uri = incoming.uri
    else:
        background = _Preparing(prepare)
        uri = background.uri
    try:
        if background is not None:
            # the source's set-up (Python and QMP) after prepare's Python before the
            # destination QEMU's start, not beside it: both would share the interpreter's
            # lock, and that start is what the migration waits for
            background.spawning(_SPAWN_WAIT)
        if tunnelled:
            from pyvirt.api.migrate_tunnel import open_tunnel  # lazy

            assert incoming is not None
            tunnel = open_tunnel(target, incoming.name, incoming.uri)
        result = src.migration_perform(
            uri, pol, progress=progress, cancel=cancel,
            storage=incoming.storage if incoming is not None else None, tls=trust,
            tunnel_fd=tunnel.qemu_fd if tunnel else None, on_postcopy=run_there,
        )  # fmt: skip
    except BaseException as err:
        if tunnel is not None:
            tunnel.abort()
        prepared = incoming is not None or (background is not None and background.listened())
        if prepared and not _paused_in_postcopy(src):  # else it holds part of the guest
            _quietly(lambda: target.domains.migration_abort(new_name))
        if tunnel is not None and tunnel.error is not None and isinstance(err, PyvirtError):
            raise tunnel.error from err  # the destination's reason, not QEMU's broken pipe
        raise
    finishing: _Finishing | None = None
    try:
        if incoming is None:  # the rest of prepare (what failed there is undone below)
            assert background is not None
            incoming = arrived(background.result())
        if tunnel is not None:  # the rest of the stream flows while the destination waits
            tunnel.release()
        finish = partial(target.domains.migration_finish, incoming.name, paused=suspend,
                         persistent_xml=keep)  # fmt: skip
        if on_arrival and tunnel is None and not result.postcopy:
            # the guest runs there once its state is in: the source's confirm runs beside
            # the destination's finish and stops its QEMU the moment finish says so (a
            # failure of finish before that leaves the source as it was: handled below)
            finishing = _Finishing(finish)
            src.migration_confirm(undefine=undefine_source, when=finishing.running)
            finishing.result()
            return result
        finish()
    except BaseException as err:
        if tunnel is not None:
            tunnel.abort()
        if finishing is not None and finishing.said():  # it runs there; nothing to undo
            if err is finishing.failure() and isinstance(err, Exception):
                raise OperationFailedError(
                    f"migration of domain '{src.name}' completed and the guest runs on the "
                    f"destination, but its finish step failed there: {err}",
                    hint=f"check domain '{new_name}' on the destination",
                ) from err
            raise  # the source's confirm failed: as after a finish
        if result.postcopy:  # the destination has the only whole guest: it stays there
            raise
        if on_arrival and _held_there(target, new_name):
            # its watcher may have run the guest as its state came in (its record says paused
            # until finish notes it; or the destination cannot be asked: a finish whose
            # answer was lost): the source must not run it a second time
            _quietly(lambda: src.migration_recover(running=False))
            if not isinstance(err, Exception):
                raise
            raise OperationFailedError(
                f"migration of domain '{src.name}' completed but its finish step failed: "
                f"{err}; the guest may run on the destination already, so the source keeps "
                "it paused",
                hint=f"check domain '{new_name}' on the destination, then destroy the paused "
                "source (never resume both)",
            ) from err
        _quietly(src.migration_recover)
        _quietly(lambda: target.domains.migration_abort(new_name))
        if tunnel is not None and tunnel.error is not None and isinstance(err, PyvirtError):
            raise tunnel.error from err
        raise
    if tunnel is not None:  # the destination runs it: the whole stream arrived
        _quietly(tunnel.finish)
    src.migration_confirm(undefine=undefine_source)
    return result


#: seconds at most the source's set-up waits for the destination's prepare to spawn its QEMU
#: (:meth:`_Preparing.spawning`): prepare's checks, argv and records come first (~10 ms of
#: Python here), then the source's set-up runs while that QEMU starts
_SPAWN_WAIT = 0.05

#: seconds a half run ahead in its thread sleeps once it said the other may go on (see
#: :meth:`_Ahead._reached`)
_HAND_OVER = 0.001

_T = TypeVar("_T")


class _Ahead(Generic[_T]):
    """A step of one host run in a thread of its own that tells, before it ends, when the
    other host may go on (through the hook it is given, a keyword argument): the other's
    step runs meanwhile."""

    def __init__(self, step: Callable[..., _T], hook: str, name: str) -> None:
        self._value: list[_T] = []
        self._error: BaseException | None = None
        #: what the hook was called with
        self._said: list[tuple[object, ...]] = []
        self._news = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(step, hook), daemon=True,
                                        name=name)  # fmt: skip
        self._thread.start()

    def _run(self, step: Callable[..., _T], hook: str) -> None:
        try:
            self._value.append(step(**{hook: self._reached}))
        except BaseException as err:  # handed to the caller by _wait() or result()
            self._error = err
        finally:
            self._news.set()

    def _reached(self, *said: object) -> None:
        self._said.append(said)
        self._news.set()
        # the waiting caller takes the interpreter's lock now, while this thread sleeps:
        # else it waits for the rest of the step's Python, up to the 5 ms switch interval
        time.sleep(_HAND_OVER)

    def _wait(self) -> tuple[object, ...] | None:
        """What the hook said once it did (None: the step ended without it); what the step
        raised before is raised here."""
        self._news.wait()
        if self._said:
            return self._said[0]
        if self._error is not None:
            raise self._error
        return None

    def result(self) -> _T:
        """What the step returned (once it did); what it raised is raised here."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value[0]

    def said(self) -> bool:
        """Whether the hook was called (once the step ended)."""
        self._thread.join()
        return bool(self._said)

    def failure(self) -> BaseException | None:
        """What the step raised (once it ended), if it did."""
        self._thread.join()
        return self._error


class _Preparing(_Ahead["Incoming"]):
    """The destination's prepare: :meth:`spawning` returns once its Python before its QEMU's
    start is done, :meth:`uri` gives the URI that QEMU listens on as soon as it does
    (prepare goes on meanwhile: the pseudo-terminals, the watcher)."""

    def __init__(self, prepare: Callable[..., Incoming]) -> None:
        self._spawning = threading.Event()

        def step(**hooks: Callable[..., None]) -> Incoming:
            try:
                return prepare(on_spawning=self._spawning.set, **hooks)
            finally:
                self._spawning.set()

        super().__init__(step, "on_listening", "migration-prepare")

    def spawning(self, timeout: float) -> None:
        """Wait, *timeout* seconds at most, until prepare spawns its QEMU (or ended)."""
        self._spawning.wait(timeout)

    def uri(self) -> str:
        """The URI once the QEMU listens; what prepare raised before that is raised here."""
        said = self._wait()
        return str(said[0]) if said is not None else self.result().uri

    def listened(self) -> bool:
        """Whether prepare got as far as a listening QEMU (once it ended): then there is an
        incoming QEMU to stop, whatever failed after."""
        return self.said() or self.failure() is None


class _Finishing(_Ahead["Domain"]):
    """The destination's finish: :meth:`running` returns once the guest runs there (finish
    writes its records meanwhile)."""

    def __init__(self, finish: Callable[..., Domain]) -> None:
        super().__init__(finish, "on_running", "migration-finish")

    def running(self) -> None:
        """Once the guest runs on the destination; what finish raised before is raised here."""
        self._wait()


def _free_there(target: Connection, name: str) -> bool:
    """Whether no domain *name* runs on *target* (else it is the source's own host: its
    prepare must not wait for the domain's lock the source holds; it refuses the name)."""
    from pyvirt.service.domain.types import State  # lazy

    try:
        return target.domains.get(name).status().state is State.SHUTOFF
    except NotFoundError:
        return True


def _held_there(target: Connection, name: str) -> bool:
    """Whether *target* may hold a live guest *name* (a QEMU of it runs there, or *target*
    cannot be asked); False only when it surely has none."""
    from pyvirt.service.domain.types import State  # lazy

    try:
        return target.domains.get(name).status().state is not State.SHUTOFF
    except NotFoundError:
        return False
    except Exception:  # the destination does not answer: assume the worst
        return True


def _postcopy_run(target: Connection, name: str) -> Callable[[], None]:
    """What the source calls at the switch to post-copy: the destination runs the guest."""

    def run() -> None:
        _quietly(lambda: target.domains.migration_postcopy_run(name))

    return run


def _paused_in_postcopy(src: MigrationSource) -> bool:
    try:
        return src.migration_status().status == "postcopy-paused"
    except PyvirtError:
        return False


def _check_tunnelled(
    src: MigrationSource,
    policy: Policy | None,
    *,
    tls: bool,
    migrate_uri: str | None,
    copy: bool,
) -> None:
    """Refuse what ``--tunnelled`` cannot do, before anything moves.

    :raises InvalidConfigError: not driven by the source host (``--p2p``), or an option
        that names QEMU's own channel
    :raises UnsupportedError: post-copy, multifd or copied disks through the tunnel
    """
    if not isinstance(src, DomainMigrate):  # a daemon's domain: its socket is not ours
        raise InvalidConfigError(
            "--tunnelled requires --p2p",
            hint="the source host's daemon carries the stream: add --p2p",
        )
    if tls:
        raise InvalidConfigError(
            "options --tls and --tunnelled are mutually exclusive",
            hint="the tunnel runs in the destination daemon's TLS already",
        )
    if migrate_uri:
        raise InvalidConfigError(
            "--migrateuri and --listen-address do not apply to --tunnelled",
            hint="the stream goes through the daemons' channel; QEMU listens on no address",
        )
    what = (
        "--copy-storage-all/-inc" if copy
        else "--postcopy" if policy is not None and policy.postcopy
        else "--parallel" if policy is not None and policy.parallel is not None
        else None
    )  # fmt: skip
    if what is not None:
        raise UnsupportedError(
            f"{what} is not supported with --tunnelled",
            hint="migrate without --tunnelled, with --tls for an encrypted QEMU channel",
        )


def _connection(dest: Connection | str) -> Connection:
    if isinstance(dest, str):
        import pyvirt.api  # lazy

        return pyvirt.api.open(dest)
    return dest


def _tls_client(target: Connection) -> TlsClient:
    """What the source QEMU trusts for ``--tls``: the CA this client trusts for the
    destination's daemon, and the host name it reached it by.

    :raises UnsupportedError: the destination is no ``pyvirt+tls://`` daemon, or the client
        trusts it by fingerprint or not at all (no CA for QEMU)
    """
    import ssl  # lazy

    from pyvirt.client.settings import settings_for  # lazy
    from pyvirt.client.uri import resolve  # lazy
    from pyvirt.service.domain.migrate_tls import TlsClient  # lazy

    # a connection's own target: through --p2p its CA is the private copy the source made of
    # the client's (pyvirt.api.migrate_p2p.destination), not in the URI's text
    client = getattr(target, "client", None)  # a remote connection's
    t = client.target if client is not None else resolve(target.uri)
    if t.kind != "tls" or not t.host:
        raise UnsupportedError(
            "--tls needs a pyvirt+tls:// destination (its daemon's certificate secures the "
            "migration channel)",
            hint="migrate to pyvirt+tls://HOST/, or without --tls on a private network",
        )
    settings = settings_for(t)
    ca = settings.ca
    if ca is None and not (settings.fingerprint or settings.insecure):
        ca = ssl.get_default_verify_paths().cafile
    if not ca:
        raise UnsupportedError(
            "--tls: this client has no CA for the destination's certificate (it trusts it "
            "by fingerprint or not at all)",
            hint="give the destination's CA (or its self-signed certificate) with ?ca=FILE",
        )
    from pathlib import Path  # lazy

    return TlsClient(Path(ca).read_text(), t.host.strip("[]"))


def _listen(migrate_uri: str | None, target: Connection) -> tuple[str | None, str | None]:
    """(QEMU's listen URI, the destination's host for a ``tcp:`` listener)."""
    if migrate_uri:
        uri = migrate_uri
        if uri.startswith("tcp://"):
            hostport = uri[len("tcp://") :].rstrip("/")
            host, _, port = hostport.rpartition(":") if ":" in hostport.strip("[]") else (
                hostport, "", "0")  # fmt: skip
            return f"tcp:{host or hostport}:{port or 0}", None
        if uri.startswith(("tcp:", "unix:")):
            return uri, None
        raise InvalidConfigError(
            f"unsupported migration URI '{migrate_uri}'", hint="use tcp://HOST[:PORT] or unix:PATH"
        )
    from pyvirt.client.uri import resolve  # lazy

    t = resolve(target.uri)
    if t.kind in ("tls", "ssh") and t.host:
        return None, t.host
    return None, None  # both hosts are this machine: a unix socket


def _quietly(step: object) -> None:
    """Run a clean-up step of a failed migration; its own failure must not hide the first."""
    import logging  # lazy

    try:
        step()  # type: ignore[operator]
    except NotFoundError:
        pass  # already gone (the incoming QEMU quits when its stream breaks): nothing to clean
    except PyvirtError as err:
        logging.getLogger(__name__).warning("migration clean-up: %s", err.message)
