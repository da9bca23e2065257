"""Storage pools: define, build, start, destroy, delete, undefine, list, inspect.

Definitions live in ``CONFIG/storage/NAME.xml``; an active pool has its live definition in
``RUN/storage/NAME.xml`` and a private backend directory ``RUN/storage/NAME/``. A transient
pool (``pool-create``) has only the live file. Locks: ``pools.lock`` guards names, UUIDs and
target paths (define, create, undefine); ``pool-NAME.lock`` serializes work on one pool.
Order: namespace first, then the pool.

The ``default`` pool (a ``dir`` pool at ``CONFIG/images``) is defined, built, started and
marked autostart on first use; autostart pools are started once per boot (the RUN root is
a tmpfs), on the first storage call that finds them inactive.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    PyvirtError,
)
from pyvirt.model.pool import Pool, SourceDevice, SourceHost, new_pool
from pyvirt.service.storage.targets import check_pool_target
from pyvirt.state.atomic import atomic_write
from pyvirt.state.locks import file_lock
from pyvirt.state.names import check_new_name
from pyvirt.state.paths import StatePaths
from pyvirt.state.revisions import check_revision, revision_of
from pyvirt.storage.registry import backend_class

if TYPE_CHECKING:
    from pyvirt.service.storage.volumes import VolumeManager
    from pyvirt.storage.base import DiskSource, PoolBackend

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: ``pool-list`` does not
# need the volume code (~20 ms) nor the capabilities table.

log = logging.getLogger(__name__)
DEFAULT_POOL = "default"


@dataclass
class PoolStatus:
    """A pool as ``pool-list``/``pool-info`` show it (sizes in bytes; 0 when inactive)."""

    name: str
    uuid: str
    type: str
    state: str  # "running" | "inactive"
    persistent: bool
    autostart: bool
    capacity: int = 0
    allocation: int = 0
    available: int = 0
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


class PoolManager:
    """All storage pool operations of one connection; :attr:`volumes` has the vol-* ones."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths
        self._ready = False

    @cached_property
    def volumes(self) -> VolumeManager:
        """Volume operations (vol-*)."""
        from pyvirt.service.storage.volumes import VolumeManager  # lazy

        return VolumeManager(self)

    # -- locks and files ---------------------------------------------------------------
    @contextmanager
    def _namespace(self) -> Iterator[None]:
        with file_lock(self.paths.lock_dir / "pools.lock", what="the pool namespace"):
            yield

    @contextmanager
    def locked(self, name: str) -> Iterator[None]:
        """Hold pool ``name``'s lock."""
        with file_lock(self.paths.lock_dir / f"pool-{name}.lock", what=f"pool '{name}'"):
            yield

    def _read(self, path: Any) -> Pool | None:
        try:
            return Pool.from_xml(path.read_bytes())
        except FileNotFoundError:
            return None

    def config(self, name: str) -> Pool | None:
        """The persistent definition of ``name``, or None."""
        return self._read(self.paths.pool_xml(name))

    def live(self, name: str) -> Pool | None:
        """The live definition of active pool ``name``, or None when inactive."""
        return self._read(self.paths.pool_live_xml(name))

    def definition(self, name: str) -> Pool:
        """The live definition if active, else the persistent one."""
        pool = self.live(name) or self.config(name)
        if pool is None:
            raise _not_found(name)
        return pool

    def names(self) -> list[str]:
        """Every pool name, persistent or active, sorted."""
        self._init()
        found: set[str] = set()
        for d in (self.paths.pool_config_dir, self.paths.pool_run_root):
            if d.is_dir():
                found |= {p.stem for p in d.glob("*.xml") if not p.name.startswith(".")}
        return sorted(found)

    def backend(self, pool: Pool) -> PoolBackend:
        """A backend object for ``pool``."""
        return backend_class(pool.type)(pool, self.paths.pool_run_dir(pool.name))

    def active_backend(self, ident: str) -> PoolBackend:
        """The backend of active pool ``ident``.

        :raises InvalidStateError: when the pool is inactive
        """
        name = self.resolve(ident)
        pool = self.live(name)
        if pool is None:
            raise InvalidStateError(
                f"storage pool '{name}' is not active", hint=f"start it with 'pool-start {name}'"
            )
        return self.backend(pool)

    def autostart(self, name: str) -> bool:
        """Whether ``name`` is marked autostart."""
        return (self.paths.pool_autostart_dir / name).exists()

    # -- first use ------------------------------------------------------------------------
    def _init(self) -> None:
        if self._ready:
            return
        self._ready = True
        marker = self.paths.pool_config_dir / ".initialized"
        booted = self.paths.pool_run_root / ".autostarted"
        if marker.exists() and booted.exists():
            return
        with self._namespace():
            if not marker.exists():
                self._make_default()
                self.paths.pool_config_dir.mkdir(parents=True, exist_ok=True)
                marker.touch()
            if not booted.exists():
                self.paths.pool_run_root.mkdir(parents=True, exist_ok=True)
                booted.touch()
                for name in self.names():
                    if self.autostart(name) and self.live(name) is None:
                        try:
                            self._start(name, build=name == DEFAULT_POOL)
                        except PyvirtError as err:
                            log.warning("autostart of pool %s failed: %s", name, err)

    def _make_default(self) -> None:
        if self.paths.pool_xml(DEFAULT_POOL).exists():
            return
        target = str(self.paths.default_images_dir)
        if any(p.target_path == target for p in self._all_definitions()):
            return
        pool = new_pool(DEFAULT_POOL, "dir")
        pool.ensure_target().path = target
        self._write_config(pool)
        (self.paths.pool_autostart_dir).mkdir(parents=True, exist_ok=True)
        (self.paths.pool_autostart_dir / DEFAULT_POOL).touch()

    def _all_definitions(self) -> list[Pool]:
        out: list[Pool] = []
        for d in (self.paths.pool_run_root, self.paths.pool_config_dir):
            for p in sorted(d.glob("*.xml")) if d.is_dir() else []:
                try:
                    out.append(Pool.from_xml(p.read_bytes()))
                except PyvirtError:
                    continue
        return out

    # -- lookups ----------------------------------------------------------------------
    def resolve(self, ident: str) -> str:
        """The name of the pool known by name or UUID.

        :raises NotFoundError: if no pool matches
        """
        names = self.names()
        if ident in names:
            return ident
        for pool in self._all_definitions():
            if pool.uuid.replace("-", "").lower() == ident.replace("-", "").lower():
                return pool.name
        raise _not_found(ident)

    # -- definitions --------------------------------------------------------------------
    def _write_config(self, pool: Pool) -> None:
        self.paths.pool_config_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(self.paths.pool_xml(pool.name), pool.to_xml().encode(), mode=0o600)

    def _check_new(self, pool: Pool) -> PoolBackend:
        """Validate ``pool`` against its backend and the other pools (namespace lock held)."""
        check_new_name(pool.name, kind="pool")
        backend = self.backend(pool)
        backend.check()
        caps = backend.capabilities
        target = pool.target_path
        if caps.target_is_dir and target is None:
            raise InvalidConfigError(
                f"pool '{pool.name}' of type '{pool.type}' needs a target path",
                hint="give --target DIR",
            )
        if target and caps.target_is_dir and Path(target).exists() and not Path(target).is_dir():
            raise InvalidConfigError(
                f"pool '{pool.name}' target path '{target}' is a file, not a directory",
                hint="choose another --target",
            )
        if target and caps.target_is_dir:
            check_pool_target(pool.name, target, self.paths, self._other_dirs(pool.name))
        for other in self._all_definitions():
            if other.name == pool.name:
                if other.uuid != pool.uuid and self.paths.pool_xml(pool.name).exists():
                    raise AlreadyExistsError(
                        f"pool '{pool.name}' already exists with uuid {other.uuid}"
                    )
                continue
            if other.uuid == pool.uuid:
                raise AlreadyExistsError(
                    f"pool '{other.name}' already has uuid {pool.uuid}",
                    hint="remove the <uuid> element to get a new one",
                )
            if target and caps.target_is_dir and other.target_path == target:
                raise AlreadyExistsError(
                    f"pool '{other.name}' already uses target path '{target}'",
                    hint="choose another --target",
                )
        return backend

    def _other_dirs(self, name: str) -> list[tuple[str, str]]:
        """``(name, directory)`` of every other pool whose target is a directory."""
        out = []
        for other in self._all_definitions():
            if other.name == name or not other.target_path:
                continue
            try:
                is_dir = self.backend(other).capabilities.target_is_dir
            except PyvirtError:
                continue
            if is_dir:
                out.append((other.name, other.target_path))
        return out

    def revision(self, ident: str) -> str:
        """The revision of the persistent definition (a content hash; an ETag).

        :raises InvalidStateError: the pool is transient
        """
        name = self.resolve(ident)
        try:
            data = self.paths.pool_xml(name).read_bytes()
        except FileNotFoundError:
            raise InvalidStateError(f"pool '{name}' is transient") from None
        return revision_of(data)

    def define_xml(
        self, xml: str | bytes, *, expect_revision: str | None = None
    ) -> tuple[Pool, list[str]]:
        """pool-define: store a persistent definition; returns it and its warnings.

        :param expect_revision: refuse unless the stored definition is at this
            :meth:`revision` (checked under the namespace lock)
        :raises InvalidConfigError: bad XML, unsupported type, missing source or target
        :raises AlreadyExistsError: name/UUID/target path already used by another pool
        :raises InvalidStateError: the definition is no longer at ``expect_revision``
        """
        pool = Pool.from_xml(xml)
        check_new_name(pool.name, kind="pool")
        self._init()
        with self._namespace():
            if expect_revision is not None:
                check_revision("pool", pool.name, self.paths.pool_xml(pool.name), expect_revision)
            existing = self.config(pool.name) or self.live(pool.name)
            if existing is not None and "<uuid>" not in (
                xml if isinstance(xml, str) else xml.decode(errors="replace")
            ):
                pool.uuid = existing.uuid  # redefining without a uuid keeps the old one
            self._check_new(pool)
            self._write_config(pool)
        return pool, pool.warnings

    def build_definition(
        self,
        name: str,
        type: str,
        *,
        source_host: str | None = None,
        source_path: str | None = None,
        source_dev: str | None = None,
        source_name: str | None = None,
        source_format: str | None = None,
        target: str | None = None,
        auth_type: str | None = None,
        auth_username: str | None = None,
        secret_usage: str | None = None,
        source_initiator: str | None = None,
    ) -> Pool:
        """The XML ``pool-define-as``/``pool-create-as`` make from their arguments."""
        pool = new_pool(name, type)
        if any((source_host, source_path, source_dev, source_name, source_format, auth_type)):
            src = pool.ensure_source()
            if source_host:
                host, _, port = source_host.partition(":")
                h = SourceHost(name=host)
                if port:
                    h.port = int(port) if port.isdigit() else _bad_port(source_host)
                src.hosts = [h]
            if source_dev:
                src.devices = [SourceDevice(path=source_dev)]
            if source_path:
                src.dir = source_path
            if source_name:
                src.name = source_name
            if source_format:
                src.format = source_format
            if source_initiator:
                src.initiator_iqn = source_initiator
            if auth_type:
                src.auth_type = auth_type
                src.auth_username = auth_username
                src.auth_secret_usage = secret_usage
        if target:
            pool.ensure_target().path = target
        problems = pool.validate()
        if problems:
            raise InvalidConfigError(problems=problems)
        return pool

    def define_as(self, name: str, type: str, **source: str | None) -> Pool:
        """pool-define-as (keyword arguments as in :meth:`build_definition`)."""
        pool = self.build_definition(name, type, **source)
        return self.define_xml(pool.to_xml())[0]

    def create_xml(
        self, xml: str | bytes, *, build: bool = False, overwrite: bool | None = None
    ) -> Pool:
        """pool-create: a transient pool, started (built first with ``build``)."""
        pool = Pool.from_xml(xml)
        check_new_name(pool.name, kind="pool")
        self._init()
        with self._namespace():
            if pool.name in self.names():
                raise AlreadyExistsError(
                    f"pool '{pool.name}' already exists",
                    hint=f"start it with 'pool-start {pool.name}'",
                )
            backend = self._check_new(pool)
            with self.locked(pool.name):
                self._activate(pool, backend, build=build, overwrite=overwrite)
        return pool

    def create_as(self, name: str, type: str, *, build: bool = False, **source: str | None) -> Pool:
        """pool-create-as."""
        pool = self.build_definition(name, type, **source)
        return self.create_xml(pool.to_xml(), build=build)

    def undefine(self, ident: str) -> None:
        """pool-undefine (an active pool stays active, as a transient one)."""
        name = self.resolve(ident)
        with self._namespace(), self.locked(name):
            if self.config(name) is None:
                raise InvalidStateError(
                    f"pool '{name}' is transient; it has no definition to undefine",
                    hint=f"stop it with 'pool-destroy {name}'",
                )
            self.paths.pool_xml(name).unlink()
            (self.paths.pool_autostart_dir / name).unlink(missing_ok=True)

    # -- state changes ------------------------------------------------------------------
    def _activate(
        self, pool: Pool, backend: PoolBackend, *, build: bool, overwrite: bool | None
    ) -> None:
        backend.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            if build:
                backend.build(overwrite=overwrite)
            backend.start()
        except BaseException:
            shutil.rmtree(backend.run_dir, ignore_errors=True)
            raise
        atomic_write(self.paths.pool_live_xml(pool.name), pool.to_xml().encode(), mode=0o600)

    def _start(self, name: str, *, build: bool = False, overwrite: bool | None = None) -> None:
        with self.locked(name):
            if self.live(name) is not None:
                raise InvalidStateError(f"pool '{name}' is already active")
            pool = self.config(name)
            if pool is None:
                raise _not_found(name)
            self._activate(pool, self.backend(pool), build=build, overwrite=overwrite)

    def start(self, ident: str, *, build: bool = False, overwrite: bool | None = None) -> None:
        """pool-start (``build``: pool-build first, with ``overwrite`` as there)."""
        self._start(self.resolve(ident), build=build, overwrite=overwrite)

    def build(self, ident: str, *, overwrite: bool | None = None) -> None:
        """pool-build (``overwrite``: None default, True --overwrite, False --no-overwrite)."""
        name = self.resolve(ident)
        with self.locked(name):
            pool = self.definition(name)
            backend = self.backend(pool)
            if overwrite is not None and not backend.capabilities.build_overwrite:
                raise InvalidConfigError(
                    f"pool '{name}' of type '{pool.type}' has no --overwrite/--no-overwrite"
                )
            if self.live(name) is not None and overwrite is not None:
                raise InvalidStateError(
                    f"pool '{name}' is active; it cannot be formatted",
                    hint=f"stop it with 'pool-destroy {name}' first",
                )
            backend.build(overwrite=overwrite)

    def destroy(self, ident: str) -> None:
        """pool-destroy: stop using the pool (unmount...), keep its data.

        :raises InvalidStateError: inactive, or a running domain uses one of its volumes
        """
        from pyvirt.service.storage.volumes import domains_using  # lazy

        name = self.resolve(ident)
        with self.locked(name):
            pool = self.live(name)
            if pool is None:
                raise InvalidStateError(f"pool '{name}' is not active")
            backend = self.backend(pool)
            if backend.is_started():
                users = domains_using(self.paths, name, [v.path for v in backend.refresh()])
                if users:
                    raise InvalidStateError(
                        f"pool '{name}' has volumes in use by domain "
                        + ", ".join(f"'{d}'" for d in users),
                        hint="shut those domains down or detach the disks first",
                    )
            backend.stop()
            self.paths.pool_live_xml(name).unlink(missing_ok=True)
            shutil.rmtree(backend.run_dir, ignore_errors=True)

    def delete(self, ident: str) -> None:
        """pool-delete: remove what pool-build made (inactive pools only)."""
        name = self.resolve(ident)
        with self.locked(name):
            if self.live(name) is not None:
                raise InvalidStateError(
                    f"pool '{name}' is active", hint=f"stop it with 'pool-destroy {name}' first"
                )
            pool = self.definition(name)
            self.backend(pool).delete()

    def refresh(self, ident: str) -> None:
        """pool-refresh: rescan the volumes (file pools list live, so this checks access)."""
        name = self.resolve(ident)
        with self.locked(name):
            self.active_backend(name).refresh()

    def set_autostart(self, ident: str, enabled: bool) -> None:
        """pool-autostart [--disable]."""
        name = self.resolve(ident)
        if self.config(name) is None:
            raise InvalidStateError(f"pool '{name}' is transient; it cannot be autostarted")
        marker = self.paths.pool_autostart_dir / name
        if enabled:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    # -- inspection -----------------------------------------------------------------------
    def info(self, ident: str) -> PoolStatus:
        """pool-info."""
        return self._status(self.resolve(ident))

    def _status(self, name: str) -> PoolStatus:
        live = self.live(name)
        pool = live or self.definition(name)
        persistent = self.paths.pool_xml(name).exists()
        st = PoolStatus(
            name=name,
            uuid=pool.uuid,
            type=pool.type,
            state="running" if live is not None else "inactive",
            persistent=persistent,
            autostart=persistent and self.autostart(name),
            target=pool.target_path,
        )
        if live is not None:
            try:
                pi = self.backend(live).info()
                st.capacity, st.allocation, st.available = pi.capacity, pi.allocation, pi.available
            except (OSError, PyvirtError) as err:
                log.warning("pool %s: no space figures: %s", name, err)
        return st

    def list(self, *, all: bool = False, inactive: bool = False) -> list[PoolStatus]:
        """pool-list: active pools; ``all`` adds inactive ones, ``inactive`` only those."""
        out = []
        for name in self.names():
            st = self._status(name)
            active = st.state == "running"
            if (inactive and not active) or (not inactive and (all or active)):
                out.append(st)
        return out

    def dumpxml(self, ident: str, *, inactive: bool = False) -> str:
        """pool-dumpxml (live, with capacity/allocation/available, unless ``inactive``)."""
        name = self.resolve(ident)
        live = None if inactive else self.live(name)
        if live is None:
            return self.definition(name).to_xml()
        st = self._status(name)
        live.capacity, live.allocation, live.available = st.capacity, st.allocation, st.available
        return live.to_xml()

    def capabilities(self) -> str:
        """pool-capabilities XML (see :mod:`pyvirt.service.storage.caps`)."""
        from pyvirt.service.storage.caps import capabilities_xml  # lazy

        return capabilities_xml()

    def find_sources(
        self, pool_type: str, *, host: str | None = None, spec: str | None = None
    ) -> str:
        """find-storage-pool-sources(-as): ``<sources>`` XML from the backend of ``pool_type``."""
        cls = backend_class(pool_type)
        probe = Pool.from_xml(spec) if spec else None
        return cls.find_sources(host, probe)

    def volume_source(self, pool: str, vol: str) -> DiskSource:
        """How QEMU reaches volume ``vol`` of active pool ``pool`` (``<disk type='volume'>``)."""
        backend = self.active_backend(pool)
        info = backend.volume(vol)
        if info is None:
            raise NotFoundError(
                f"storage volume '{vol}' not found in pool '{backend.name}'",
                hint=f"list its volumes with 'vol-list {backend.name}'",
            )
        return backend.disk_source(info)


def _not_found(name: str) -> NotFoundError:
    return NotFoundError(
        f"storage pool '{name}' not found", hint="list the pools with 'pool-list --all'"
    )


def _bad_port(text: str) -> int:
    raise InvalidConfigError(f"source host '{text}' has a port that is not a number")
