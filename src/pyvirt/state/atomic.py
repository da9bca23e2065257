"""Atomic file writes: a temp file in the same directory, fsync, rename, fsync of the directory.

A reader sees either the old content or the new, never a torn file, even across a crash.
The file gets exactly ``mode`` whatever the umask (private, 0600, unless the caller says
otherwise: state files hold definitions and secrets).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def atomic_write(path: Path, data: bytes, mode: int = 0o600, *, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    :param mode: the file's mode, exactly (not filtered by the umask)

    :param sync: fsync the file and its directory (durable); False keeps atomicity only,
        for caches and indexes that can be rebuilt
    """
    directory = path.parent
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
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
