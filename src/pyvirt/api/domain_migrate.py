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

from typing import TYPE_CHECKING, Protocol

from pyvirt.api.domain_base import DomainHandle
from pyvirt.errors import InvalidConfigError, InvalidStateError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.domain.migrate import (
        Incoming,
        LiveStatus,
        MigrationResult,
        Policy,
        Tuning,
    )
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
        uri: str,
        policy: Policy,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> MigrationResult: ...

    def migration_confirm(self, *, undefine: bool = False) -> None: ...

    def migration_recover(self) -> None: ...

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
        )

    # -- the source half -------------------------------------------------------------------
    def migration_perform(
        self,
        uri: str,
        policy: Policy,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> MigrationResult:
        """Send the running guest's state to the QEMU listening on *uri* (QEMU's migration
        URI from the destination's ``migration_prepare``); returns when it completed, the
        source QEMU paused. A cancel or a failure leaves the guest running here.

        :param progress: called with (RAM bytes sent, guest RAM bytes)
        """
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.perform(self._domains, self._name, uri, policy, progress=progress,
                           cancel=cancel)  # fmt: skip

    def migration_confirm(self, *, undefine: bool = False) -> None:
        """Stop the source QEMU after the destination took the guest over (``shut off
        (migrated)``); *undefine* removes the definition here too."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.confirm(self._domains, self._name, undefine=undefine)

    def migration_recover(self) -> None:
        """Run the guest here again after the destination could not take it over."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.recover(self._domains, self._name)

    # -- while it runs (migrate-setmaxdowntime, -setspeed, -compcache, -postcopy) ----------
    def migration_tuning(self) -> Tuning:
        """The downtime limit, bandwidth and compression cache of the running domain's
        migration (running or next)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.tuning(self._domains, self._name)

    def set_migration_tuning(
        self,
        *,
        downtime_ms: int | None = None,
        bandwidth: int | None = None,
        compcache: int | None = None,
    ) -> Tuning:
        """Change them (None: unchanged; bandwidth in bytes/s, cache in bytes), also while
        a migration runs; a downtime set here wins over the convergence policy's."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.set_tuning(self._domains, self._name, downtime_ms=downtime_ms,
                              bandwidth=bandwidth, compcache=compcache)  # fmt: skip

    def migration_start_postcopy(self) -> None:
        """Switch the running migration to post-copy (``migrate-postcopy``)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.start_postcopy(self._domains, self._name)

    def migration_status(self) -> LiveStatus:
        """Where the running (or last) outgoing migration is (``domjobinfo``)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        return svc.live_status(self._domains, self._name)

    def migration_cancel(self) -> None:
        """Cancel the outgoing migration (``domjobabort``; refused in post-copy)."""
        from pyvirt.service.domain import migrate as svc  # lazy

        svc.cancel(self._domains, self._name)


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
    :returns: what the migration measured; None for ``offline``
    :raises InvalidStateError: it is not running (without ``offline``)
    :raises CancelledError: cancelled; the guest runs on at the source
    :raises OperationFailedError: the migration failed; the guest runs on at the source and
        nothing is left on the destination
    """
    from pyvirt.service.domain.migrate import Policy, renamed_xml  # lazy
    from pyvirt.service.domain.types import State  # lazy

    target = _connection(dest)
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
    listen, tcp_host = _listen(migrate_uri, target)
    incoming: Incoming = target.domains.migration_prepare(
        live_xml, listen=listen, tcp_host=tcp_host, policy=pol
    )
    try:
        result = src.migration_perform(incoming.uri, pol, progress=progress, cancel=cancel)
    except BaseException:
        _quietly(lambda: target.domains.migration_abort(incoming.name))
        raise
    try:
        target.domains.migration_finish(incoming.name, paused=suspend, persistent_xml=keep)
    except BaseException:
        _quietly(src.migration_recover)
        _quietly(lambda: target.domains.migration_abort(incoming.name))
        raise
    src.migration_confirm(undefine=undefine_source)
    return result


def _connection(dest: Connection | str) -> Connection:
    if isinstance(dest, str):
        import pyvirt.api  # lazy

        return pyvirt.api.open(dest)
    return dest


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
    except PyvirtError as err:
        logging.getLogger(__name__).warning("migration clean-up: %s", err.message)
