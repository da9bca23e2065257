"""Volumes of storage pools: create, clone, convert, delete, stream, resize, wipe, inspect.

Preconditions live here: names, sizes against the pool's space, formats against the
backend's capabilities, and "not while a running domain uses it" (checked against the live
definitions of running domains, ``RUN/qemu/NAME/domain.xml``). Every creation either
completes or leaves nothing behind (the backend removes a half-made file).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, BinaryIO

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    PyvirtError,
)
from pyvirt.model.limits import check_volume_bytes
from pyvirt.model.volume import Volume, format_bytes, new_volume
from pyvirt.progress import CancelToken, Progress
from pyvirt.state.domains import check_name
from pyvirt.state.paths import StatePaths
from pyvirt.storage import stream
from pyvirt.storage.base import CreateRequest, PoolBackend, VolumeInfo

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.storage.pools import PoolManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml/pyvirt.model,
# storage backends and the domain manager load only for the verbs that need them.


def domains_using(paths: StatePaths, pool: str, vol_paths: list[str], vol: str = "") -> list[str]:
    """Running domains whose live definition has a disk on one of ``vol_paths`` (or on
    ``<source pool=POOL volume=VOL>``; any volume of ``pool`` when ``vol`` is empty)."""
    from pyvirt.model.xmlmap import parse_xml  # lazy
    from pyvirt.service.domain.manager import DomainManager  # lazy
    from pyvirt.service.domain.types import State  # lazy

    wanted = {os.path.realpath(p) for p in vol_paths}
    users: list[str] = []
    for st in DomainManager(paths).list_all():
        if st.state == State.SHUTOFF:
            continue
        try:
            root = parse_xml((paths.domain_run_dir(st.name) / "domain.xml").read_bytes())
        except (OSError, PyvirtError):
            continue
        for src in root.iterfind(".//devices/disk//source"):
            path = src.get("file") or src.get("dev")
            if path and wanted & set(backing_chain(path)):
                users.append(st.name)
                break
            if pool and src.get("pool") == pool and (not vol or src.get("volume") == vol):
                users.append(st.name)
                break
    return users


def backing_chain(path: str, depth: int = 16) -> list[str]:
    """``path`` and the files below it (qcow2 backing files, read from the image headers),
    each with symlinks resolved; at most ``depth`` levels."""
    from pyvirt.storage.filevol import probe  # lazy

    chain: list[str] = []
    current: str | None = path
    while current and len(chain) < depth:
        real = os.path.realpath(current)
        if real in chain:
            break
        chain.append(real)
        try:
            st = os.stat(real)
        except OSError:
            break
        current = probe(real, st)[2]
    return chain


def refuse_in_use(paths: StatePaths, files: Sequence[str], doing: str) -> None:
    """Refuse to ``doing`` any of ``files`` while a running domain uses it (directly or as a
    backing file of an overlay).

    :raises InvalidStateError: naming the file and the domains
    """
    for path in files:
        users = domains_using(paths, "", [path])
        if users:
            raise InvalidStateError(
                f"cannot {doing} '{path}': it is in use by running domain "
                + ", ".join(f"'{u}'" for u in users),
                hint="shut the domain down or detach the disk first",
            )


def remove_domain_storage(pools: PoolManager, dom: Domain, only: Sequence[str] = ()) -> list[str]:
    """Delete the domain's writable disk files and volumes (``only``: just these disks);
    ``virsh undefine --remove-all-storage`` / ``--storage``, passed to
    :meth:`pyvirt.service.domain.manager.DomainManager.undefine`.

    :returns: the files (``/path``) and volumes (``POOL/VOLUME``) deleted
    :raises InvalidConfigError: ``only`` names a disk the domain does not have
    """
    wanted = set(only)
    disks = [d for d in dom.devices.disks if d.device == "disk"]
    if wanted:
        known = {d.target_dev for d in disks} | {d.source_path for d in disks}
        unknown = sorted(wanted - known)
        if unknown:
            raise InvalidConfigError(
                f"domain '{dom.name}' has no disk '{unknown[0]}'",
                hint="name disks by target (vda) or path, as 'domblklist' shows them",
            )
        disks = [d for d in disks if d.target_dev in wanted or d.source_path in wanted]
    else:
        disks = [d for d in disks if not d.readonly and not d.shareable]
    files = [
        d.source_path
        for d in disks
        if d.type == "file" and d.source_path and os.path.isfile(d.source_path)
    ]
    refuse_in_use(pools.paths, files, "remove")  # any running domain, before deleting one
    for disk in disks:
        if disk.type == "volume" and disk.source_pool and disk.source_volume:
            pool_name, info = pools.volumes.lookup(disk.source_volume, disk.source_pool)
            pools.volumes.check_not_in_use(pool_name, info, "delete")
    removed = []
    for disk in disks:
        if disk.type == "volume" and disk.source_pool and disk.source_volume:
            pools.volumes.delete(disk.source_volume, disk.source_pool)
            removed.append(f"{disk.source_pool}/{disk.source_volume}")
            continue
        path = disk.source_path
        if path and disk.type == "file" and os.path.isfile(path):
            os.unlink(path)
            removed.append(path)
    return removed


class VolumeManager:
    """vol-* operations. ``vol`` arguments are a name (with ``pool``), a path or a key."""

    def __init__(self, pools: PoolManager) -> None:
        self.pools = pools

    # -- lookups ---------------------------------------------------------------------
    def lookup(self, vol: str, pool: str | None = None) -> tuple[str, VolumeInfo]:
        """(pool name, volume) for a volume name in ``pool``, or a path or key in any pool.

        :raises NotFoundError: naming the volume (and the pool when given)
        """
        if pool is not None:
            backend = self.pools.active_backend(pool)
            info = backend.volume(vol) if "/" not in vol else None
            if info is None:
                info = next((v for v in backend.refresh() if vol in (v.path, v.key)), None)
            if info is None:
                raise NotFoundError(
                    f"storage volume '{vol}' not found in pool '{backend.name}'",
                    hint=f"list its volumes with 'vol-list {backend.name}'",
                )
            return backend.name, info
        for name in self.pools.names():
            live = self.pools.live(name)
            if live is None:
                continue
            backend = self.pools.backend(live)
            tgt = live.target_path
            if tgt and os.path.dirname(vol) == tgt.rstrip("/"):
                info = backend.volume(os.path.basename(vol))
                if info is not None:
                    return name, info
            elif "/" not in vol or not tgt:
                info = next((v for v in backend.refresh() if vol in (v.path, v.key)), None)
                if info is not None:
                    return name, info
        raise NotFoundError(
            f"storage volume '{vol}' not found",
            hint="give its pool with --pool, or the volume's path or key",
        )

    def _backend_of(self, vol: str, pool: str | None) -> tuple[PoolBackend, VolumeInfo]:
        name, info = self.lookup(vol, pool)
        return self.pools.active_backend(name), info

    def list(self, pool: str) -> list[VolumeInfo]:
        """vol-list: every volume of active pool ``pool``."""
        return self.pools.active_backend(pool).refresh()

    def info(self, vol: str, pool: str | None = None) -> VolumeInfo:
        """vol-info."""
        return self.lookup(vol, pool)[1]

    def dumpxml(self, vol: str, pool: str | None = None) -> str:
        """vol-dumpxml: the volume as libvirt's ``<volume>`` XML."""
        info = self.info(vol, pool)
        x = new_volume(info.name, info.capacity, info.format, info.allocation)
        x.type = info.type
        x.key = info.key
        if info.physical is not None:
            x.physical = info.physical
        assert x.target is not None
        x.target.path = info.path
        if info.backing_path:
            bs = new_volume("b", 0, info.backing_format or "raw").target
            assert bs is not None
            bs.path = info.backing_path
            x.backing = bs
        return x.to_xml()

    # -- create --------------------------------------------------------------------------
    def _request(
        self, backend: PoolBackend, spec: Volume, *, prealloc_metadata: bool
    ) -> CreateRequest:
        name = spec.name
        check_name(name, kind="volume")
        if name.startswith("."):
            raise InvalidConfigError(f"volume name '{name}' must not start with '.'")
        caps = backend.capabilities
        if not caps.create_volumes:
            raise InvalidStateError(
                f"pool '{backend.name}' of type '{backend.type}' cannot create volumes"
            )
        fmt = spec.format or caps.default_format
        if fmt not in caps.formats:
            raise InvalidConfigError(
                f"volume format '{fmt}' is not supported by pool '{backend.name}' "
                f"(type '{backend.type}')",
                hint="use one of: " + ", ".join(caps.formats),
            )
        capacity = spec.capacity or 0
        if capacity <= 0:
            raise InvalidConfigError(f"volume '{name}' capacity must be greater than 0")
        check_volume_bytes(capacity, what=f"volume '{name}' capacity")
        backing = spec.backing
        if backing is not None and (not caps.backing or fmt != "qcow2"):
            raise InvalidConfigError(
                f"volume '{name}': a backing volume needs --format qcow2"
                + ("" if caps.backing else f" in a pool that supports it, not '{backend.type}'")
            )
        allocation = spec.allocation
        if allocation is not None and allocation > capacity:
            allocation = capacity
        pi = backend.info()
        if pi.capacity and capacity > pi.capacity:
            raise InvalidConfigError(
                f"volume '{name}' capacity {format_bytes(capacity)} is larger than pool "
                f"'{backend.name}' ({format_bytes(pi.capacity)})"
            )
        needed = allocation if allocation is not None else (capacity if fmt == "raw" else 0)
        if not caps.thin:
            needed = capacity
        if needed > pi.available:
            raise InvalidConfigError(
                f"pool '{backend.name}' has {format_bytes(pi.available)} free; volume '{name}' "
                f"needs {format_bytes(needed)}",
                hint="use --allocation 0 for a thin volume, or free some space",
            )
        if backend.volume(name) is not None:
            raise AlreadyExistsError(
                f"storage volume '{name}' already exists in pool '{backend.name}'"
            )
        mode = None
        perms = spec.target.permissions if spec.target is not None else None
        if perms is not None and perms.mode:
            try:
                mode = int(perms.mode, 8)
            except ValueError:
                raise InvalidConfigError(
                    f"volume '{name}': mode '{perms.mode}' is not octal"
                ) from None
        return CreateRequest(
            name=name,
            capacity=capacity,
            format=fmt,
            allocation=allocation,
            backing_path=backing.path if backing is not None else None,
            backing_format=backing.format if backing is not None else None,
            prealloc_metadata=prealloc_metadata,
            mode=mode,
            spec=spec,
        )

    def create_xml(
        self, pool: str, xml: str | bytes | Volume, *, prealloc_metadata: bool = False
    ) -> VolumeInfo:
        """vol-create: a volume from ``<volume>`` XML."""
        spec = xml if isinstance(xml, Volume) else Volume.from_xml(xml)
        backend = self.pools.active_backend(pool)
        with self.pools.locked(backend.name):
            req = self._request(backend, spec, prealloc_metadata=prealloc_metadata)
            return backend.create_volume(req)

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
        """vol-create-as (sizes in bytes; ``backing_vol`` is a name in ``pool`` or a path)."""
        backend = self.pools.active_backend(pool)
        spec = new_volume(name, capacity, format or backend.capabilities.default_format)
        if allocation is not None:
            spec.allocation = allocation
        if backing_vol:
            try:
                _, base = self.lookup(backing_vol, backend.name)
            except NotFoundError:
                _, base = self.lookup(backing_vol)
            bs = new_volume("b", 0, backing_vol_format or base.format).target
            assert bs is not None
            bs.path = base.path
            spec.backing = bs
        return self.create_xml(backend.name, spec, prealloc_metadata=prealloc_metadata)

    def create_from(
        self,
        pool: str,
        xml: str | bytes | Volume,
        src_vol: str,
        *,
        src_pool: str | None = None,
        prealloc_metadata: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> VolumeInfo:
        """vol-create-from: a new volume (format from the XML) with the data of ``src_vol``
        (``progress`` in bytes; a ``cancel`` leaves no volume)."""
        spec = xml if isinstance(xml, Volume) else Volume.from_xml(xml)
        src_backend, src = self._backend_of(src_vol, src_pool)
        if (spec.capacity or 0) < src.capacity:
            spec.capacity = src.capacity
        backend = self.pools.active_backend(pool)
        with self.pools.locked(backend.name):
            req = self._request(backend, spec, prealloc_metadata=prealloc_metadata)
            req = dataclasses.replace(req, progress=progress, cancel=cancel)
            return backend.create_volume_from(req, src_backend.disk_source(src), src)

    def clone(
        self,
        vol: str,
        new_name: str,
        *,
        pool: str | None = None,
        prealloc_metadata: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> VolumeInfo:
        """vol-clone: a full copy in the same pool and format (backing chains flattened)."""
        pool_name, src = self.lookup(vol, pool)
        spec = new_volume(new_name, src.capacity, src.format, 0)
        return self.create_from(
            pool_name,
            spec,
            src.path,
            src_pool=pool_name,
            prealloc_metadata=prealloc_metadata,
            progress=progress,
            cancel=cancel,
        )

    # -- change --------------------------------------------------------------------------
    def _not_in_use(self, pool: str, info: VolumeInfo, doing: str, hint: str) -> None:
        users = domains_using(self.pools.paths, pool, [info.path], info.name)
        if users:
            raise InvalidStateError(
                f"cannot {doing} volume '{info.name}': it is in use by running domain "
                + ", ".join(f"'{u}'" for u in users),
                hint=hint,
            )

    def check_not_in_use(self, pool: str, info: VolumeInfo, doing: str) -> None:
        """Refuse to ``doing`` the volume while a running domain uses it, also as a backing file.

        :raises InvalidStateError: naming the domains
        """
        self._not_in_use(pool, info, doing, "shut the domain down or detach the disk first")

    def delete(self, vol: str, pool: str | None = None) -> None:
        """vol-delete (refused while a running domain uses the volume or it backs another)."""
        pool_name, info = self.lookup(vol, pool)
        backend = self.pools.active_backend(pool_name)
        with self.pools.locked(pool_name):
            self._not_in_use(
                pool_name, info, "delete", "shut the domain down or detach the disk first"
            )
            children = [v.name for v in backend.refresh() if v.backing_path == info.path]
            if children:
                raise InvalidStateError(
                    f"cannot delete volume '{info.name}': it is the backing file of volume "
                    + ", ".join(f"'{c}'" for c in children),
                    hint="delete those volumes first",
                )
            backend.delete_volume(info)

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
        """vol-resize: grow; shrink only with ``shrink`` and never below the data."""
        pool_name, info = self.lookup(vol, pool)
        backend = self.pools.active_backend(pool_name)
        new = info.capacity + capacity if delta else capacity
        check_volume_bytes(new, what=f"volume '{info.name}' capacity")
        if capacity < 0 and not delta:
            raise InvalidConfigError("a negative size needs --delta")
        if new <= 0:
            raise InvalidConfigError(f"volume '{info.name}' capacity must stay greater than 0")
        with self.pools.locked(pool_name):
            self._not_in_use(
                pool_name, info, "resize", "use 'blockresize DOMAIN DISK SIZE' for a live guest"
            )
            if new == info.capacity:
                return info
            if new < info.capacity:
                if not shrink:
                    raise InvalidConfigError(
                        f"volume '{info.name}' would shrink from {format_bytes(info.capacity)} "
                        f"to {format_bytes(new)}",
                        hint="use --shrink to allow it",
                    )
                if not backend.capabilities.shrink:
                    raise InvalidStateError(f"volumes of pool '{pool_name}' cannot shrink")
                end = _data_end(info)
                if new < end:
                    raise InvalidConfigError(
                        f"volume '{info.name}' cannot shrink to {format_bytes(new)}: it holds "
                        f"data up to {format_bytes(end)} (offset {end})",
                    )
            else:
                pi = backend.info()
                if allocate and new - info.capacity > pi.available:
                    raise InvalidConfigError(
                        f"pool '{pool_name}' has {format_bytes(pi.available)} free; "
                        f"growing volume '{info.name}' needs {format_bytes(new - info.capacity)}"
                    )
            return backend.resize_volume(info, new, allocate=allocate)

    def wipe(
        self,
        vol: str,
        *,
        pool: str | None = None,
        algorithm: str = "zero",
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """vol-wipe: overwrite with zeros and verify (a ``cancel`` stops part way)."""
        pool_name, info = self.lookup(vol, pool)
        backend = self.pools.active_backend(pool_name)
        with self.pools.locked(pool_name):
            self._not_in_use(pool_name, info, "wipe", "shut the domain down first")
            backend.wipe_volume(info, algorithm, progress=progress, cancel=cancel)

    # -- streaming ---------------------------------------------------------------------
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
        cancel: CancelToken | None = None,
    ) -> int:
        """vol-upload: write ``src`` into the volume at ``offset``; returns bytes written."""
        pool_name, info = self.lookup(vol, pool)
        backend = self.pools.active_backend(pool_name)
        self._not_in_use(pool_name, info, "upload to", "shut the domain down first")
        src_fd = src.fileno()
        size = stream.fd_size(src_fd)
        if size is not None:
            size = max(0, size - src.tell())
            length = size if length is None else min(length, size)
        whole = info.format == "raw" or info.type == "block"
        if whole and length is not None and offset + length > info.capacity:
            raise InvalidConfigError(
                f"cannot upload {format_bytes(length)} at offset {offset} to volume "
                f"'{info.name}' of {format_bytes(info.capacity)}",
                hint=f"grow it first with 'vol-resize {info.name} SIZE --pool {pool_name}'",
            )
        fd = backend.open_volume(info, write=True)
        try:
            done = stream.copy(
                src_fd,
                fd,
                src_offset=src.tell() if size is not None else 0,
                dst_offset=offset,
                length=length,
                sparse=sparse,
                progress=progress,
                cancel=cancel,
            )
            if not whole and offset == 0 and stream.is_regular(fd):
                os.ftruncate(fd, done)  # an image file replaced by another one
            os.fsync(fd)
        finally:
            os.close(fd)
        return done

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
        cancel: CancelToken | None = None,
    ) -> int:
        """vol-download: copy the volume's bytes from ``offset`` into ``dst``."""
        pool_name, info = self.lookup(vol, pool)
        backend = self.pools.active_backend(pool_name)
        fd = backend.open_volume(info, write=False)
        try:
            size = stream.fd_size(fd) or 0
            if offset > size:
                raise InvalidConfigError(
                    f"offset {offset} is beyond the end of volume '{info.name}' ({size} bytes)"
                )
            length = size - offset if length is None else min(length, size - offset)
            dst.flush()
            return stream.copy(
                fd,
                dst.fileno(),
                src_offset=offset,
                dst_offset=dst.tell() if stream.fd_size(dst.fileno()) is not None else 0,
                length=length,
                sparse=sparse,
                progress=progress,
                cancel=cancel,
            )
        finally:
            os.close(fd)


def _data_end(info: VolumeInfo) -> int:
    """Guest-visible offset just past the last data of a volume (0 when empty)."""
    if info.format != "raw":
        from pyvirt.storage import qemu_img  # lazy

        return qemu_img.data_end(info.path, info.format)
    fd = os.open(info.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        end = 0
        size = stream.fd_size(fd) or 0
        for off, length, is_data in stream.extents(fd, 0, size):
            if is_data:
                end = off + length
        if end:  # trim trailing zero bytes of the last extent, to 4 KiB
            pos = end
            while pos > 0:
                step = min(pos, stream.CHUNK)
                buf = os.pread(fd, step, pos - step)
                stripped = len(buf.rstrip(b"\0"))
                if stripped:
                    end = pos - step + stripped
                    break
                pos -= step
            else:
                end = 0
        return end
    finally:
        os.close(fd)
