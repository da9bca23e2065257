"""Network backends by forward mode, registered with :func:`register_backend`.

Capabilities are data (:class:`BackendInfo`) so the service asks ``backend.info.dhcp`` instead
of testing mode names. Importing :mod:`pyvirt.network.backends` registers every module there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from pyvirt.errors import UnsupportedError
from pyvirt.network.base import NetworkBackend

B = TypeVar("B", bound=type[NetworkBackend])
_BACKENDS: dict[str, type[NetworkBackend]] = {}


def register_backend(mode: str) -> Callable[[B], B]:
    """Class decorator: the backend for forward mode ``mode`` (``isolated``: no forward)."""

    def deco(cls: B) -> B:
        _BACKENDS[mode] = cls
        return cls

    return deco


def backend_for(mode: str) -> NetworkBackend:
    """A backend instance for ``mode``.

    :raises UnsupportedError: for a mode no backend implements
    """
    import pyvirt.network.backends  # noqa: F401  (registers every backend)

    cls = _BACKENDS.get(mode)
    if cls is None:
        raise UnsupportedError(
            f"network forward mode '{mode}' is not supported",
            hint="use nat, route, open, bridge, or no <forward> for an isolated network",
        )
    return cls()


def modes() -> list[str]:
    """Every registered mode."""
    import pyvirt.network.backends  # noqa: F401

    return sorted(_BACKENDS)
