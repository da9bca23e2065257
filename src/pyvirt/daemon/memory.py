"""Keeping pyvirtd's resident memory small (issue 11: <= 60 MiB with 1000 defined and 10
running domains).

- :func:`lean_process`, called by ``pyvirtd`` before anything else is imported: at most
  :data:`MALLOC_ARENAS` glibc malloc arenas (by default each thread that allocates may get
  its own, up to 8 per core, and freed memory stays in them), and no ``pydantic.v1`` (FastAPI
  imports it only to check that no route uses a v1 model, and accepts its absence; it costs
  about 1.5 MiB).
- The ``memory`` feature gives freed heap back to the kernel (``malloc_trim``) once start-up
  is done and then every :data:`TRIM_INTERVAL` seconds (a trim takes well under a millisecond
  on an idle heap).

Nothing here is needed for correctness: without glibc every step is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import sys

from fastapi import APIRouter

from pyvirt.daemon.context import Daemon

__all__ = ["MALLOC_ARENAS", "TRIM_INTERVAL", "lean_process", "router", "setup", "trim"]

#: glibc malloc arenas (``M_ARENA_MAX``); the daemon's threads mostly wait on I/O
MALLOC_ARENAS = 2
#: seconds between two ``malloc_trim`` calls
TRIM_INTERVAL = 10.0
_M_ARENA_MAX = -8

router = APIRouter()


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def lean_process() -> None:
    """Process-wide settings for a small daemon; call before the web stack is imported."""
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)


def trim() -> None:
    """Give the C heap's free memory back to the kernel."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def setup(daemon: Daemon) -> None:
    """Trim after start-up (register this feature last), then periodically."""
    task: list[asyncio.Task[None]] = []

    async def trimmer() -> None:
        while True:
            await asyncio.sleep(TRIM_INTERVAL)
            trim()

    async def start() -> None:
        trim()
        task.append(asyncio.get_running_loop().create_task(trimmer()))

    async def stop() -> None:
        for t in task:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    daemon.on_startup.append(start)
    daemon.on_shutdown.append(stop)
