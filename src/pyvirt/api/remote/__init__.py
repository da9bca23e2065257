"""The remote implementation of the public API: the same classes, requests to a pyvirtd."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.client.uri import Target

__all__ = ["open_remote"]


def open_remote(target: Target) -> Connection:
    """A connection to the daemon at ``target``.

    :raises UnsupportedError: not built yet
    """
    raise UnsupportedError(f"connection URI '{target.uri}' needs the remote API")
