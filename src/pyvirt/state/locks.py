"""Advisory locks between concurrent pyvirt processes (``fcntl.flock`` on lock files).

One lock per domain name serializes operations on that domain; the ``namespace`` lock guards
the set of names and UUIDs (define, undefine, rename, transient create). Lock order is always
namespace first, then the object, so two processes never deadlock.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyvirt.errors import OperationFailedError


@contextmanager
def file_lock(path: Path, *, timeout: float = 30.0, what: str = "object") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the ``with`` block.

    :raises OperationFailedError: if the lock is not free within ``timeout`` seconds
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + timeout
        delay = 0.002
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise OperationFailedError(
                        f"timed out waiting for the lock on {what}",
                        hint="another pyvirt command is still working on it; retry later",
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
        yield
    finally:
        os.close(fd)
