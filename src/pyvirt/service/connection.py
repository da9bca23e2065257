"""Connections: the entry point of the public API.

``open_connection(uri)`` returns a :class:`Connection`. Only the embedded driver exists for
now: state lives on this host (see :mod:`pyvirt.state.paths`) and no daemon is needed.

Accepted URIs: ``None`` (default), ``qemu:///system``, ``qemu:///session``, ``pyvirt:///embed``
and ``pyvirt:///embed?root=DIR`` (all state under DIR, like ``PYVIRT_STATE_DIR``).
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from pyvirt.errors import InvalidConfigError, PyvirtError
from pyvirt.state import modes, qemu_user
from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.service.host.facts import HostManager
    from pyvirt.service.host.nodedev import NodeDeviceManager
    from pyvirt.service.network.networks import NetworkManager
    from pyvirt.service.storage.pools import PoolManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: each manager's module
# loads only when used: ``pyvirt list`` must not import pools, networks or node devices (~10-40 ms
# each).

KNOWN_URIS = ("qemu:///system", "qemu:///session", "pyvirt:///embed", "pyvirt:///system")


def _secure(paths: StatePaths) -> None:
    """State directories with explicit modes, whatever the umask (:mod:`pyvirt.state.modes`)."""
    try:
        qemu = qemu_user.resolve(paths.config)
    except PyvirtError:
        gid = None  # reported when a domain starts
    else:
        gid = qemu.gid if qemu.separate else None
    modes.secure_state_dirs(paths, gid)


class Connection:
    """A connection to one host's pyvirt state. Cheap to create; opens nothing eagerly."""

    def __init__(self, paths: StatePaths, uri: str) -> None:
        self.paths = paths
        self.uri = uri
        _secure(paths)

    @cached_property
    def domains(self) -> DomainManager:
        """Domain operations (define, start, list, ...)."""
        from pyvirt.service.domain.manager import DomainManager  # lazy

        return DomainManager(self.paths)

    @cached_property
    def pools(self) -> PoolManager:
        """Storage pools and their volumes (pool-*, vol-*)."""
        from pyvirt.service.storage.pools import PoolManager  # lazy

        return PoolManager(self.paths)

    @cached_property
    def networks(self) -> NetworkManager:
        """Virtual networks (net-*)."""
        from pyvirt.service.network.networks import NetworkManager  # lazy

        return NetworkManager(self.paths)

    @cached_property
    def nodedevs(self) -> NodeDeviceManager:
        """Host devices from sysfs (nodedev-*)."""
        from pyvirt.service.host.nodedev import NodeDeviceManager  # lazy

        return NodeDeviceManager()

    @cached_property
    def host(self) -> HostManager:
        """Host facts: versions, capabilities, host-validate."""
        from pyvirt.service.host.facts import HostManager  # lazy

        return HostManager(self.paths)


def open_connection(uri: str | None = None) -> Connection:
    """Open a connection.

    :raises InvalidConfigError: for a URI pyvirt does not know
    """
    uri = uri or os.environ.get("PYVIRT_DEFAULT_URI") or os.environ.get("LIBVIRT_DEFAULT_URI")
    if not uri:
        return Connection(StatePaths.default(), "pyvirt:///embed")
    parts = urlsplit(uri)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if base not in KNOWN_URIS:
        raise InvalidConfigError(
            f"connection URI '{uri}' is not supported",
            hint="use qemu:///system or pyvirt:///embed?root=DIR",
        )
    root = parse_qs(parts.query).get("root")
    if root:
        return Connection(StatePaths.from_root(Path(root[0])), uri)
    return Connection(StatePaths.default(), uri)
