"""The pool backend registry: ``@register_pool_backend("dir")`` and lookup by pool type.

Backends live one per module in :mod:`pyvirt.storage.backends`; that package imports all of
its modules with :mod:`pkgutil` when the full list is needed, so adding a backend is one
file with the decorator. A lookup by type first imports only ``backends/<type>.py`` (listing
a ``dir`` pool must not pay for importing the iSCSI and LVM helpers).
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from collections.abc import Callable

from pyvirt.errors import InvalidConfigError
from pyvirt.storage.base import PoolBackend

_BACKENDS: dict[str, type[PoolBackend]] = {}
_loaded = False

B = type[PoolBackend]


def register_pool_backend(pool_type: str) -> Callable[[B], B]:
    """Class decorator: register a :class:`PoolBackend` subclass for ``pool_type``."""

    def wrap(cls: B) -> B:
        cls.type = pool_type
        _BACKENDS[pool_type] = cls
        return cls

    return wrap


def _load() -> None:
    global _loaded
    if _loaded:
        return
    import pyvirt.storage.backends as pkg

    for mod in pkgutil.iter_modules(pkg.__path__):
        importlib.import_module(f"{pkg.__name__}.{mod.name}")
    _loaded = True


def backend_class(pool_type: str) -> B:
    """The backend class of ``pool_type``.

    :raises InvalidConfigError: for a type no backend registered
    """
    if pool_type not in _BACKENDS and pool_type.isidentifier():
        # by convention a backend lives in the module named like its type: import just that
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"pyvirt.storage.backends.{pool_type}")
    if pool_type not in _BACKENDS:
        _load()
    try:
        return _BACKENDS[pool_type]
    except KeyError:
        raise InvalidConfigError(
            f"pool type '{pool_type}' is not supported",
            hint="supported pool types: " + ", ".join(sorted(_BACKENDS)),
        ) from None


def pool_types() -> list[str]:
    """Every registered pool type, sorted."""
    _load()
    return sorted(_BACKENDS)
