"""Atomic file writes: a temp file in the same directory, fsync, rename, fsync of the directory.

A reader sees either the old content or the new, never a torn file, even across a crash.
The file gets exactly ``mode`` whatever the umask (private, 0600, unless the caller says
otherwise: state files hold definitions and secrets).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from pyvirt.errors import OperationFailedError

#: errors that mean "the file system is full" (bytes, inodes or the user's quota)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(path: Path, err: OSError) -> OperationFailedError:
    """The one-line error for a write to ``path`` that failed because its disk is full."""
    what = "quota exceeded" if err.errno == errno.EDQUOT else "no space or inodes left"
    return OperationFailedError(
        f"cannot write {path}: the disk is full ({what})",
        hint=f"free space on the file system holding {path.parent} and retry; nothing was changed",
    )


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    :param mode: the file's mode, exactly (not filtered by the umask)

    :param sync: fsync the file and its directory (durable); False keeps atomicity only,
        for caches and indexes that can be rebuilt
    """
    try:
        _atomic_write(path, data, mode, sync=sync)
    except OSError as err:
        if err.errno in DISK_FULL:
            raise disk_full_error(path, err) from None
        raise


#: flags of a new temporary file: never an existing file, never through a symlink
_TMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _mkstemp(path: Path) -> tuple[int, str]:
    """Create ``.NAME.RANDOM.tmp`` next to ``path``, mode 0600 (as ``tempfile.mkstemp``,
    whose import costs ~3 ms of every command's start-up)."""
    for _ in range(100):
        tmp = os.path.join(path.parent, f".{path.name}.{os.urandom(6).hex()}.tmp")
        try:
            return os.open(tmp, _TMP_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temporary file name", str(path.parent))


def _atomic_write(path: Path, data: bytes, mode: int, *, sync: bool) -> None:
    directory = path.parent
    fd, tmp = _mkstemp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    if sync:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
