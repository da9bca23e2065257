"""The storage backend contract: what every pool type implements and declares.

A backend is one class per pool type (``dir``, ``fs``, ``netfs``, ``logical``, ``disk``,
``iscsi``), registered with :func:`pyvirt.storage.registry.register_pool_backend`. It works on
one pool definition (:class:`pyvirt.model.pool.Pool`) and a private run directory, and knows
nothing of locks, other pools or user-facing preconditions: those live in
:mod:`pyvirt.service.storage.pools`. What a backend can do is declared as data in
:class:`PoolCapabilities`, never asked with ``if type == ...`` elsewhere.

Sizes are bytes everywhere in this package.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.model.pool import Pool
    from pyvirt.model.volume import Volume
    from pyvirt.progress import CancelToken, Progress

DiskKind = Literal["file", "block", "network"]
VolumeType = Literal["file", "block", "dir", "network", "netdir"]


@dataclass(frozen=True)
class PoolCapabilities:
    """What a pool type supports, as data (shown by ``pool-capabilities``).

    :param formats: volume formats ``vol-create-as --format`` accepts (first is the default)
    :param source_formats: ``<source><format type=...>`` values (fs types, partition tables)
    :param source_fields: which ``<source>`` parts this type uses, from ``host``, ``dir``,
        ``device``, ``name``, ``adapter`` (``check()`` says which are required)
    :param build: ``pool-build`` does something (mkdir, mkfs, pvcreate, label)
    :param build_overwrite: ``pool-build --overwrite/--no-overwrite`` are meaningful
    :param delete: ``pool-delete`` can remove what build made
    :param create_volumes: volumes can be created / deleted (iSCSI LUNs cannot)
    :param resize: volumes can grow; ``shrink`` they can shrink (with ``--shrink``)
    :param backing: volumes may have a backing store (qcow2 linked clones)
    :param thin: sparse volumes are possible (``--allocation 0``)
    :param upload: ``vol-upload``/``vol-download`` stream data
    :param find_sources: ``find-storage-pool-sources`` works for this type
    :param target_is_dir: the target path is a directory holding the volumes
    :param remote: data is reached over the network (host + port)
    """

    formats: tuple[str, ...] = ("raw",)
    source_formats: tuple[str, ...] = ()
    source_fields: tuple[str, ...] = ()
    build: bool = False
    build_overwrite: bool = False
    delete: bool = False
    create_volumes: bool = True
    resize: bool = True
    shrink: bool = True
    backing: bool = False
    thin: bool = True
    upload: bool = True
    find_sources: bool = False
    target_is_dir: bool = True
    remote: bool = False

    @property
    def default_format(self) -> str:
        """The format of a volume created without ``--format``."""
        return self.formats[0] if self.formats else "raw"


@dataclass
class VolumeInfo:
    """One volume as the backend sees it now (sizes in bytes).

    ``key`` is unique on the host (the path for file volumes, a LUN id for iSCSI);
    ``allocation`` is what the volume really uses (``st_blocks * 512`` for files).
    """

    name: str
    key: str
    path: str
    type: VolumeType = "file"
    format: str = "raw"
    capacity: int = 0
    allocation: int = 0
    physical: int | None = None
    backing_path: str | None = None
    backing_format: str | None = None

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (every field, sizes in bytes)."""
        return asdict(self)


@dataclass
class PoolInfo:
    """A pool's space, in bytes."""

    capacity: int = 0
    allocation: int = 0
    available: int = 0


@dataclass(frozen=True)
class DiskSource:
    """How QEMU reaches a volume: the data S3 lowers to a ``-blockdev`` chain.

    ``kind='file'``: ``path`` is a regular file; ``'block'``: a block device node;
    ``'network'``: ``protocol`` (``iscsi``, ``nfs``) with ``host``/``port``/``name``
    (``IQN/LUN`` for iSCSI, the export path plus file for NFS). ``offset``/``size`` confine
    a raw volume to a byte range of ``path`` (a partition or LV on a loop device without
    partition nodes). ``options`` carries protocol extras (``user``, ``password-secret``,
    ``initiator-name``, ``uid``, ``gid``...).
    """

    kind: DiskKind
    format: str = "raw"
    path: str | None = None
    protocol: str | None = None
    host: str | None = None
    port: int | None = None
    name: str | None = None
    offset: int | None = None
    size: int | None = None
    readonly: bool = False
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CreateRequest:
    """A volume to create, resolved by the service (names checked, sizes in bytes).

    ``allocation`` is None for the backend's default (thin where possible);
    ``backing_path``/``backing_format`` are set for linked clones (qcow2 only);
    ``prealloc_metadata`` is qcow2's ``preallocation=metadata``; ``progress`` and ``cancel``
    watch a copy (:meth:`PoolBackend.create_volume_from`): a cancelled copy leaves nothing.
    """

    name: str
    capacity: int
    format: str
    allocation: int | None = None
    backing_path: str | None = None
    backing_format: str | None = None
    prealloc_metadata: bool = False
    mode: int | None = None
    spec: Volume | None = None
    progress: Progress | None = None
    cancel: CancelToken | None = None


class PoolBackend(ABC):
    """One pool of one type. Subclasses set :attr:`type` and :attr:`capabilities`.

    The service calls, under the pool lock: :meth:`check` (at define time, pure),
    :meth:`build`, :meth:`start`, :meth:`stop`, :meth:`delete` for the pool, and the volume
    methods only while the pool is active. ``run_dir`` is the pool's private directory under
    ``RUN/storage/NAME/`` (loop device records, mount markers), created by the service.
    Errors are :mod:`pyvirt.errors` types with lowercase messages naming the object.
    """

    type: ClassVar[str] = ""
    capabilities: ClassVar[PoolCapabilities] = PoolCapabilities()

    def __init__(self, pool: Pool, run_dir: Path) -> None:
        self.pool = pool
        self.run_dir = run_dir

    @property
    def name(self) -> str:
        """The pool's name."""
        return self.pool.name

    # -- pool ----------------------------------------------------------------------------
    def check(self) -> None:
        """Validate the definition for this type (needed source parts, target); pure.

        :raises InvalidConfigError: naming the missing or wrong element
        """
        return None

    def build(self, *, overwrite: bool | None = None) -> None:
        """Make the pool's storage (``None``: default, ``True``: --overwrite, ``False``:
        --no-overwrite). The default implementation does nothing."""
        return None

    @abstractmethod
    def start(self) -> None:
        """Make the pool usable (mount, log in, check the target exists)."""

    def stop(self) -> None:
        """Undo :meth:`start` (unmount, detach loop devices, log out). Idempotent."""
        return None

    def delete(self) -> None:
        """Undo :meth:`build` (remove the target directory, wipe the label)."""
        raise UnsupportedError(f"pool type '{self.type}' does not support pool-delete")

    def is_started(self) -> bool:
        """Whether :meth:`start`'s effect is still in place (a mount still mounted)."""
        return True

    @abstractmethod
    def info(self) -> PoolInfo:
        """Capacity, allocation and free space of the active pool."""

    @abstractmethod
    def refresh(self) -> list[VolumeInfo]:
        """Every volume in the pool now, sorted by name."""

    def volume(self, name: str) -> VolumeInfo | None:
        """One volume by name, or None (backends may do better than a full refresh)."""
        for vol in self.refresh():
            if vol.name == name:
                return vol
        return None

    # -- volumes ---------------------------------------------------------------------------
    def create_volume(self, req: CreateRequest) -> VolumeInfo:
        """Create an empty volume (thin or preallocated, maybe with a backing store)."""
        raise UnsupportedError(f"pool type '{self.type}' cannot create volumes")

    def create_volume_from(
        self, req: CreateRequest, source: DiskSource, source_info: VolumeInfo
    ) -> VolumeInfo:
        """Create a volume holding a copy of ``source`` converted to ``req.format``."""
        raise UnsupportedError(f"pool type '{self.type}' cannot copy volumes")

    def delete_volume(self, vol: VolumeInfo) -> None:
        """Remove a volume and its data."""
        raise UnsupportedError(f"pool type '{self.type}' cannot delete volumes")

    def resize_volume(self, vol: VolumeInfo, capacity: int, *, allocate: bool) -> VolumeInfo:
        """Set the capacity (the service checked grow/shrink rules); ``allocate`` preallocates
        the new space."""
        raise UnsupportedError(f"pool type '{self.type}' cannot resize volumes")

    def wipe_volume(
        self,
        vol: VolumeInfo,
        algorithm: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Overwrite the volume's data (``zero`` at least) and verify it (``progress`` and
        ``cancel`` as in :mod:`pyvirt.progress`; a cancelled wipe stops part way)."""
        raise UnsupportedError(f"pool type '{self.type}' cannot wipe volumes")

    def open_volume(self, vol: VolumeInfo, *, write: bool) -> int:
        """An OS file descriptor on the volume's bytes for vol-upload/vol-download."""
        raise UnsupportedError(f"pool type '{self.type}' cannot stream volume data")

    def disk_source(self, vol: VolumeInfo) -> DiskSource:
        """How QEMU opens this volume."""
        kind: DiskKind = "block" if vol.type == "block" else "file"
        return DiskSource(kind=kind, path=vol.path, format=vol.format)

    @classmethod
    def find_sources(cls, host: str | None, spec: Pool | None) -> str:
        """``<sources>`` XML listing what could back a pool of this type."""
        raise UnsupportedError(f"pool type '{cls.type}' cannot search for pool sources")
