"""Storage pools: define, build, start, destroy, delete, undefine, list, inspect.

(skeleton: signatures of the public API other layers code against; bodies follow.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.model.pool import Pool
    from pyvirt.service.volumes import VolumeManager
    from pyvirt.storage.base import DiskSource


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


class PoolManager:
    """All storage pool operations of one connection; :attr:`volumes` has the vol-* ones."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    @cached_property
    def volumes(self) -> VolumeManager:
        """Volume operations (vol-*)."""
        from pyvirt.service.volumes import VolumeManager

        return VolumeManager(self)

    def resolve(self, ident: str) -> str:
        """The name of the pool known by name or UUID."""
        raise NotImplementedError

    def define_xml(self, xml: str | bytes) -> tuple[Pool, list[str]]:
        """pool-define: store a persistent definition; returns it and its warnings."""
        raise NotImplementedError

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
    ) -> Pool:
        """pool-define-as."""
        raise NotImplementedError

    def create_xml(self, xml: str | bytes, *, build: bool = False) -> Pool:
        """pool-create: a transient pool, started."""
        raise NotImplementedError

    def build(self, ident: str, *, overwrite: bool | None = None) -> None:
        """pool-build (``overwrite``: None default, True --overwrite, False --no-overwrite)."""
        raise NotImplementedError

    def start(self, ident: str, *, build: bool = False, overwrite: bool | None = None) -> None:
        """pool-start."""
        raise NotImplementedError

    def destroy(self, ident: str) -> None:
        """pool-destroy: stop using the pool (unmount...), keep its data."""
        raise NotImplementedError

    def delete(self, ident: str) -> None:
        """pool-delete: remove what pool-build made (inactive pools only)."""
        raise NotImplementedError

    def undefine(self, ident: str) -> None:
        """pool-undefine."""
        raise NotImplementedError

    def refresh(self, ident: str) -> None:
        """pool-refresh."""
        raise NotImplementedError

    def info(self, ident: str) -> PoolStatus:
        """pool-info."""
        raise NotImplementedError

    def list(self, *, all: bool = False) -> list[PoolStatus]:
        """pool-list (active pools; ``all`` adds inactive ones)."""
        raise NotImplementedError

    def set_autostart(self, ident: str, enabled: bool) -> None:
        """pool-autostart [--disable]."""
        raise NotImplementedError

    def dumpxml(self, ident: str, *, inactive: bool = False) -> str:
        """pool-dumpxml."""
        raise NotImplementedError

    def capabilities(self) -> str:
        """pool-capabilities XML."""
        raise NotImplementedError

    def find_sources(self, pool_type: str, *, host: str | None = None) -> str:
        """find-storage-pool-sources(-as)."""
        raise NotImplementedError

    def volume_source(self, pool: str, vol: str) -> DiskSource:
        """How QEMU reaches volume ``vol`` of active pool ``pool`` (for ``<disk type='volume'>``)."""
        raise NotImplementedError
