"""Byte streaming between files, block devices and pipes; sparse-aware.

With ``sparse`` the data extents of a regular source are found with ``SEEK_DATA``/``SEEK_HOLE``
(and all-zero chunks of other sources are detected), and holes are recreated in a regular
destination with ``fallocate(PUNCH_HOLE)``, so holes stay holes both ways. Data extents
between regular files go through ``copy_file_range`` (in-kernel, no copies through Python).
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterator

from pyvirt.progress import CancelToken, Progress, checkpoint

CHUNK = 64 * 1024 * 1024
#: the step of a watched copy (a progress callback or a cancel token): finer reports, and a
#: cancel takes effect within one step
WATCHED_CHUNK = 4 * 1024 * 1024
_ZEROS = bytes(CHUNK)
_FALLOC_FL_KEEP_SIZE = 0x01
_FALLOC_FL_PUNCH_HOLE = 0x02
_libc: ctypes.CDLL | None = None


def punch_hole(fd: int, offset: int, length: int) -> None:
    """Deallocate ``length`` bytes at ``offset`` (they read as zeros; the size is kept)."""
    global _libc
    if length <= 0:
        return
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)  # the running libc, no ldconfig lookup
        _libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    if _libc.fallocate(fd, _FALLOC_FL_PUNCH_HOLE | _FALLOC_FL_KEEP_SIZE, offset, length) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def is_regular(fd: int) -> bool:
    """True when ``fd`` is a regular file."""
    return stat.S_ISREG(os.fstat(fd).st_mode)


def fd_size(fd: int) -> int | None:
    """Size of a regular file or block device, None for pipes and sockets."""
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return st.st_size
    if stat.S_ISBLK(st.st_mode):
        return os.lseek(fd, 0, os.SEEK_END)
    return None


def extents(fd: int, start: int, end: int) -> Iterator[tuple[int, int, bool]]:
    """``(offset, length, is_data)`` runs of a regular file between ``start`` and ``end``."""
    pos = start
    while pos < end:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as err:
            if err.errno != errno.ENXIO:  # ENXIO: only a hole up to EOF
                raise
            data = end
        data = min(data, end)
        if data > pos:
            yield pos, data - pos, False
        if data >= end:
            return
        hole = min(os.lseek(fd, data, os.SEEK_HOLE), end)
        yield data, hole - data, True
        pos = hole


def _copy_data(
    src: int,
    src_off: int,
    dst: int,
    dst_off: int,
    length: int,
    fast: bool,
    zero_holes: bool,
    step: int = CHUNK,
) -> Iterator[int]:
    """Copy one data run; yields bytes done per step. ``zero_holes``: skip zero chunks."""
    done = 0
    while done < length:
        n = min(step, length - done)
        if fast:
            try:
                got = os.copy_file_range(src, dst, n, src_off + done, dst_off + done)
            except OSError as err:
                if err.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                    raise
                fast = False
                continue
            if got == 0:
                return
        else:
            buf = os.pread(src, n, src_off + done) if src_off >= 0 else os.read(src, n)
            got = len(buf)
            if got == 0:
                return
            if zero_holes and dst_off >= 0 and buf == _ZEROS[:got]:
                punch_hole(dst, dst_off + done, got)
            elif dst_off >= 0:
                _pwrite_all(dst, buf, dst_off + done)
            else:
                _write_all(dst, buf)
        done += got
        yield got


def _pwrite_all(fd: int, buf: bytes, off: int) -> None:
    view = memoryview(buf)
    while view:
        n = os.pwrite(fd, view, off)
        view, off = view[n:], off + n


def _write_all(fd: int, buf: bytes) -> None:
    view = memoryview(buf)
    while view:
        view = view[os.write(fd, view) :]


def copy(
    src: int,
    dst: int,
    *,
    src_offset: int = 0,
    dst_offset: int = 0,
    length: int | None = None,
    sparse: bool = False,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> int:
    """Copy ``length`` bytes (to the end of ``src`` when None) and return the bytes copied.

    Offsets apply to seekable descriptors; pipes are read/written sequentially. ``progress``
    hears of every chunk; ``cancel`` is checked between chunks (the caller removes or keeps
    what was written).

    :raises CancelledError: ``cancel`` was set
    """
    if cancel is not None:
        cancel.check()
    src_seek = fd_size(src) is not None
    dst_reg = is_regular(dst)
    dst_seek = fd_size(dst) is not None
    src_size = fd_size(src)
    if length is None and src_size is not None:
        length = max(0, src_size - src_offset)
    total = length if length is not None else 0
    s_off = src_offset if src_seek else -1
    d_off = dst_offset if dst_seek else -1
    if length is None:  # a pipe: stream until EOF
        runs: Iterator[tuple[int, int, bool]] = iter([(0, 1 << 62, True)])
    elif sparse and is_regular(src):
        runs = extents(src, src_offset, src_offset + length)
    else:
        runs = iter([(src_offset, length, True)])
    fast = src_seek and dst_seek and is_regular(src) and dst_reg
    done = 0
    for off, run, is_data in runs:
        rel = off - src_offset
        if is_data:
            for step in _copy_data(
                src,
                s_off + rel if s_off >= 0 else -1,
                dst,
                d_off + rel if d_off >= 0 else -1,
                run,
                fast,
                zero_holes=sparse and dst_reg,
                step=CHUNK if progress is None and cancel is None else WATCHED_CHUNK,
            ):
                done += step
                checkpoint(progress, cancel, done, total)
            if length is None:
                break
        else:
            if dst_reg:
                punch_hole(dst, d_off + rel, run)
            else:
                zero = bytes(min(CHUNK, run))
                left = run
                while left:
                    n = min(left, len(zero))
                    if d_off >= 0:
                        _pwrite_all(dst, zero[:n], d_off + rel + run - left)
                    else:
                        _write_all(dst, zero[:n])
                    left -= n
            done += run
            checkpoint(progress, cancel, done, total)
    if dst_reg and sparse and d_off >= 0:
        end = d_off + done
        if os.fstat(dst).st_size < end:
            os.ftruncate(dst, end)
    return done
