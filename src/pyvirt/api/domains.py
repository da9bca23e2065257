"""Domains: :class:`DomainCollection` (``conn.domains``); the :class:`Domain` handle lives
in :mod:`pyvirt.api.domain` and is re-exported here.

>>> dom, warnings = conn.domains.define(xml)
>>> dom.start()
>>> dom.wait_for_state(State.RUNNING)
>>> dom.destroy()

The handle carries virsh's domain verbs in snake_case. This module holds the lifecycle and
inspection verbs; tuning (:mod:`pyvirt.api.domain_tuning`), disks, NICs and display
(:mod:`pyvirt.api.domain_devices`) and the guest agent (:mod:`pyvirt.api.domain_agent`) are
mixed in. Verbs that change a domain take keyword-only ``live`` and ``config`` (both False:
libvirt's "current", the running domain if it runs, else its definition).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.service.domain.types import DomainStatus, Reason, State

if TYPE_CHECKING:
    from pyvirt.api.domain import Domain, DomainInfo, VncDisplay
    from pyvirt.api.install import CloneJob, CloneRequest, InstallJob, InstallResult, InstallSpec
    from pyvirt.api.stats import DomainStats, StatsGroup
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.domain.migrate import Incoming, Policy
    from pyvirt.service.domain.migrate_storage import DiskCopy

__all__ = [
    "Domain",
    "DomainCollection",
    "DomainInfo",
    "DomainStatus",
    "Reason",
    "State",
    "VncDisplay",
]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the lifecycle and install
# code load the QEMU driver, osinfo and cloud-init, which ``pyvirt list`` does not need;
# nor the Domain handle and its mixins (~5 ms).


def __getattr__(name: str) -> Any:
    """Re-export the handle and its value types of :mod:`pyvirt.api.domain` (loaded on first
    use: ``list`` needs only :class:`DomainStatus`)."""
    if name in ("Domain", "DomainInfo", "VncDisplay"):
        from pyvirt.api import domain  # lazy

        return getattr(domain, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DomainCollection:
    """The domains of one connection (``conn.domains``)."""

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    def get(self, ident: str) -> Domain:
        """The domain known by name, UUID or numeric id.

        :raises NotFoundError: no domain matches
        """
        from pyvirt.api.domain import Domain  # lazy

        return Domain(self._service, self._service.domains.resolve(ident))

    def list(
        self,
        *,
        states: Iterable[State] | None = None,
        persistent: bool | None = None,
        autostart: bool | None = None,
        with_uuids: bool = True,
    ) -> builtins.list[DomainStatus]:
        """Every domain's status: running ones first by id, then the rest by name.

        :param states: only domains in these states (None: all)
        :param persistent: only persistent (True) or transient (False) domains
        :param autostart: only domains with autostart on (True) or off (False)
        :param with_uuids: False leaves ``uuid`` empty for shut-off domains (no file read per
            domain: fast with thousands of definitions)
        """
        rows = self._service.domains.list_all(uuids=with_uuids)
        if states is not None:
            wanted = set(states)
            rows = [s for s in rows if s.state in wanted]
        if persistent is not None:
            rows = [s for s in rows if s.persistent == persistent]
        if autostart is not None:
            rows = [s for s in rows if s.autostart == autostart]
        return rows

    def stats(
        self,
        names: Iterable[str] | None = None,
        groups: Iterable[StatsGroup] | None = None,
        *,
        inactive_details: bool = True,
        monitor_wait: bool = True,
    ) -> builtins.list[DomainStats]:
        """Statistics of the domains ``names`` (None: every domain), see :mod:`pyvirt.api.stats`.

        :param groups: the :class:`~pyvirt.api.stats.StatsGroup` values to collect (None: all)
        :param inactive_details: read shut-off domains' definitions (memory, vCPUs, disks)
        :param monitor_wait: wait for a QEMU monitor another session holds (False: leave
            the monitor's figures out for that domain)
        :raises NotFoundError: a name matches no domain
        """
        from pyvirt.api.stats import ALL_GROUPS, domain_stats  # lazy

        return domain_stats(
            self._service,
            None if names is None else builtins.list(names),
            ALL_GROUPS if groups is None else groups,
            inactive_details=inactive_details,
            monitor_wait=monitor_wait,
        )

    def define(
        self, xml: str | bytes, *, force: bool = False, expect_revision: str | bool | None = False
    ) -> tuple[Domain, builtins.list[str]]:
        """Define (or redefine) a persistent domain; returns it and warnings to show.

        :param force: accept what the NUMA advisor refuses (e.g. more than 64 vCPUs) and disks
            or serial files on host system files or busy block devices
        :param expect_revision: the :meth:`Domain.revision` the XML was based on (None: the
            domain must not exist yet; False, the default: no check) -- an HTTP ``If-Match``
        :raises InvalidConfigError: invalid XML
        :raises AlreadyExistsError: the name or UUID belongs to another domain
        :raises InvalidStateError: "domain 'X' changed underneath this command; retry"
        """
        from pyvirt.api.domain import Domain  # lazy

        dom, warnings = self._service.domains.define(
            xml, force=force, expect_revision=expect_revision
        )
        return Domain(self._service, dom.name), builtins.list(warnings)

    def create(self, xml: str | bytes, *, paused: bool = False) -> Domain:
        """Create and start a domain from XML (``create``): transient unless defined already.

        :raises InvalidConfigError: invalid XML
        :raises AlreadyExistsError: the name or UUID belongs to another domain
        """
        from pyvirt.api.domain import Domain  # lazy

        st = self._service.domains.create(xml, paused=paused)
        return Domain(self._service, st.name)

    # -- the destination half of a migration (:mod:`pyvirt.api.domain_migrate`) ------------
    def migration_prepare(
        self,
        xml: str,
        *,
        listen: str | None = None,
        tcp_host: str | None = None,
        policy: Policy | None = None,
        copy: Sequence[DiskCopy] = (),
        incremental: bool = False,
        tls: bool = False,
        tls_files: tuple[str, str, str | None] | None = None,
        run_on_arrival: bool = False,
        on_listening: Callable[[str], None] | None = None,
        on_spawning: Callable[[], None] | None = None,
    ) -> Incoming:
        """Start a QEMU here waiting for the state of the domain *xml* describes (its live
        XML on the source), after checking this host can run it (CPU, memory, networks,
        storage); returns the QEMU migration URI the source sends it to.

        :param listen: QEMU's listen URI (``tcp:HOST:PORT``, ``unix:PATH``)
        :param tcp_host: listen on this address with a port QEMU picks
        :param copy: disks the source copies here (``--copy-storage-*``): made and exported
        :param incremental: only their top images are copied
        :param tls: QEMU's TLS for the streams (``--tls``) with *tls_files* (certificate,
            key, CA) or the self-signed pair pyvirtd made in this state directory
        :param run_on_arrival: run the guest as soon as its state is in, before
            ``migration_finish`` (which then must not ask for ``paused`` nor
            ``persistent_xml``)
        :param on_listening: called with the URI once the QEMU listens, before the rest of
            the set-up here (without *copy*): the source may start sending then; a failure
            of that rest raises here as any other
        :param on_spawning: called right before the QEMU is spawned, once the checks passed
        :raises InvalidStateError: a domain of that name runs here already
        :raises UnsupportedError: this host's CPU lacks features of the guest's CPU model
        """
        from pyvirt.service.domain import migrate  # lazy
        from pyvirt.service.domain.migrate_tls import TlsServer  # lazy

        server: TlsServer | bool = TlsServer(*tls_files) if tls and tls_files else tls
        return migrate.prepare(self._service.domains, xml, listen=listen, tcp_host=tcp_host,
                               policy=policy, copy=copy, incremental=incremental,
                               tls=server, run_on_arrival=run_on_arrival,
                               on_listening=on_listening,
                               on_spawning=on_spawning)  # fmt: skip

    def migration_finish(
        self,
        name: str,
        *,
        paused: bool = False,
        persistent_xml: str | None = None,
        on_running: Callable[[], None] | None = None,
    ) -> Domain:
        """Run the migrated domain *name* once its whole state is here (``running
        (migrated)``); *persistent_xml* defines it here too.

        :param on_running: called once the guest runs here for good, before the records are
            written (the source may stop its QEMU meanwhile); a failure after it still
            raises here
        """
        from pyvirt.api.domain import Domain  # lazy
        from pyvirt.service.domain import migrate  # lazy

        migrate.finish(self._service.domains, name, paused=paused,
                       persistent_xml=persistent_xml, on_running=on_running)  # fmt: skip
        return Domain(self._service, name)

    def migration_postcopy_run(self, name: str) -> None:
        """Run the guest of *name*'s incoming migration once it switched to post-copy
        (``running (post-copy)``): the source calls it at the switch."""
        from pyvirt.service.domain import migrate  # lazy

        migrate.run_postcopy(self._service.domains, name)

    def migration_abort(self, name: str) -> None:
        """Stop the incoming QEMU of a failed migration; nothing of it stays here."""
        from pyvirt.service.domain import migrate  # lazy

        migrate.abort(self._service.domains, name)

    def migration_recover_incoming(
        self, name: str, *, listen: str | None = None, tcp_host: str | None = None
    ) -> str:
        """Let the incoming QEMU of *name*'s migration, paused in post-copy, listen again
        (``migrate --postcopy-resume``); returns the URI the source resumes to."""
        from pyvirt.service.domain import migrate  # lazy

        return migrate.recover_incoming(self._service.domains, name, listen=listen,
                                        tcp_host=tcp_host)  # fmt: skip

    def migration_tunnel_socket(self, name: str) -> str:
        """The unix socket the incoming QEMU of a tunnelled migration of *name* listens on
        (the daemon writes the tunnel's stream into it).

        :raises NotFoundError: no such incoming migration waits here
        """
        from pyvirt.service.domain.migrate_tunnel import incoming_socket  # lazy

        return str(incoming_socket(self._service.domains, name))

    def name_of(self, xml: str | bytes) -> str | None:
        """The name domain XML gives itself, read the way the definition reads it but with
        nothing else checked (``None``: not even well-formed); cheap next to :meth:`validate`,
        for callers that define it next (which checks it all).
        """
        from pyvirt.errors import InvalidConfigError  # lazy
        from pyvirt.model.xmltree import find_path, parse_xml  # lazy

        try:
            el = find_path(parse_xml(xml, what="domain XML"), "name")
        except InvalidConfigError:
            return None
        return (el.text or "") if el is not None else ""

    def validate(self, xml: str | bytes) -> str:
        """Parse and check domain XML without defining it; returns the domain's name.

        :raises InvalidConfigError: invalid XML
        """
        return self._service.domains.parse(xml).name

    def native_argv(self, xml: str | bytes) -> builtins.list[str]:
        """The QEMU command line ``xml`` would start with (``domxml-to-native qemu-argv``).

        :raises InvalidConfigError: invalid XML
        """
        from pyvirt.service.domain import defaults, lifecycle  # lazy

        mgr = self._service.domains
        dom = defaults.apply(mgr.paths, mgr.parse(xml), expand_machine=False)
        return lifecycle.native_argv(mgr, dom)

    # -- save images (implemented in pyvirt.service.domain.save) ------------------------------
    def restore(
        self,
        path: str | Path,
        *,
        xml: str | None = None,
        running: bool | None = None,
        bypass_cache: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Domain:
        """Start the domain saved in the file *path* where it was (``restore``); one that is
        not defined comes back transient. The file stays.

        :param xml: restore with this XML instead of the stored one (same hardware)
        :param running: run (True) or stay paused (False); None: as it was saved
        :raises InvalidConfigError: not a pyvirt save image, or a corrupt one
        :raises InvalidStateError: it runs already, or a disk changed since the save
        :raises OperationFailedError: QEMU could not load the state
        """
        from pyvirt.service.domain import save  # lazy

        st = save.restore(self._service.domains, Path(path), xml=xml, running=running,
                          bypass_cache=bypass_cache, progress=progress, cancel=cancel)  # fmt: skip
        return self.get(st.name)

    def save_image_xml(self, path: str | Path, *, security_info: bool = False) -> str:
        """The domain XML stored in save image *path* (``save-image-dumpxml``)."""
        from pyvirt.service.domain import save_image  # lazy

        return save_image.image_xml(Path(path), security_info=security_info)

    def save_image_define(
        self, path: str | Path, xml: str | None, *, running: bool | None = None
    ) -> None:
        """Replace the XML and/or the state to restore into of save image *path*
        (``save-image-define``); the file is rewritten atomically.

        :raises InvalidConfigError: the XML describes other hardware or another domain
        """
        from pyvirt.service.domain import save_image  # lazy

        save_image.define_image(self._service.domains, Path(path), xml, running=running)

    def managed_save_names(self) -> builtins.set[str]:
        """The domains with a managed save image (``list --managed-save``)."""
        from pyvirt.service.domain import save_image  # lazy

        return save_image.managed_names(self._service.domains)

    # -- install and clone (implemented in pyvirt.api.install) --------------------------------
    def prepare_install(self, spec: InstallSpec) -> InstallJob:
        """Plan an installation (virt-install); nothing changes until ``job.run()``.

        :raises InvalidConfigError: the spec does not work on this host
        """
        from pyvirt.api.install import InstallJob  # lazy

        return InstallJob.prepare(self._service, spec)

    def install(
        self, spec: InstallSpec, *, transient: bool = False, autostart: bool = False
    ) -> InstallResult:
        """Plan and run an installation in one step (see :meth:`prepare_install`)."""
        return self.prepare_install(spec).run(transient=transient, autostart=autostart)

    def prepare_clone(self, request: CloneRequest) -> CloneJob:
        """Plan a clone (virt-clone); nothing changes until ``job.run()``.

        :raises NotFoundError: the original does not exist
        :raises InvalidStateError: the original is running (unless ``request.force``)
        """
        from pyvirt.api.install import CloneJob  # lazy

        return CloneJob.prepare(self._service, request)

    def clone(self, request: CloneRequest) -> Domain:
        """Plan and run a clone in one step; returns the new domain."""
        return self.prepare_clone(request).run()
