"""The remote implementation of the public API: the same classes, requests to a pyvirtd.

``pyvirt.api.open(uri)`` lands here for every daemon URI (``pyvirt:///system``,
``pyvirt+unix://``, ``pyvirt+tls://``, ``pyvirt+ssh://``, or none when the local daemon
answers). :mod:`pyvirt.api.remote.connection` explains which verbs go over HTTP and what the
others do; :mod:`pyvirt.api.remote.domains` holds the domain verbs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.api.remote.connection import RemoteConnection
    from pyvirt.client.uri import Target

__all__ = ["open_remote"]

# lazy: importing pyvirt.api.remote costs nothing until a remote connection is opened.


def open_remote(target: Target) -> RemoteConnection:
    """A connection to the daemon at ``target`` (nothing is sent until the first request).

    :raises UnsupportedError: no transport for the target's kind
    """
    from pyvirt.api.remote.connection import RemoteConnection, service_for  # lazy
    from pyvirt.client.transport import Client  # lazy

    return RemoteConnection(Client.for_target(target), service_for(target))
