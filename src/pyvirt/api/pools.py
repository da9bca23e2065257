"""Storage pools and their volumes (virsh's ``pool-*`` and ``vol-*`` verbs).

>>> pool, _ = conn.pools.define_as("scratch", "dir", target="/srv/scratch")
>>> pool.start(build=True)
>>> vol = pool.create_volume("disk0", 1 << 30, format="qcow2")
>>> [v.name for v in pool.volumes()]
['disk0']

:class:`PoolCollection` is ``conn.pools``; :meth:`PoolCollection.get` returns a :class:`Pool`
handle, :meth:`Pool.volume` a :class:`Volume` handle. A handle holds a name, not a snapshot:
each verb reads the current state. Sizes are bytes. Results are
:class:`~pyvirt.service.storage.pools.PoolStatus` (``pool-info``) and
:class:`~pyvirt.storage.base.VolumeInfo` (``vol-info``), both with ``to_json()``.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, BinaryIO

from pyvirt.errors import InvalidConfigError
from pyvirt.model.volume import new_volume
from pyvirt.progress import CancelledError, CancelToken, Progress
from pyvirt.service.storage.pools import PoolStatus
from pyvirt.storage.base import VolumeInfo

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.storage.pools import PoolManager
    from pyvirt.service.storage.volumes import VolumeManager

__all__ = [
    "CancelToken",
    "CancelledError",
    "Pool",
    "PoolCollection",
    "PoolStatus",
    "Progress",
    "Volume",
    "VolumeInfo",
]


# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the pool XML model
# loads only for a redefinition.


def _name_in(xml: str | bytes) -> str:
    """The name a ``<pool>`` XML document gives (parsed and validated).

    :raises InvalidConfigError: invalid XML
    """
    from pyvirt.model.pool import Pool as Model  # lazy

    return Model.from_xml(xml).name


class PoolCollection:
    """``conn.pools``: every storage pool of the connection, and the verbs that make pools."""

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    @property
    def _mgr(self) -> PoolManager:
        return self._service.pools

    def list(self, *, all: bool = False, inactive: bool = False) -> builtins.list[PoolStatus]:
        """``pool-list``: active pools; ``all`` adds the inactive ones, ``inactive`` only those."""
        return self._mgr.list(all=all, inactive=inactive)

    def get(self, name_or_uuid: str) -> Pool:
        """The pool known by name or UUID.

        :raises NotFoundError: no such pool
        """
        return Pool(self._service, self._mgr.resolve(name_or_uuid))

    def define(self, xml: str | bytes) -> tuple[Pool, builtins.list[str]]:
        """``pool-define``: store a persistent definition; returns the pool and warnings.

        :raises InvalidConfigError: bad XML, unsupported type, missing source or target
        :raises AlreadyExistsError: name, UUID or target path used by another pool
        """
        pool, warnings = self._mgr.define_xml(xml)
        return Pool(self._service, pool.name), list(warnings)

    def create(
        self, xml: str | bytes, *, build: bool = False, overwrite: bool | None = None
    ) -> Pool:
        """``pool-create``: a transient pool, started (built first with ``build``).

        :param overwrite: with ``build``: ``True`` formats even over data, ``False`` refuses
        :raises AlreadyExistsError: a pool of that name exists
        """
        return Pool(self._service, self._mgr.create_xml(xml, build=build, overwrite=overwrite).name)

    def definition_xml(
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
    ) -> str:
        """The ``<pool>`` XML :meth:`define_as` would store (``pool-define-as --print-xml``).

        ``source_host`` is ``HOST[:PORT]``.

        :raises InvalidConfigError: the arguments do not make a valid pool
        """
        return self._mgr.build_definition(
            name,
            type,
            source_host=source_host,
            source_path=source_path,
            source_dev=source_dev,
            source_name=source_name,
            source_format=source_format,
            target=target,
            auth_type=auth_type,
            auth_username=auth_username,
            secret_usage=secret_usage,
            source_initiator=source_initiator,
        ).to_xml()

    def define_as(
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
    ) -> tuple[Pool, builtins.list[str]]:
        """``pool-define-as``: define a pool from arguments (as :meth:`definition_xml`)."""
        return self.define(
            self.definition_xml(
                name,
                type,
                source_host=source_host,
                source_path=source_path,
                source_dev=source_dev,
                source_name=source_name,
                source_format=source_format,
                target=target,
                auth_type=auth_type,
                auth_username=auth_username,
                secret_usage=secret_usage,
                source_initiator=source_initiator,
            )
        )

    def create_as(
        self,
        name: str,
        type: str,
        *,
        build: bool = False,
        overwrite: bool | None = None,
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
        """``pool-create-as``: a transient pool from arguments, started (see :meth:`create`)."""
        xml = self.definition_xml(
            name,
            type,
            source_host=source_host,
            source_path=source_path,
            source_dev=source_dev,
            source_name=source_name,
            source_format=source_format,
            target=target,
            auth_type=auth_type,
            auth_username=auth_username,
            secret_usage=secret_usage,
            source_initiator=source_initiator,
        )
        return self.create(xml, build=build, overwrite=overwrite)

    def capabilities(self) -> str:
        """``pool-capabilities``: the pool types and formats this host supports, as XML."""
        return self._mgr.capabilities()

    def find_sources(self, type: str, *, host: str | None = None, spec: str | None = None) -> str:
        """``find-storage-pool-sources``: candidate sources of pools of ``type``, as
        ``<sources>`` XML (``spec``: a ``<source>`` XML narrowing the search).

        :raises InvalidConfigError: unknown pool type
        :raises UnsupportedError: the backend cannot discover sources
        """
        return self._mgr.find_sources(type, host=host, spec=spec)

    def volume(self, key_or_path: str) -> Volume:
        """The volume with this key or path, in whichever active pool holds it.

        :raises NotFoundError: no active pool holds such a volume
        """
        pool, info = self._mgr.volumes.lookup(key_or_path)
        return Volume(self._service, pool, info)

    def volume_xml(
        self, name: str, capacity: int, *, format: str = "raw", allocation: int | None = None
    ) -> str:
        """The ``<volume>`` XML of a new volume (``vol-create-as --print-xml``)."""
        return new_volume(name, capacity, format, allocation).to_xml()


class Pool:
    """One storage pool, by name. Get it from :meth:`PoolCollection.get`."""

    def __init__(self, service: ServiceConnection, name: str) -> None:
        self._service = service
        self._name = name

    def __repr__(self) -> str:
        return f"<Pool {self._name!r}>"

    @property
    def _mgr(self) -> PoolManager:
        return self._service.pools

    @property
    def _vols(self) -> VolumeManager:
        return self._service.pools.volumes

    @property
    def name(self) -> str:
        """The pool's name."""
        return self._name

    @property
    def uuid(self) -> str:
        """The pool's UUID."""
        return self.info().uuid

    def info(self) -> PoolStatus:
        """``pool-info``: state, autostart, persistence and space (0 when inactive)."""
        return self._mgr.info(self._name)

    def xml_desc(self, *, inactive: bool = False) -> str:
        """``pool-dumpxml``: the live XML with space figures, or the persistent one."""
        return self._mgr.dumpxml(self._name, inactive=inactive)

    def revision(self) -> str:
        """The revision of the persistent definition (a content hash; an ETag): pass it to
        :meth:`redefine` to refuse lost updates.

        :raises InvalidStateError: the pool is transient
        """
        return self._mgr.revision(self._name)

    def redefine(self, xml: str | bytes, *, expect_revision: str | None = None) -> list[str]:
        """Replace the definition with ``xml``, keeping the name; returns warnings.

        :param expect_revision: the :meth:`revision` ``xml`` was based on; the change is
            refused if the definition changed since (None: no check)
        :raises InvalidConfigError: invalid XML, or XML that names another pool
        :raises InvalidStateError: the definition changed since ``expect_revision``
        """
        new_name = _name_in(xml)
        if new_name != self._name:
            raise InvalidConfigError(
                f"the XML names pool '{new_name}', not '{self._name}'",
                hint="a redefinition keeps the pool's name",
            )
        _, warnings = self._mgr.define_xml(xml, expect_revision=expect_revision)
        return list(warnings)

    def start(self, *, build: bool = False, overwrite: bool | None = None) -> None:
        """``pool-start`` (``build``: :meth:`build` first, with ``overwrite`` as there).

        :raises InvalidStateError: already active
        """
        self._mgr.start(self._name, build=build, overwrite=overwrite)

    def build(self, *, overwrite: bool | None = None) -> None:
        """``pool-build``: make the directory, format the device.

        :param overwrite: ``None`` the backend's default, ``True`` format even over data,
            ``False`` refuse when data exists
        """
        self._mgr.build(self._name, overwrite=overwrite)

    def destroy(self) -> None:
        """``pool-destroy``: stop using the pool; its data stays.

        :raises InvalidStateError: inactive, or a running domain uses one of its volumes
        """
        self._mgr.destroy(self._name)

    def delete(self) -> None:
        """``pool-delete``: remove what :meth:`build` made (inactive pools only)."""
        self._mgr.delete(self._name)

    def undefine(self) -> None:
        """``pool-undefine``: drop the persistent definition (an active pool stays, transient).

        :raises InvalidStateError: the pool is transient
        """
        self._mgr.undefine(self._name)

    def refresh(self) -> None:
        """``pool-refresh``: rescan the pool's volumes."""
        self._mgr.refresh(self._name)

    def set_autostart(self, enabled: bool) -> None:
        """``pool-autostart [--disable]``; the current value is ``info().autostart``."""
        self._mgr.set_autostart(self._name, enabled)

    # -- volumes --------------------------------------------------------------------------
    def volumes(self) -> list[VolumeInfo]:
        """``vol-list``: the volumes of this (active) pool.

        :raises InvalidStateError: the pool is inactive
        """
        return self._vols.list(self._name)

    def volume(self, name: str) -> Volume:
        """A volume of this pool by name (or by path or key).

        :raises NotFoundError: no such volume in this pool
        :raises InvalidStateError: the pool is inactive
        """
        pool, info = self._vols.lookup(name, self._name)
        return Volume(self._service, pool, info)

    def create_volume(
        self,
        name: str,
        capacity: int,
        *,
        format: str | None = None,
        allocation: int | None = None,
        prealloc_metadata: bool = False,
        backing_vol: str | None = None,
        backing_vol_format: str | None = None,
    ) -> Volume:
        """``vol-create-as``: a new volume of ``capacity`` bytes.

        :param format: ``raw``, ``qcow2``...; ``None`` the pool's default
        :param allocation: bytes to allocate now (``0`` thin, ``capacity`` preallocated)
        :param backing_vol: a backing volume (name in this pool, or a path), qcow2 only
        :raises AlreadyExistsError: the pool has a volume of that name
        :raises InvalidConfigError: bad name, size, format, or not enough space
        """
        info = self._vols.create_as(
            self._name,
            name,
            capacity,
            format=format,
            allocation=allocation,
            prealloc_metadata=prealloc_metadata,
            backing_vol=backing_vol,
            backing_vol_format=backing_vol_format,
        )
        return Volume(self._service, self._name, info)

    def create_volume_xml(self, xml: str | bytes, *, prealloc_metadata: bool = False) -> Volume:
        """``vol-create``: a new volume from ``<volume>`` XML (see :meth:`create_volume`)."""
        info = self._vols.create_xml(self._name, xml, prealloc_metadata=prealloc_metadata)
        return Volume(self._service, self._name, info)

    def create_volume_from(
        self,
        xml: str | bytes,
        source: str | Volume,
        *,
        source_pool: str | None = None,
        prealloc_metadata: bool = False,
    ) -> Volume:
        """``vol-create-from``: a new volume (format from ``xml``) holding the data of
        ``source`` (a :class:`Volume`, or a name in ``source_pool``, a path or a key)."""
        if isinstance(source, Volume):
            src, source_pool = source.name, source.pool_name
        else:
            src = source
        info = self._vols.create_from(
            self._name, xml, src, src_pool=source_pool, prealloc_metadata=prealloc_metadata
        )
        return Volume(self._service, self._name, info)


