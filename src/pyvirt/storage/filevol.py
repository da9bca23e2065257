"""Volumes that are files in a directory: the shared part of the ``dir``, ``fs`` and ``netfs``
(kernel mount) backends.

Listing must be fast (``vol-list --details`` on 1000 volumes), so formats and capacities come
from reading image headers here (qcow2's magic, size and backing file), not from running
qemu-img per file; creating, converting and resizing images goes through
:mod:`pyvirt.storage.qemu_img`.
"""

from __future__ import annotations

import contextlib
import os
import stat
import struct
from collections.abc import Iterator
from pathlib import Path

from pyvirt.errors import InvalidConfigError, OperationFailedError, UnsupportedError
from pyvirt.progress import CancelToken, Progress, checkpoint, scaled
from pyvirt.storage import qemu_img, stream
from pyvirt.storage.base import (
    CreateRequest,
    DiskSource,
    PoolBackend,
    PoolInfo,
    VolumeInfo,
)

QCOW2_MAGIC = b"QFI\xfb"
_BACKING_FMT_EXT = 0xE2792ACA
WIPE_ALGORITHMS = ("zero",)


def probe(path: str, st: os.stat_result) -> tuple[str, int, str | None, str | None]:
    """(format, capacity, backing path, backing format) from the file's header."""
    if not stat.S_ISREG(st.st_mode):
        return "raw", st.st_size, None, None
    try:
        with open(path, "rb") as f:
            head = f.read(512)
            if head[:4] != QCOW2_MAGIC or len(head) < 72:
                return "raw", st.st_size, None, None
            version, boff, bsize = struct.unpack(">IQI", head[4:20])
            (capacity,) = struct.unpack(">Q", head[24:32])
            backing = bfmt = None
            if boff and 0 < bsize < 4096:
                f.seek(boff)
                backing = f.read(bsize).decode(errors="replace")
                hlen = struct.unpack(">I", head[100:104])[0] if version >= 3 else 72
                bfmt = _backing_format(f, hlen)
            if backing and not backing.startswith("/"):
                backing = os.path.join(os.path.dirname(path), backing)
            return "qcow2", capacity, backing, bfmt
    except OSError:
        return "raw", st.st_size, None, None


def _backing_format(f: object, offset: int) -> str | None:
    assert hasattr(f, "seek") and hasattr(f, "read")
    f.seek(offset)
    for _ in range(16):
        hdr = f.read(8)
        if len(hdr) < 8:
            return None
        kind, length = struct.unpack(">II", hdr)
        if kind == 0:
            return None
        data = f.read((length + 7) & ~7)
        if kind == _BACKING_FMT_EXT:
            return bytes(data[:length]).decode(errors="replace")
    return None


