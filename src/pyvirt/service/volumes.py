"""Volumes of storage pools: create, clone, convert, delete, stream, resize, wipe, inspect.

(skeleton: signatures of the public API other layers code against; bodies follow.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from pyvirt.service.storage import PoolManager
    from pyvirt.storage.base import VolumeInfo

#: progress callback: (bytes done, bytes total)
Progress = Callable[[int, int], None]


class VolumeManager:
    """vol-* operations. ``vol`` arguments are a name (with ``pool``), a path or a key."""

    def __init__(self, pools: PoolManager) -> None:
        self.pools = pools

    def lookup(self, vol: str, pool: str | None = None) -> tuple[str, VolumeInfo]:
        """(pool name, volume) for a volume name in ``pool``, or a path or key in any pool."""
        raise NotImplementedError

    def list(self, pool: str) -> list[VolumeInfo]:
        """vol-list."""
        raise NotImplementedError

    def info(self, vol: str, pool: str | None = None) -> VolumeInfo:
        """vol-info."""
        raise NotImplementedError

    def dumpxml(self, vol: str, pool: str | None = None) -> str:
        """vol-dumpxml."""
        raise NotImplementedError

    def create_as(
        self,
        pool: str,
        name: str,
        capacity: int,
        *,
        format: str | None = None,
        allocation: int | None = None,
        prealloc_metadata: bool = False,
        backing_vol: str | None = None,
        backing_vol_format: str | None = None,
    ) -> VolumeInfo:
        """vol-create-as (sizes in bytes)."""
        raise NotImplementedError

    def create_xml(
        self, pool: str, xml: str | bytes, *, prealloc_metadata: bool = False
    ) -> VolumeInfo:
        """vol-create."""
        raise NotImplementedError

    def create_from(
        self,
        pool: str,
        xml: str | bytes,
        src_vol: str,
        *,
        src_pool: str | None = None,
        prealloc_metadata: bool = False,
    ) -> VolumeInfo:
        """vol-create-from: a new volume (format from the XML) with the data of ``src_vol``."""
        raise NotImplementedError

    def clone(
        self, vol: str, new_name: str, *, pool: str | None = None, prealloc_metadata: bool = False
    ) -> VolumeInfo:
        """vol-clone: a full copy in the same pool and format."""
        raise NotImplementedError

    def delete(self, vol: str, pool: str | None = None) -> None:
        """vol-delete (refused while a running domain uses the volume)."""
        raise NotImplementedError

    def upload(
        self,
        vol: str,
        src: BinaryIO,
        *,
        pool: str | None = None,
        offset: int = 0,
        length: int | None = None,
        sparse: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """vol-upload: bytes written."""
        raise NotImplementedError

    def download(
        self,
        vol: str,
        dst: BinaryIO,
        *,
        pool: str | None = None,
        offset: int = 0,
        length: int | None = None,
        sparse: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """vol-download: bytes read."""
        raise NotImplementedError

    def resize(
        self,
        vol: str,
        capacity: int,
        *,
        pool: str | None = None,
        delta: bool = False,
        allocate: bool = False,
        shrink: bool = False,
    ) -> VolumeInfo:
        """vol-resize."""
        raise NotImplementedError

    def wipe(self, vol: str, *, pool: str | None = None, algorithm: str = "zero") -> None:
        """vol-wipe."""
        raise NotImplementedError
