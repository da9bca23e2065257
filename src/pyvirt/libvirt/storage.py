""":class:`virStoragePool` and :class:`virStorageVol`: libvirt-python's storage objects over
:class:`pyvirt.api.pools.Pool` and :class:`~pyvirt.api.pools.Volume`. Sizes are bytes."""

from __future__ import annotations

import uuid as uuidlib
from typing import TYPE_CHECKING

from pyvirt.libvirt import constants as c
from pyvirt.libvirt.errors import wrap

if TYPE_CHECKING:
    from pyvirt.api.pools import Pool, Volume
    from pyvirt.libvirt.connect import virConnect

__all__ = ["virStoragePool", "virStorageVol"]

_VOL_TYPES = {
    "file": c.VIR_STORAGE_VOL_FILE, "block": c.VIR_STORAGE_VOL_BLOCK,
    "dir": c.VIR_STORAGE_VOL_DIR, "network": c.VIR_STORAGE_VOL_NETWORK,
    "netdir": c.VIR_STORAGE_VOL_NETDIR, "ploop": c.VIR_STORAGE_VOL_PLOOP,
}  # fmt: skip


def _overwrite(flags: int, yes: int, no: int) -> bool | None:
    if flags & yes:
        return True
    if flags & no:
        return False
    return None


class virStoragePool:
    """One storage pool; get it from ``conn.storagePoolLookupByName(name)``."""

    def __init__(self, conn: virConnect, pool: Pool) -> None:
        self._conn = conn
        self._pool = pool

    def __repr__(self) -> str:
        return f"<virStoragePool {self._pool.name!r}>"

    def connect(self) -> virConnect:
        """The connection."""
        return self._conn

    def name(self) -> str:
        """The name."""
        return self._pool.name

    @wrap("pool")
    def UUIDString(self) -> str:
        """The UUID as text."""
        return self._pool.uuid

    def UUID(self) -> bytes:
        """The UUID as 16 bytes."""
        return uuidlib.UUID(self.UUIDString()).bytes

    @wrap("pool")
    def info(self) -> list[int]:
        """``[state, capacity, allocation, available]`` (``VIR_STORAGE_POOL_*`` state)."""
        i = self._pool.info()
        state = c.VIR_STORAGE_POOL_RUNNING if i.state == "running" else c.VIR_STORAGE_POOL_INACTIVE
        return [state, i.capacity, i.allocation, i.available]

    @wrap("pool")
    def XMLDesc(self, flags: int = 0) -> str:
        """The definition (``VIR_STORAGE_XML_INACTIVE``: the persistent one)."""
        return self._pool.xml_desc(inactive=bool(flags & c.VIR_STORAGE_XML_INACTIVE))

    @wrap("pool")
    def isActive(self) -> int:
        """1 while it is started."""
        return int(self._pool.info().state == "running")

    @wrap("pool")
    def isPersistent(self) -> int:
        """1 when it has a persistent definition."""
        return int(self._pool.info().persistent)

    @wrap("pool")
    def autostart(self) -> int:
        """1 when it starts with the host."""
        return int(self._pool.info().autostart)

    @wrap("pool", writes=True)
    def setAutostart(self, autostart: int) -> int:
        """Start it (or not) with the host."""
        self._pool.set_autostart(bool(autostart))
        return 0

    @wrap("pool", writes=True)
    def create(self, flags: int = 0) -> int:
        """Start it (``STORAGE_POOL_CREATE_WITH_BUILD[_OVERWRITE|_NO_OVERWRITE]``)."""
        build = bool(flags & 7)
        self._pool.start(
            build=build,
            overwrite=_overwrite(
                flags, c.VIR_STORAGE_POOL_CREATE_WITH_BUILD_OVERWRITE,
                c.VIR_STORAGE_POOL_CREATE_WITH_BUILD_NO_OVERWRITE,
            ),
        )  # fmt: skip
        return 0

    @wrap("pool", writes=True)
    def build(self, flags: int = 0) -> int:
        """Make its directory or format its device (``_BUILD_OVERWRITE``/``_NO_OVERWRITE``)."""
        self._pool.build(
            overwrite=_overwrite(
                flags, c.VIR_STORAGE_POOL_BUILD_OVERWRITE, c.VIR_STORAGE_POOL_BUILD_NO_OVERWRITE
            )
        )
        return 0

    @wrap("pool", writes=True)
    def destroy(self) -> int:
        """Stop using it (the data stays)."""
        self._pool.destroy()
        return 0

    @wrap("pool", writes=True)
    def delete(self, flags: int = 0) -> int:
        """Remove what :meth:`build` made."""
        self._pool.delete()
        return 0

    @wrap("pool", writes=True)
    def undefine(self) -> int:
        """Remove its persistent definition."""
        self._pool.undefine()
        return 0

    @wrap("pool")
    def refresh(self, flags: int = 0) -> int:
        """Rescan its volumes."""
        self._pool.refresh()
        return 0

    @wrap("volume")
    def listVolumes(self) -> list[str]:
        """The volumes' names."""
        return [v.name for v in self._pool.volumes()]

    def numOfVolumes(self) -> int:
        """How many volumes it has."""
        return len(self.listVolumes())

    @wrap("volume")
    def listAllVolumes(self, flags: int = 0) -> list[virStorageVol]:
        """The volumes."""
        return [virStorageVol(self._conn, self._pool.volume(v.name)) for v in self._pool.volumes()]

    @wrap("volume")
    def storageVolLookupByName(self, name: str) -> virStorageVol:
        """The volume called ``name``."""
        return virStorageVol(self._conn, self._pool.volume(name))

    @wrap("volume", xml=True, writes=True)
    def createXML(self, xmlDesc: str, flags: int = 0) -> virStorageVol:
        """A new volume from ``<volume>`` XML."""
        vol = self._pool.create_volume_xml(
            xmlDesc, prealloc_metadata=bool(flags & c.VIR_STORAGE_VOL_CREATE_PREALLOC_METADATA)
        )
        return virStorageVol(self._conn, vol)