class Volume:
    """One volume of a pool, by pool and name. Get it from :meth:`Pool.volume` or
    :meth:`PoolCollection.volume`."""

    def __init__(self, service: ServiceConnection, pool: str, info: VolumeInfo) -> None:
        self._service = service
        self._pool = pool
        self._seen = info

    def __repr__(self) -> str:
        return f"<Volume {self._pool!r}/{self._seen.name!r}>"

    @property
    def _vols(self) -> VolumeManager:
        return self._service.pools.volumes

    @property
    def name(self) -> str:
        """The volume's name in its pool."""
        return self._seen.name

    @property
    def key(self) -> str:
        """The volume's key, unique on the host (``vol-key``)."""
        return self._seen.key

    @property
    def path(self) -> str:
        """Where the volume is on the host (``vol-path``)."""
        return self._seen.path

    @property
    def pool_name(self) -> str:
        """The name of the pool holding the volume."""
        return self._pool

    @property
    def pool(self) -> Pool:
        """The pool holding the volume (``vol-pool``)."""
        return Pool(self._service, self._pool)

    def info(self) -> VolumeInfo:
        """``vol-info``: type, format, capacity and allocation now.

        :raises NotFoundError: the volume is gone
        """
        self._seen = self._vols.info(self.name, self._pool)
        return self._seen

    def xml_desc(self) -> str:
        """``vol-dumpxml``: the volume as libvirt's ``<volume>`` XML."""
        return self._vols.dumpxml(self.name, self._pool)

    def delete(self) -> None:
        """``vol-delete``.

        :raises InvalidStateError: a running domain uses it, or it backs another volume
        """
        self._vols.delete(self.name, self._pool)

    def wipe(
        self,
        *,
        algorithm: str = "zero",
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """``vol-wipe``: overwrite the data and verify it (``progress`` in bytes; a ``cancel``
        stops part way with :class:`CancelledError`)."""
        self._vols.wipe(
            self.name, pool=self._pool, algorithm=algorithm, progress=progress, cancel=cancel
        )

    def resize(
        self, capacity: int, *, delta: bool = False, allocate: bool = False, shrink: bool = False
    ) -> VolumeInfo:
        """``vol-resize``: to ``capacity`` bytes (a change of size with ``delta``, negative to
        shrink); shrinking needs ``shrink`` and never cuts data.

        :raises InvalidConfigError: it would shrink without ``shrink``, or below the data
        :raises InvalidStateError: a running domain uses it
        """
        self._seen = self._vols.resize(
            self.name, capacity, pool=self._pool, delta=delta, allocate=allocate, shrink=shrink
        )
        return self._seen

    def clone(
        self,
        new_name: str,
        *,
        prealloc_metadata: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Volume:
        """``vol-clone``: a full copy in the same pool and format (backing chains flattened).

        ``progress`` hears (bytes copied, bytes total); when ``cancel`` is set the copy stops,
        the half-made volume is removed and :class:`CancelledError` raised.
        """
        info = self._vols.clone(
            self.name,
            new_name,
            pool=self._pool,
            prealloc_metadata=prealloc_metadata,
            progress=progress,
            cancel=cancel,
        )
        return Volume(self._service, self._pool, info)

    def upload(
        self,
        src: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        sparse: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """``vol-upload``: write ``src`` into the volume at ``offset``; returns bytes written
        (a ``cancel`` stops it part way: the bytes written so far stay).

        :raises InvalidConfigError: the data does not fit
        :raises InvalidStateError: a running domain uses the volume
        """
        return self._vols.upload(
            self.name,
            src,
            pool=self._pool,
            offset=offset,
            length=length,
            sparse=sparse,
            progress=progress,
            cancel=cancel,
        )

    def download(
        self,
        dst: BinaryIO,
        *,
        offset: int = 0,
        length: int | None = None,
        sparse: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """``vol-download``: copy the volume's bytes from ``offset`` into ``dst``; returns
        bytes copied."""
        return self._vols.download(
            self.name,
            dst,
            pool=self._pool,
            offset=offset,
            length=length,
            sparse=sparse,
            progress=progress,
            cancel=cancel,
        )
