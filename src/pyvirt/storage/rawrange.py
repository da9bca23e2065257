"""Byte ranges of block devices: partitions and LVs that have no device node of their own.

Backends whose volumes are ranges of a bigger device (``disk`` partitions, ``logical`` LVs
without device-mapper) wipe and read them here, always confined to ``[offset, offset+size)``.
"""

from __future__ import annotations

import os

from pyvirt.errors import OperationFailedError
from pyvirt.progress import CancelToken, Progress, checkpoint

CHUNK = 1024 * 1024


def zero(
    path: str,
    offset: int,
    size: int,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> None:
    """Overwrite ``size`` bytes at ``offset`` of ``path`` with zeros, sync, and verify.

    :raises OperationFailedError: when a byte reads back non-zero
    :raises CancelledError: ``cancel`` was set (the range is zeroed part way)
    """
    fd = os.open(path, os.O_RDWR)
    try:
        blank = bytes(CHUNK)
        done = 0
        while done < size:
            n = min(CHUNK, size - done)
            os.pwrite(fd, blank[:n], offset + done)
            done += n
            if done % (64 * CHUNK) == 0 or done == size:
                checkpoint(progress, cancel, done, size)
        os.fsync(fd)
        done = 0
        while done < size:
            n = min(CHUNK, size - done)
            data = os.pread(fd, n, offset + done)
            if data.count(0) != len(data) or len(data) != n:
                raise OperationFailedError(
                    f"wiping '{path}' failed: data remains at byte {offset + done}"
                )
            done += n
    finally:
        os.close(fd)


def read(path: str, offset: int, length: int) -> bytes:
    """``length`` bytes at ``offset`` of ``path``."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, length, offset)
    finally:
        os.close(fd)