class virStorageVol:
    """One volume; get it from ``pool.storageVolLookupByName(name)`` or
    ``conn.storageVolLookupByPath(path)``."""

    def __init__(self, conn: virConnect, vol: Volume) -> None:
        self._conn = conn
        self._vol = vol

    def __repr__(self) -> str:
        return f"<virStorageVol {self._vol.pool_name!r}/{self._vol.name!r}>"

    def connect(self) -> virConnect:
        """The connection."""
        return self._conn

    def name(self) -> str:
        """The name."""
        return self._vol.name

    def key(self) -> str:
        """The host-wide key (the path for file volumes)."""
        return self._vol.key

    def path(self) -> str:
        """The path."""
        return self._vol.path

    def storagePoolLookupByVolume(self) -> virStoragePool:
        """Its pool."""
        return virStoragePool(self._conn, self._vol.pool)

    @wrap("volume")
    def info(self) -> list[int]:
        """``[type, capacity, allocation]`` (``VIR_STORAGE_VOL_*`` type; bytes)."""
        i = self._vol.info()
        return [_VOL_TYPES.get(str(i.type), c.VIR_STORAGE_VOL_FILE), i.capacity, i.allocation]

    @wrap("volume")
    def XMLDesc(self, flags: int = 0) -> str:
        """Its ``<volume>`` XML."""
        return self._vol.xml_desc()

    @wrap("volume", writes=True)
    def delete(self, flags: int = 0) -> int:
        """Delete it."""
        self._vol.delete()
        return 0

    @wrap("volume", writes=True)
    def wipe(self, flags: int = 0) -> int:
        """Overwrite its data with zeros."""
        self._vol.wipe()
        return 0

    @wrap("volume", writes=True)
    def resize(self, capacity: int, flags: int = 0) -> int:
        """Change its size (``VOL_RESIZE_DELTA``, ``_ALLOCATE``, ``_SHRINK``)."""
        self._vol.resize(
            capacity,
            delta=bool(flags & c.VIR_STORAGE_VOL_RESIZE_DELTA),
            allocate=bool(flags & c.VIR_STORAGE_VOL_RESIZE_ALLOCATE),
            shrink=bool(flags & c.VIR_STORAGE_VOL_RESIZE_SHRINK),
        )
        return 0
