"""Keeping pyvirtd's resident memory small (issue 11: <= 60 MiB with 1000 defined and 10
running domains).

- :func:`lean_process`, called by ``pyvirtd`` before anything else is imported (importing
  this module imports neither FastAPI nor pydantic):

  - at most :data:`MALLOC_ARENAS` glibc malloc arenas (by default each thread that
    allocates may get its own, up to 8 per core, and freed memory stays in them);
  - a fixed :data:`MMAP_THRESHOLD`: large blocks go back to the kernel when freed;
  - no ``pydantic.v1`` (FastAPI imports it only to check that no route uses a v1 model,
    and accepts its absence; about 1.5 MiB);
  - uvicorn without its command line (``uvicorn/__init__.py`` imports ``uvicorn.main``:
    click, multiprocessing and the reload supervisors, about 2 MiB; the daemon only uses
    ``uvicorn.Config`` and ``uvicorn.Server``, anything else is imported from
    ``uvicorn.main`` when first asked for);
  - FastAPI's OpenAPI models (``fastapi.openapi.models``: about 40 pydantic classes that
    every ``import fastapi`` builds, about 2 MiB) built when first used, that is when
    ``/openapi.json`` is first asked for (the document is the same).
- The ``memory`` feature freezes the objects of start-up (``gc.freeze``: later collections
  do not scan them) and gives freed heap back to the kernel (``malloc_trim``) once start-up
  is done, then collects and trims every :data:`TRIM_INTERVAL` seconds (a few ms).

Nothing here is needed for correctness: without glibc every step is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import functools
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyvirt.daemon.context import Daemon

__all__ = ["MALLOC_ARENAS", "MMAP_THRESHOLD", "TRIM_INTERVAL", "lean_process", "setup", "trim"]

#: glibc malloc arenas (``M_ARENA_MAX``); the daemon's threads mostly wait on I/O, and
#: Python's own allocator serves small objects under the GIL anyway: one arena (measured:
#: 0.3 MiB less than two with 1000 defined and 6 running guests, whatever the stage)
MALLOC_ARENAS = 1
#: bytes from which glibc malloc serves a block by its own ``mmap`` (``M_MMAP_THRESHOLD``),
#: given back to the kernel as soon as it is freed. glibc's default (128 KiB) rises to the
#: size of any such block freed (up to 32 MiB), later ones then come from the heap, which
#: keeps them until the next trim: a web console login (a 16 MiB scrypt in OpenSSL) left the
#: daemon 16 MiB bigger for up to :data:`TRIM_INTERVAL`. Set, it stays fixed.
MMAP_THRESHOLD = 128 * 1024
#: seconds between two ``malloc_trim`` calls
TRIM_INTERVAL = 10.0
_M_ARENA_MAX = -8
_M_MMAP_THRESHOLD = -3
#: FastAPI's module of OpenAPI models, whose pydantic schemas are built on first use
_OPENAPI_MODELS = "fastapi.openapi.models"


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None


def _uvicorn_without_cli() -> None:
    """Make ``import uvicorn`` give the package with ``Config`` and ``Server`` but without
    running ``uvicorn/__init__.py`` (its other names load ``uvicorn.main`` on first use)."""
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    if spec is None or spec.submodule_search_locations is None:
        return
    pkg = types.ModuleType("uvicorn")
    pkg.__spec__ = spec
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__file__ = spec.origin

    def __getattr__(name: str) -> Any:  # PEP 562: main, run, ...
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(importlib.import_module("uvicorn.main"), name)

    vars(pkg)["__getattr__"] = __getattr__
    sys.modules["uvicorn"] = pkg
    try:  # Config first: uvicorn.lifespan.on imports it from the package
        for name, module in (("__version__", "_version"), ("Config", "config"),
                             ("Server", "server")):  # fmt: skip
            setattr(pkg, name, getattr(importlib.import_module(f"uvicorn.{module}"), name))
    except Exception:  # an unexpected uvicorn layout: the ordinary package
        for name in [m for m in sys.modules if m == "uvicorn" or m.startswith("uvicorn.")]:
            del sys.modules[name]


def _exec_deferred(exec_module: Any, module: types.ModuleType) -> None:
    """Run ``module``'s code with pydantic's ``defer_build`` on by default and its explicit
    ``model_rebuild()`` calls skipped: each model's schema is built when first used."""
    from pydantic import BaseModel
    from pydantic._internal import _config

    defaults: dict[str, Any] = _config.config_defaults  # type: ignore[assignment]
    saved = defaults.get("defer_build", False)
    rebuild = BaseModel.__dict__["model_rebuild"]
    defaults["defer_build"] = True
    BaseModel.model_rebuild = classmethod(lambda _cls, *_a, **_k: None)  # type: ignore[assignment, method-assign]
    try:
        exec_module(module)
    finally:
        defaults["defer_build"] = saved
        BaseModel.model_rebuild = rebuild  # type: ignore[method-assign]


class _DeferredOpenAPIModels(importlib.abc.MetaPathFinder):
    """Finds ``fastapi.openapi.models`` as usual and loads it with deferred schemas."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _OPENAPI_MODELS:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: importlib.machinery.ModuleSpec | None = finder.find_spec(fullname, path, target)
            if spec is None:
                continue
            loader = spec.loader
            if loader is not None and hasattr(loader, "exec_module"):
                exec_module = loader.exec_module
                loader.exec_module = functools.partial(_exec_deferred, exec_module)  # type: ignore[method-assign]
            return spec
        return None


def _defer_openapi_models() -> None:
    if _OPENAPI_MODELS in sys.modules or importlib.util.find_spec("pydantic") is None:
        return
    with contextlib.suppress(ImportError, AttributeError):  # another pydantic: no deferral
        from pydantic._internal import _config

        if "defer_build" in _config.config_defaults and not any(
            isinstance(f, _DeferredOpenAPIModels) for f in sys.meta_path
        ):
            sys.meta_path.insert(0, _DeferredOpenAPIModels())


def lean_process() -> None:
    """Process-wide settings for a small daemon; call before the web stack is imported."""
    sys.modules.setdefault("pydantic.v1", None)  # type: ignore[arg-type]
    _uvicorn_without_cli()
    _defer_openapi_models()
    libc = _libc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, MALLOC_ARENAS)
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def trim() -> None:
    """Give the C heap's free memory back to the kernel."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)


def setup(daemon: Daemon) -> None:
    """Freeze and trim after start-up (register this feature last), then periodically."""
    task: list[asyncio.Task[None]] = []

    async def trimmer() -> None:
        while True:
            await asyncio.sleep(TRIM_INTERVAL)
            gc.collect()  # cheap: start-up's objects are frozen
            trim()

    async def start() -> None:
        gc.collect()
        gc.freeze()  # start-up's objects: never scanned again by the collector
        trim()
        task.append(asyncio.get_running_loop().create_task(trimmer()))

    async def stop() -> None:
        for t in task:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t

    daemon.on_startup.append(start)
    daemon.on_shutdown.append(stop)