def file_info(path: str, name: str | None = None) -> VolumeInfo | None:
    """A :class:`VolumeInfo` for a file (or block device node), None if it is gone."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    fmt, capacity, backing, bfmt = probe(path, st)
    block = stat.S_ISBLK(st.st_mode)
    return VolumeInfo(
        name=name or os.path.basename(path),
        key=path,
        path=path,
        type="block" if block else "file",
        format=fmt,
        capacity=capacity,
        allocation=capacity if block else st.st_blocks * 512,
        physical=st.st_size,
        backing_path=backing,
        backing_format=bfmt,
    )


class FileVolumes(PoolBackend):
    """Volumes as files in :attr:`directory` (the pool's target path)."""

    @property
    def directory(self) -> Path:
        """Where the volume files live."""
        path = self.pool.target_path
        if not path:
            raise InvalidConfigError(
                f"pool '{self.name}' has no <target><path>", hint="add the target directory"
            )
        return Path(path)

    def check(self) -> None:
        self.directory  # noqa: B018 - raises when missing

    def info(self) -> PoolInfo:
        st = os.statvfs(self.directory)
        cap = st.f_blocks * st.f_frsize
        return PoolInfo(cap, cap - st.f_bfree * st.f_frsize, st.f_bavail * st.f_frsize)

    def refresh(self) -> list[VolumeInfo]:
        out = []
        with os.scandir(self.directory) as entries:
            for e in entries:
                if e.name.startswith(".") or e.is_dir(follow_symlinks=False):
                    continue
                info = file_info(e.path, e.name)
                if info is not None:
                    out.append(info)
        out.sort(key=lambda v: v.name)
        return out

    def volume(self, name: str) -> VolumeInfo | None:
        path = self.directory / name
        if name.startswith(".") or path.is_dir():
            return None
        return file_info(str(path), name)

    # -- create --------------------------------------------------------------------------
    def create_volume(self, req: CreateRequest) -> VolumeInfo:
        path = self.directory / req.name
        with _undo_on_error(path):
            if req.format == "raw":
                _create_raw(path, req.capacity, req.allocation, req.mode)
            else:
                prealloc = None
                if req.allocation is not None and req.allocation >= req.capacity:
                    prealloc = "falloc"
                elif req.prealloc_metadata:
                    prealloc = "metadata"
                opts: dict[str, str | None] = {"compat": "1.1"} if req.format == "qcow2" else {}
                with _staged(path) as tmp:  # a killed create leaves nothing half-made or 0644
                    qemu_img.create(
                        str(tmp),
                        req.format,
                        req.capacity,
                        backing=req.backing_path,
                        backing_fmt=req.backing_format,
                        preallocation=prealloc,
                        options=opts,
                    )
                    os.chmod(tmp, req.mode if req.mode is not None else 0o600)
        return self._must(req.name)

    def create_volume_from(
        self, req: CreateRequest, source: DiskSource, source_info: VolumeInfo
    ) -> VolumeInfo:
        path = self.directory / req.name
        thick = req.allocation is not None and req.allocation >= req.capacity
        with _undo_on_error(path):
            if req.format == "raw" and source_info.format == "raw" and source.kind != "network":
                _copy_file(
                    source.path or source_info.path,
                    path,
                    source_info.capacity,
                    thick,
                    progress=req.progress,
                    cancel=req.cancel,
                )
                os.chmod(path, req.mode if req.mode is not None else 0o600)
            else:
                prealloc = "falloc" if thick else ("metadata" if req.prealloc_metadata else None)
                with _staged(path) as tmp:  # a killed convert leaves nothing half-made or 0644
                    qemu_img.convert(
                        source.path or source_info.path,
                        source_info.format,
                        str(tmp),
                        req.format,
                        preallocation=prealloc if req.format in ("raw", "qcow2") else None,
                        progress=scaled(req.progress, source_info.capacity),
                        cancel=req.cancel,
                    )
                    if req.capacity > source_info.capacity:
                        qemu_img.resize(str(tmp), req.format, req.capacity)
                    os.chmod(tmp, req.mode if req.mode is not None else 0o600)
        return self._must(req.name)

    def _must(self, name: str) -> VolumeInfo:
        info = self.volume(name)
        if info is None:
            raise OperationFailedError(f"volume '{name}' vanished right after it was created")
        return info

    # -- change --------------------------------------------------------------------------
    def delete_volume(self, vol: VolumeInfo) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(vol.path)

    def resize_volume(self, vol: VolumeInfo, capacity: int, *, allocate: bool) -> VolumeInfo:
        if vol.format == "raw":
            fd = os.open(vol.path, os.O_RDWR | os.O_CLOEXEC)
            try:
                old = os.fstat(fd).st_size
                os.ftruncate(fd, capacity)
                if allocate and capacity > old:
                    os.posix_fallocate(fd, old, capacity - old)
            finally:
                os.close(fd)
        else:
            qemu_img.resize(
                vol.path,
                vol.format,
                capacity,
                shrink=capacity < vol.capacity,
                preallocation="falloc" if allocate else None,
            )
        return self._must(vol.name)

    def wipe_volume(
        self,
        vol: VolumeInfo,
        algorithm: str,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        if algorithm not in WIPE_ALGORITHMS:
            raise UnsupportedError(
                f"wipe algorithm '{algorithm}' is not supported for volume '{vol.name}'",
                hint="use --algorithm zero",
            )
        if vol.format == "raw":
            _zero_file(vol.path, progress=progress, cancel=cancel)
            _verify_zero_file(vol)
        else:
            # rewriting the image file's bytes would destroy its header: make it empty instead
            tmp = f"{vol.path}.wipe"
            qemu_img.create(tmp, vol.format, vol.capacity, options={"compat": "1.1"})
            os.chmod(tmp, stat.S_IMODE(os.stat(vol.path).st_mode))
            os.replace(tmp, vol.path)
            if qemu_img.data_end(vol.path, vol.format) != 0:
                raise OperationFailedError(f"volume '{vol.name}' still holds data after wipe")

    def open_volume(self, vol: VolumeInfo, *, write: bool) -> int:
        return os.open(vol.path, (os.O_RDWR if write else os.O_RDONLY) | os.O_CLOEXEC)


@contextlib.contextmanager
def _staged(path: Path) -> Iterator[Path]:
    """Build a new volume file under a hidden temporary name and publish it at ``path`` in one
    step (``link``: fails if ``path`` exists, like ``O_EXCL``), so a command killed midway
    never leaves a half-made volume visible (hidden files are not volumes)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        yield tmp
        os.link(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _create_raw(path: Path, capacity: int, allocation: int | None, mode: int | None) -> None:
    with _staged(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.ftruncate(fd, capacity)
            alloc = capacity if allocation is None else min(allocation, capacity)
            if alloc:
                os.posix_fallocate(fd, 0, alloc)
            if mode is not None:
                os.fchmod(fd, mode)
        finally:
            os.close(fd)


def _copy_file(
    src: str,
    dst: Path,
    size: int,
    thick: bool,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> None:
    sfd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _staged(dst) as tmp:
            dfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                stream.copy(sfd, dfd, length=size, sparse=True, progress=progress, cancel=cancel)
                os.ftruncate(dfd, size)
                if thick:
                    os.posix_fallocate(dfd, 0, size)
            finally:
                os.close(dfd)
    finally:
        os.close(sfd)


def _zero_file(
    path: str, *, progress: Progress | None = None, cancel: CancelToken | None = None
) -> None:
    """Overwrite every byte with zeros (allocated blocks stay allocated)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        step = stream.CHUNK if progress is None and cancel is None else stream.WATCHED_CHUNK
        zeros = bytes(step)
        for off in range(0, size, step):
            stream._pwrite_all(fd, zeros[: min(step, size - off)], off)
            checkpoint(progress, cancel, min(size, off + step), size)
        os.fsync(fd)
    finally:
        os.close(fd)


def _verify_zero_file(vol: VolumeInfo) -> None:
    fd = os.open(vol.path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        for off, length, is_data in stream.extents(fd, 0, size):
            if not is_data:
                continue
            for pos in range(off, off + length, stream.CHUNK):
                buf = os.pread(fd, min(stream.CHUNK, off + length - pos), pos)
                if buf.count(0) != len(buf):
                    raise OperationFailedError(
                        f"volume '{vol.name}' is not all zeros after wipe (offset {pos})"
                    )
    finally:
        os.close(fd)


@contextlib.contextmanager
def _undo_on_error(path: Path) -> Iterator[None]:
    """Remove a half-made volume file when its creation fails."""
    existed = path.exists()
    if existed:
        raise InvalidConfigError(f"volume file '{path}' already exists")
    try:
        yield
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise
