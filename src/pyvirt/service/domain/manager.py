"""Domain use cases: define, start, stop, list, inspect. Preconditions and messages live here.

Stop work is eager: the per-domain reaper (:mod:`pyvirt.service.domain.reaper`, the watcher
process) runs :meth:`DomainManager.stop_work` the moment QEMU exits, whatever the reason: the
hooks' ``after_stop`` (taps, macvtaps, VFs, cgroups, references), the shut-off reason
(``shutdown``, ``destroyed``, ``crashed``) and the removal of the run directory. A transient
domain whose QEMU is gone disappears. Stop work holds the domain lock and checks that the
run directory still belongs to the QEMU that exited, so it is idempotent and a command and
the reaper never both tear down. A command that looks at a domain whose QEMU is gone does the
stop work itself only when no reaper is alive to do it (or when it holds the lock anyway).
While pyvirtd runs, it is the watcher of every domain instead of the reapers
(:mod:`pyvirt.service.domain.supervise`): ``watch.json`` names it, so the same rules hold.

Locking: the namespace lock guards names and UUIDs (define, undefine, rename, create); the
per-name lock serializes operations on one domain. Order: namespace, then name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
    PyvirtError,
)
from pyvirt.service.domain.listcache import DefinedRows
from pyvirt.service.domain.types import DomainStatus, Reason, State
from pyvirt.state.atomic import atomic_write
from pyvirt.state.domains import DomainStore, revision_of
from pyvirt.state.locks import file_lock
from pyvirt.state.paths import StatePaths

#: the domain lock files this thread holds (:meth:`DomainManager.locked` is re-entrant)
_HELD = threading.local()
#: the reasons a paused domain's record may give (else: paused by the user)
_PAUSED_BY = frozenset({Reason.POSTCOPY, Reason.MIGRATING, Reason.IOERROR})

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.rundir import RunDir
    from pyvirt.drivers.qemu.runtime import RuntimeRecord
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.affect import Affect

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: ``pyvirt list`` imports
# this module; pyvirt.model/lxml (~80 ms), the QEMU runtime/process code, the NUMA advisor (~140
# ms with host probes) and lifecycle load only for the verbs that need them.


_UUID_RE = re.compile(rb"<uuid>\s*([0-9a-fA-F-]{32,36})\s*</uuid>")


def _looks_like_uuid(text: str) -> bool:
    hexdigits = text.replace("-", "")
    return len(hexdigits) == 32 and all(c in "0123456789abcdefABCDEF" for c in hexdigits)


class DomainManager:
    """All domain operations of one connection."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths
        self.store = DomainStore(paths)
        #: list_all's shut-off rows while their directories are unchanged (long-lived
        #: connections such as pyvirtd's list the same definitions again and again)
        self._defined_rows = DefinedRows(paths)

    # -- locks -------------------------------------------------------------------------
    @contextmanager
    def namespace(self) -> Iterator[None]:
        """Hold the lock of the domain namespace (names and UUIDs): define, create, rename
        and undefine take it, so two domains never get one name or UUID."""
        with file_lock(self.paths.lock_dir / "domains.lock", what="the domain namespace"):
            self._repair_namespace()
            yield

    def _repair_namespace(self) -> None:
        """Finish what a killed command left (caller holds the namespace lock): a logged
        rename is rolled forward; an index from an older pyvirt is rebuilt once."""
        if self.store.has_intent():
            self.store.replay_intent()
        if not self.store.index_complete():
            self.store.rebuild_index()

    def recover(self) -> None:
        """Finish an interrupted namespace change now if one is pending (one stat when none
        is) and the namespace lock is free; readers call it so they never see half a rename."""
        if not self.store.has_intent():
            return
        try:
            with file_lock(
                self.paths.lock_dir / "domains.lock", timeout=0, what="the domain namespace"
            ):
                self._repair_namespace()
        except OperationFailedError:
            pass  # its holder replays it

    @contextmanager
    def locked(self, name: str, *, timeout: float = 30.0) -> Iterator[None]:
        """Hold domain ``name``'s lock: every change to one domain (start, stop, device and
        tuning changes, the stop work) runs under it.

        :raises OperationFailedError: the lock stays busy for ``timeout`` seconds
        """
        path = self.paths.lock_dir / f"domain-{name}.lock"
        held: set[Path] = _HELD.__dict__.setdefault("paths", set())
        if path in held:  # re-entrant in one thread: a verb that calls another (snapshot
            yield  # delete -> block commit) must not wait for itself
            return
        with file_lock(path, timeout=timeout, what=f"domain '{name}'"):
            held.add(path)
            try:
                yield
            finally:
                held.discard(path)

    def affect(
        self,
        name: str,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> Affect:
        """Resolve the affect flags of a change to ``name`` against its state now
        (:func:`pyvirt.service.domain.affect.resolve`). Call it holding the domain lock, so
        the state cannot change before the change is made.

        :param persistent: virsh's ``--persistent`` of attach and detach verbs
        :raises InvalidConfigError: contradicting flags
        :raises InvalidStateError: the flags do not fit the domain's state
        """
        from pyvirt.service.domain.affect import resolve  # lazy

        return resolve(
            name,
            running=self.live_record(name, cleanup=True) is not None,
            persistent=self.store.exists(name),
            live=live,
            config=config,
            current=current,
            persistent_flag=persistent,
        )

    # -- lookups ----------------------------------------------------------------------
    def running_names(self) -> list[str]:
        """Names of domains with a run directory (running, or gone and not reaped yet)."""
        try:
            entries = os.listdir(self.paths.domain_run_root)
        except FileNotFoundError:
            return []
        return [e for e in entries if not e.startswith(".") and not e.endswith(".json")]

    def record(self, name: str) -> RuntimeRecord | None:
        """The runtime record written at ``name``'s start (None: no run directory); it does
        not check that QEMU still runs (:meth:`live_record` does).

        :raises OperationFailedError: the record is unreadable (the hint says how to repair)
        """
        try:
            return self.rundir(name).record()
        except OperationFailedError as err:
            if err.hint:
                raise
            raise OperationFailedError(err.message, hint=self._record_hint(name)) from err

    def rundir(self, name: str) -> RunDir:
        """The owner of domain ``name``'s run directory (whether or not it runs)."""
        from pyvirt.drivers.qemu.rundir import RunDir  # lazy

        return RunDir(self.paths.domain_run_dir(name))

    def resolve(self, ident: str) -> str:
        """The name of the domain known by name, UUID or numeric id.

        :raises NotFoundError: if no domain matches
        """
        self.recover()
        plain = ident and "/" not in ident and ident not in (".", "..")
        if plain and (self.store.exists(ident) or self.paths.domain_run_dir(ident).is_dir()):
            return ident
        if _looks_like_uuid(ident):
            name = self.store.name_for_uuid(ident)
            if name:
                return name
            for running in self.running_names():
                rec = self.record(running)
                if rec is not None and rec.uuid.lower() == ident.lower():
                    return running
        if ident.isdigit():
            for running in self.running_names():
                rec = self.record(running)
                if rec is not None and rec.domain_id == int(ident):
                    return running
        raise NotFoundError(
            f"domain '{ident}' not found", hint="list the defined domains with 'list --all'"
        )

    # -- state and reconciliation -------------------------------------------------------
    def _stop_reason(self, name: str) -> Reason:
        """Why a domain is shut off: its last state, or what the watcher recorded for a QEMU
        that exited a moment ago (the reaper is still at work)."""
        if not self.paths.domain_run_dir(name).is_dir():  # the usual case: no driver code
            return self._last_reason(name)
        info = self.rundir(name).recorded_exit()
        return Reason(info.reason) if info is not None else self._last_reason(name)

    def shutoff_reason(self, name: str) -> Reason:
        """Why shut-off domain ``name`` stopped (its recorded reason; ``unknown`` if none)."""
        return self._stop_reason(name)

    def _last_reason(self, name: str) -> Reason:
        try:
            data = json.loads(self.paths.domain_last_state(name).read_text())
            return Reason(data.get("reason", "unknown"))
        except (FileNotFoundError, ValueError):
            return Reason.UNKNOWN

    def live_record(self, name: str, *, cleanup: bool) -> RuntimeRecord | None:
        """The runtime record of ``name`` if its QEMU is alive; otherwise maybe do stop work.

        With ``cleanup`` the caller holds the domain lock and the stop work runs now (it is
        idempotent: the reaper finds nothing left). Without it, the stop work is the
        reaper's; only when no reaper is alive (it was killed, or an older pyvirt started the
        domain) is it done here, and only if the lock is free right now (a busy lock means
        another command or the reaper is on it).
        """
        if not self.paths.domain_run_dir(name).is_dir():
            return None  # shut off, nothing to clean up: the driver code stays unloaded
        from pyvirt.drivers.qemu import process  # lazy

        rec = self.record(name)
        if rec is None:
            self._finish_killed_start(name, locked=cleanup)
            return None
        if process.is_alive(rec.pid, rec.starttime):
            if not self._reaper_alive(name):
                self._respawn_reaper(name, locked=cleanup)
            return rec
        if cleanup:
            self.reap(name, rec)
        elif not self._reaper_alive(name):
            try:
                with file_lock(
                    self.paths.lock_dir / f"domain-{name}.lock", timeout=0, what=f"domain '{name}'"
                ):
                    rec = self.record(name)
                    if rec is not None and not process.is_alive(rec.pid, rec.starttime):
                        self.reap(name, rec)
            except OperationFailedError:
                pass
        return None

    def _finish_killed_start(self, name: str, *, locked: bool) -> None:
        """Clean up after a start that was killed before it wrote the runtime record: kill the
        QEMU it may have launched (found by its command line), undo the hooks' work, remove
        the run directory. Without ``locked`` only if the domain lock is free right now (a
        busy lock means the start is still under way)."""
        run = self.rundir(name)
        if run.start_intent() is None:
            return
        if not locked:
            try:
                with file_lock(
                    self.paths.lock_dir / f"domain-{name}.lock", timeout=0, what=f"domain '{name}'"
                ):
                    self._finish_killed_start(name, locked=True)
            except OperationFailedError:
                pass
            return
        uuid = run.start_intent()
        if uuid is None or run.starter_alive():  # under way (in this very process, maybe)
            return
        from pyvirt.drivers.qemu import process  # lazy

        if uuid:
            for _ in range(2):  # again: a QEMU parent killed midway may have forked its daemon
                for found in process.find_by_cmdline(uuid, run.qmp_socket):
                    process.kill(found.pid, found.starttime)
        data = run.hooks()
        if data.sections:
            from pyvirt.service import hooks  # lazy

            hooks.run_after_stop(self, name, data.sections)
        run.remove()

    def _respawn_reaper(self, name: str, *, locked: bool) -> None:
        """Start a new reaper for a running domain whose reaper died (it was killed, or the
        start was killed before spawning it): stop work, exit reasons and on_poweroff
        policies need it. Without ``locked`` only if the domain lock is free right now."""
        if not locked:
            try:
                with file_lock(
                    self.paths.lock_dir / f"domain-{name}.lock", timeout=0, what=f"domain '{name}'"
                ):
                    self._respawn_reaper(name, locked=True)
            except OperationFailedError:
                pass
            return
        from pyvirt.drivers.qemu import process  # lazy
        from pyvirt.service.domain import reaper_spawn, supervise  # lazy

        rec = self.record(name)
        if rec is None or self._reaper_alive(name) or not process.is_alive(rec.pid, rec.starttime):
            return
        if supervise.supervisor_alive(self.paths):
            return  # pyvirtd watches this host's domains; it takes this one over itself
        if not process.cmdline_names(rec.pid, self.rundir(name).qmp_socket):
            return  # not a QEMU of this run directory (a test's stand-in): nothing to watch
        reaper_spawn.spawn(self.paths, name)

    def lost_qemus(self, name: str, uuid: str) -> list[int]:
        """Pids of live QEMUs of domain ``name`` (``uuid``) that no runtime record describes:
        the run directory was removed while they ran. Start refuses to run a second one."""
        from pyvirt.drivers.qemu import process  # lazy

        qmp = self.rundir(name).qmp_socket
        if process.unix_socket_bound(qmp) is False:
            return []  # a QEMU of this run directory, lost or not, listens on its QMP socket
        rec = self.record(name)
        return [
            f.pid for f in process.find_by_cmdline(uuid, qmp) if rec is None or f.pid != rec.pid
        ]

    def _reaper_alive(self, name: str) -> bool:
        from pyvirt.drivers.qemu.runtime import read_watcher  # lazy

        info = read_watcher(self.paths.domain_run_dir(name))
        return info is not None and info.alive

    def reap(self, name: str, rec: RuntimeRecord, *, wait: float = 0.5) -> None:
        """Stop work for a dead QEMU (caller holds the lock): the hooks' after_stop, the
        shut-off reason, the run directory removed.

        :param wait: seconds to wait for the watcher to record why QEMU exited (0: a
            ``destroy`` that killed it knows why)
        """
        from pyvirt.drivers.qemu import process  # lazy

        # its main thread may be a zombie while the kernel still tears the rest down: the
        # hooks and a next start want its files (taps, image locks) closed
        process.wait_exited(rec.pid, rec.starttime, timeout=5.0)
        run = self.rundir(name)
        reason = run.exit_info(wait=wait).reason
        data = run.hooks()
        if data.sections:
            from pyvirt.service import hooks  # lazy

            hooks.run_after_stop(self, name, data.sections)
        self.paths.domain_run_root.mkdir(parents=True, exist_ok=True)
        atomic_write(
            self.paths.domain_last_state(name),
            json.dumps({"state": "shut off", "reason": reason, "at": time.time()}).encode(),
            sync=False,
        )
        run.remove()

    def stop_work(
        self, name: str, pid: int, starttime: int | None, *, timeout: float = 60.0
    ) -> bool:
        """The stop work of domain ``name`` after its QEMU ``pid`` exited (the reaper calls it).

        Takes the domain lock and does nothing unless the run directory still describes that
        very QEMU and it is gone: a command may have done the work already, or started the
        domain again.

        :returns: whether this call did the work
        """
        from pyvirt.drivers.qemu import process  # lazy

        with self.locked(name, timeout=timeout):
            rec = self.record(name)
            if rec is None or rec.pid != pid or rec.starttime != starttime:
                return False
            if process.is_alive(rec.pid, rec.starttime):
                return False
            self.reap(name, rec)
            return True

    def status(self, ident: str) -> DomainStatus:
        """State of one domain, reconciled with reality."""
        name = self.resolve(ident)
        return self._status(name, uuids=None)

    def _status(
        self, name: str, uuids: dict[str, str] | None, *, lock: bool = False
    ) -> DomainStatus:
        rec = self.live_record(name, cleanup=lock)
        persistent = self.store.exists(name)
        if rec is None and not persistent:
            raise NotFoundError(f"domain '{name}' not found")
        autostart = persistent and self.store.autostart(name)
        if rec is not None:
            state = State.PAUSED if rec.paused else State.RUNNING
            if rec.paused:  # a migration says why (post-copy, --timeout-suspend, I/O error)
                reason = Reason(rec.reason) if rec.reason in _PAUSED_BY else Reason.USER
            else:
                reason = Reason(rec.reason) if rec.reason else Reason.BOOTED
            return DomainStatus(
                name, rec.uuid, rec.domain_id, state, reason, persistent, autostart, rec.pid
            )
        uuid = (uuids or {}).get(name) or self.uuid_of(name)
        return DomainStatus(name, uuid, None, State.SHUTOFF, self._stop_reason(name), persistent,
                            autostart)  # fmt: skip

    def _broken_status(self, name: str, uuids: dict[str, str], err: PyvirtError) -> DomainStatus:
        """The status of a domain whose records cannot be read: state unknown, with why."""
        persistent = self.store.exists(name)
        problem = err.message + (f" ({err.hint})" if err.hint else "")
        return DomainStatus(
            name, uuids.get(name, ""), None, State.UNKNOWN, Reason.UNKNOWN, persistent,
            persistent and self.store.autostart(name), problem=problem,
        )  # fmt: skip

    def _record_hint(self, name: str) -> str:
        run = self.paths.domain_run_dir(name)
        return (
            f"make sure no QEMU of domain '{name}' runs (ps -ef | grep {run}), "
            f"then remove {run} by hand"
        )

    def _definition_hint(self, name: str) -> str:
        return (
            f"repair {self.paths.domain_xml(name)} by hand, or remove it with "
            f"'pyvirt undefine --force {name}'"
        )

    def uuid_of(self, name: str) -> str:
        """UUID of a persistent domain: its own definition, not a scan of the index."""
        xml = self.store.read_bytes(name)
        if xml is not None:
            match = _UUID_RE.search(xml)
            if match:
                return match.group(1).decode()
        return self.definition(name).uuid

    def list_all(self, *, uuids: bool = True) -> list[DomainStatus]:
        """Every domain, running and defined: running ones first by id, then by name.

        Shut-off domains are described from directory listings alone (no per-domain file
        opens), so this stays fast with thousands of definitions.

        :param uuids: also read each shut-off domain's UUID (one small file each)
        """
        self.recover()
        key = self._defined_rows.key()  # before anything is listed
        try:
            run_entries = set(os.listdir(self.paths.domain_run_root))
        except FileNotFoundError:
            run_entries = set()
        running = {e for e in run_entries if not e.startswith(".") and not e.endswith(".json")}
        try:
            autostart = set(os.listdir(self.paths.autostart_dir))
        except FileNotFoundError:
            autostart = set()
        cached = self._defined_rows.get(uuids, key)
        uuid_map = self.store.uuids() if uuids and (cached is None or running) else {}
        out: list[DomainStatus] = []
        for name in running:
            try:
                out.append(self._status(name, uuid_map))
            except NotFoundError:
                continue  # a transient domain that just went away
            except PyvirtError as err:  # one bad record does not hide the others
                out.append(self._broken_status(name, uuid_map, err))
        if cached is not None:
            out.extend(cached)
            out.sort(key=lambda s: (s.id is None, s.id or 0, s.name))
            return out
        first = len(out)
        for name in self.store.names():
            if name in running:
                continue
            reason = Reason.UNKNOWN
            if f"{name}.last.json" in run_entries:
                reason = self._last_reason(name)
            uuid = uuid_map.get(name, "")
            if uuids and not uuid:
                try:
                    uuid = self.uuid_of(name)
                except PyvirtError as err:  # a corrupt definition without a UUID
                    out.append(self._broken_status(name, uuid_map, err))
                    continue
            out.append(
                DomainStatus(name, uuid, None, State.SHUTOFF, reason, True, name in autostart)
            )
        self._defined_rows.put(uuids, key, out[first:])
        out.sort(key=lambda s: (s.id is None, s.id or 0, s.name))
        return out

    # -- definitions ------------------------------------------------------------------
    def running_definitions(self) -> list[tuple[str, Domain]]:
        """(name, live definition) of every running domain (one gone meanwhile is skipped)."""
        out = []
        for st in self.list_all():
            if st.id is None:
                continue
            try:
                out.append((st.name, self.definition(st.name)))
            except NotFoundError:
                continue
        return out

    def definition(self, ident: str, *, inactive: bool = False) -> Domain:
        """The domain's definition: the live one while running unless ``inactive``."""
        from pyvirt.model.domain import Domain  # lazy

        name = self.resolve(ident)
        live = not inactive or not self.store.exists(name)
        if live and self.live_record(name, cleanup=False) is not None:
            run = self.rundir(name)
            if run.has_live_xml():
                with contextlib.suppress(NotFoundError):  # it stopped just now
                    return Domain.from_xml(run.live_xml(), validate=False)
        xml = self.store.read_bytes(name)
        if xml is None:
            raise NotFoundError(f"domain '{name}' not found")
        return self.parse_stored(name, xml)

    def parse_stored(self, name: str, xml: bytes) -> Domain:
        """Parse the stored definition ``xml`` of ``name``.

        :raises InvalidConfigError: it cannot be read; names the file and the repair
        """
        from pyvirt.model.domain import Domain  # lazy

        try:
            return Domain.from_xml(xml)
        except InvalidConfigError as err:
            raise InvalidConfigError(
                f"the definition of domain '{name}' cannot be read: {err.message}",
                problems=err.problems,
                hint=self._definition_hint(name),
            ) from err

    def dumpxml(self, ident: str, *, inactive: bool = False, security_info: bool = False) -> str:
        """The definition as XML; VNC/SPICE passwords (``passwd=``) only with
        ``security_info``, as libvirt hides them without ``--security-info``."""
        dom = self.definition(ident, inactive=inactive)
        if not security_info:
            for g in dom.devices.graphics:
                if "passwd" in g.element.attrib:
                    del g.element.attrib["passwd"]
        return dom.to_xml()

    @staticmethod
    def parse(xml: str | bytes) -> Domain:
        """Parse and validate domain XML without defining it.

        :raises InvalidConfigError: malformed or invalid XML
        """
        from pyvirt.model.domain import Domain  # lazy

        return Domain.from_xml(xml)

    def xpath(self, ident: str, expr: str, *, inactive: bool = False) -> list[str]:
        """The nodes of the domain's XML matching ``expr``, serialized (virsh ``--xpath``)."""
        from lxml import etree  # lazy

        from pyvirt.model.xmlmap import parse_xml  # lazy

        root = parse_xml(self.dumpxml(ident, inactive=inactive))
        try:
            found = root.xpath(expr)
        except etree.XPathError as err:
            raise InvalidConfigError(f"invalid xpath '{expr}': {err}") from None
        items = found if isinstance(found, list) else [found]
        out = []
        for node in items:
            if isinstance(node, etree._Element):
                out.append(etree.tostring(node, encoding="unicode").rstrip())
            else:
                out.append(str(node))
        return out

    def check_unique(self, dom: Domain, *, allow_same_name: bool) -> None:
        """Refuse a name or UUID that another domain holds (caller holds the namespace lock)."""
        owner = self.store.name_for_uuid(dom.uuid)
        if owner is not None and owner != dom.name:
            raise AlreadyExistsError(
                f"domain '{owner}' already exists with uuid {dom.uuid}",
                hint="remove the <uuid> element to get a new one, or undefine the other domain",
            )
        for running in self.running_names():
            if running == dom.name:
                continue
            rec = self.live_record(running, cleanup=False)
            if rec is not None and rec.uuid.lower() == dom.uuid.lower():
                raise AlreadyExistsError(
                    f"domain '{running}' is running with uuid {dom.uuid}",
                )
        if self.store.exists(dom.name) or self.paths.domain_run_dir(dom.name).is_dir():
            if not allow_same_name:
                raise AlreadyExistsError(f"domain '{dom.name}' already exists")
            existing_uuid = self.uuid_of(dom.name) if self.store.exists(dom.name) else None
            rec = self.live_record(dom.name, cleanup=False)
            if rec is not None:
                existing_uuid = rec.uuid
            if existing_uuid and existing_uuid.lower() != dom.uuid.lower():
                raise AlreadyExistsError(
                    f"domain '{dom.name}' already exists with uuid {existing_uuid}",
                    hint="keep the existing <uuid> or choose another name",
                )

    def define(
        self,
        xml: str | bytes,
        *,
        force: bool = False,
        expect_revision: str | bool | None = False,
    ) -> tuple[Domain, list[str]]:
        """Define (or redefine) a persistent domain from XML; returns it and warnings.

        Runs under the namespace lock and the domain's lock, so it never lands in the middle
        of another command's read-modify-write of the definition.

        :param force: accept what the NUMA advisor refuses (more than 64 vCPUs)
        :param expect_revision: the revision (:meth:`revision`) the caller based the XML on
            (None: the domain must not be defined yet); False: no check
        :raises InvalidStateError: the definition is no longer at ``expect_revision``
        """
        from pyvirt.host.hostpaths import refuse_risks  # lazy
        from pyvirt.model.domain import Domain  # lazy
        from pyvirt.model.pcie import complete_domain  # lazy
        from pyvirt.service.domain import defaults, firmware, hostnodes  # lazy
        from pyvirt.service.tuning import advisor  # lazy
        from pyvirt.state.names import check_new_name  # lazy

        dom = Domain.from_xml(xml)
        check_new_name(dom.name, paths=self.paths)
        firmware.autoselect(dom, firmware.nvram_dir(self.paths))  # firmware='efi', as libvirt
        complete_domain(dom)  # q35: root ports, controllers and PCI addresses, as libvirt
        defaults.apply(self.paths, dom)  # stored as libvirt stores it: MACs, controllers...
        complete_domain(dom)  # q35 again: root ports for the devices the defaults added
        hostnodes.check_numatune(dom)
        advice = advisor.check_define(dom, force=force)  # raises for a refusal unless forced
        if not force:
            refuse_risks(f"domain '{dom.name}'", self.host_risks(dom))
        with self.namespace(), self.locked(dom.name):
            self.check_unique(dom, allow_same_name=True)
            if expect_revision is not False:
                self.store.check_revision(dom.name, expect_revision)  # type: ignore[arg-type]
            self.store.index_uuid(dom.name, dom.uuid)  # before the definition: never unindexed
            self.store.write(dom.name, dom.to_xml())
        from pyvirt.service.domain.display import vnc_warnings  # lazy

        return dom, [*dom.warnings, *advice, *vnc_warnings(dom)]

    def host_risks(self, dom: Domain) -> list[str]:
        """What ``dom``'s disks and character devices risk on the host
        (:func:`pyvirt.host.hostpaths.domain_risks`)."""
        from pyvirt.host.hostpaths import domain_risks  # lazy

        p = self.paths
        return domain_risks(dom, (p.config, p.run, p.log, p.cache), log_dir=p.log)

    def undefine(
        self,
        ident: str,
        *,
        remove_storage: Callable[[Domain], list[str]] | None = None,
        managed_save: bool = False,
        nvram: bool | None = None,
        tpm: bool | None = None,
    ) -> list[str]:
        """Remove a persistent definition. A running domain becomes transient (like virsh).

        :param remove_storage: deletes the shut-off domain's storage under the domain lock
            (:func:`pyvirt.service.storage.volumes.remove_domain_storage`); refused while it
            runs
        :param managed_save: discard its managed save image too (refused while it has one
            otherwise, like virsh)
        :param nvram: its UEFI variables file (``<os>/<nvram>``): True removes it, False
            keeps it, None refuses while the file exists (like virsh: ``--nvram`` /
            ``--keep-nvram``)
        :param tpm: its emulated TPM's state (``LIB/swtpm/UUID``): True removes it, False keeps
            it, None removes it unless ``persistent_state='yes'`` (virsh's ``--tpm`` /
            ``--keep-tpm``); a running domain keeps it until it stops (then transient)
        :returns: what ``remove_storage`` removed
        """
        name = self.resolve(ident)
        removed: list[str] = []
        with self.namespace(), self.locked(name):
            if not self.store.exists(name):
                raise InvalidStateError(
                    f"domain '{name}' is transient; it cannot be undefined",
                    hint="use 'destroy' to stop it; it disappears then",
                )
            dom = self.definition(name, inactive=True)
            live = self.live_record(name, cleanup=True) is not None
            from pyvirt.service.domain import save_image  # lazy

            if not managed_save:
                save_image.refuse_undefine(self, name)
            nvram_file = Path(dom.os.nvram) if dom.os.nvram else None
            if nvram is None and nvram_file is not None and nvram_file.exists():
                raise InvalidStateError(
                    f"cannot undefine domain '{name}': it has the NVRAM file {nvram_file}",
                    hint="add --nvram to delete the file too, or --keep-nvram to keep it",
                )
            if nvram and live and nvram_file is not None and nvram_file.exists():
                raise InvalidStateError(
                    f"domain '{name}' is running; its NVRAM file cannot be removed",
                    hint="destroy it first, or undefine it with --keep-nvram",
                )
            if remove_storage is not None:
                if live:
                    raise InvalidStateError(
                        f"domain '{name}' is running; its storage cannot be removed",
                        hint="destroy it first",
                    )
                removed = remove_storage(dom)
            self.store.delete(name)
            save_image.managed_path(self, name).unlink(missing_ok=True)
            if nvram and nvram_file is not None and nvram_file.exists():
                nvram_file.unlink()
            self._undefine_tpm(name, dom, tpm, live=live)
            self.store.unindex_uuid(dom.uuid)
            if not live:
                self.paths.domain_last_state(name).unlink(missing_ok=True)
        return removed

    def _undefine_tpm(self, name: str, dom: Domain, tpm: bool | None, *, live: bool) -> None:
        """Remove the TPM state of undefined ``dom`` as :meth:`undefine`'s ``tpm`` says (a
        running domain's when it stops, as a transient domain's: ``--keep-tpm`` then keeps
        it, ``--tpm`` removes it even if persistent)."""
        tpms = dom.devices.tpms
        pstate = bool(tpms) and tpms[0].persistent_state == "yes"
        if live:
            if tpms and tpm is not None:
                keep = not tpm

                def change(section: dict[str, Any]) -> dict[str, Any]:
                    return {**section, "persistent_state": keep} if section else section

                self.rundir(name).update_hooks("tpm", change)
            return
        if tpm is False or (tpm is None and pstate):
            return
        from pyvirt.service.domain import tpm as swtpm  # lazy

        swtpm.remove_state(self.paths, dom.uuid)

    def undefine_broken(self, ident: str) -> bool:
        """Remove a definition that cannot be read (``undefine --force``).

        A readable definition is left alone (plain :meth:`undefine` is the way for it).

        :returns: whether a broken definition was removed
        """
        name = self.resolve(ident)
        with self.namespace(), self.locked(name):
            if not self.store.exists(name):
                return False
            try:
                self.definition(name, inactive=True)
            except InvalidConfigError:
                pass
            else:
                return False
            uuid = self.store.uuids().get(name)
            self.store.delete(name)
            if uuid:
                self.store.unindex_uuid(uuid)
            self.paths.domain_last_state(name).unlink(missing_ok=True)
        return True

    def rename(self, ident: str, new_name: str) -> None:
        """Rename a shut-off persistent domain (virsh ``domrename``)."""
        from pyvirt.state.names import check_new_name  # lazy

        name = self.resolve(ident)
        check_new_name(new_name, paths=self.paths)
        with self.namespace(), self.locked(name):
            if self.live_record(name, cleanup=True) is not None:
                raise InvalidStateError(
                    f"domain '{name}' is running; only a shut-off domain can be renamed",
                    hint="shut it down first",
                )
            if not self.store.exists(name):
                raise InvalidStateError(f"domain '{name}' is transient; it cannot be renamed")
            if self.has_managed_save(name):
                raise InvalidStateError(
                    f"domain '{name}' has a managed save image; it cannot be renamed",
                    hint=f"'start {name}' to resume it, or 'managedsave-remove {name}' first",
                )
            if self.store.exists(new_name) or self.paths.domain_run_dir(new_name).is_dir():
                raise AlreadyExistsError(f"domain '{new_name}' already exists")
            dom = self.definition(name, inactive=True)
            dom.name = new_name
            with self.locked(new_name):
                self.store.rename(name, new_name, dom.uuid, dom.to_xml())

    # -- revisions and read-modify-write of definitions -----------------------------------
    def revision(self, ident: str) -> str:
        """The revision of the domain's persistent definition (a content hash, an ETag).

        :raises InvalidStateError: it has no persistent definition
        """
        name = self.resolve(ident)
        rev = self.store.revision(name)
        if rev is None:
            raise InvalidStateError(f"domain '{name}' is transient; it has no definition")
        return rev

    def read_config(self, name: str) -> tuple[Domain, str]:
        """The persistent definition of ``name`` and the revision it was read at, for a
        read-modify-write (caller holds the domain lock; write it with :meth:`write_config`).

        :raises InvalidStateError: ``name`` is not defined
        """
        from pyvirt.model.domain import Domain  # lazy

        got = self.store.read_revision(name)
        if got is None:
            raise InvalidStateError(f"domain '{name}' is not defined")
        return Domain.from_xml(got[0]), got[1]

    def write_config(self, name: str, dom: Domain, revision: str) -> str:
        """Write back a definition read by :meth:`read_config` at ``revision``; refused if
        it changed since (caller holds the domain lock). Returns the new revision.

        :raises InvalidStateError: "domain 'X' changed underneath this command; retry"
        """
        xml = dom.to_xml()
        self.store.write(name, xml, expect_revision=revision)
        return revision_of(xml.encode())

    @contextmanager
    def edit_config(self, name: str) -> Iterator[Domain]:
        """Read-modify-write ``name``'s definition under its lock, checked against the
        revision read: ``with mgr.edit_config(name) as dom: dom.memory = ...``.

        :raises InvalidStateError: not defined, or changed underneath
        """
        with self.locked(name):
            dom, rev = self.read_config(name)
            yield dom
            self.write_config(name, dom, rev)

    def set_autostart(self, ident: str, enabled: bool) -> None:
        name = self.resolve(ident)
        if not self.store.exists(name):
            raise InvalidStateError(f"domain '{name}' is transient; autostart needs a definition")
        self.store.set_autostart(name, enabled)

    # -- lifecycle (implemented in pyvirt.service.domain.lifecycle) ----------------------------
    def start(self, ident: str, *, paused: bool = False) -> DomainStatus:
        from pyvirt.service.domain import lifecycle  # lazy

        return lifecycle.start(self, self.resolve(ident), paused=paused)

    def has_managed_save(self, name: str) -> bool:
        """Whether domain ``name`` has a managed save image (:mod:`.save`)."""
        from pyvirt.service.domain import save_image  # lazy

        return save_image.has_managed_save(self, name)

    def resume_managed(self, name: str, *, paused: bool = False) -> DomainStatus:
        """Restore ``name`` from its managed save image (``start``; caller holds its lock)."""
        from pyvirt.service.domain import save  # lazy

        return save.resume_managed(self, name, paused=paused)

    def create(self, xml: str | bytes, *, paused: bool = False) -> DomainStatus:
        from pyvirt.service.domain import lifecycle  # lazy

        return lifecycle.create(self, xml, paused=paused)

    def running(self, ident: str) -> tuple[str, RuntimeRecord]:
        """Name and runtime record of a running domain.

        :raises InvalidStateError: if it is not running
        """
        name = self.resolve(ident)
        rec = self.live_record(name, cleanup=False)
        if rec is None:
            raise InvalidStateError(f"domain '{name}' is not running", hint="start it first")
        return name, rec

    def run_dir(self, name: str) -> Path:
        return self.paths.domain_run_dir(name)

    def live_definition(self, name: str) -> Domain:
        """The live definition of running domain ``name`` (caller holds its lock).

        :raises InvalidStateError: it is not running
        """
        from pyvirt.model.domain import Domain  # lazy

        try:
            return Domain.from_xml(self.rundir(name).live_xml(), validate=False)
        except NotFoundError:
            raise InvalidStateError(f"domain '{name}' is not running") from None

    def save_live(self, name: str, dom: Domain) -> None:
        """Replace the live definition of running domain ``name`` (caller holds its lock)."""
        self.rundir(name).write_live_xml(dom.to_xml())
