"""pyvirt's public Python API: the one layer the CLI, the daemon, the web console and Python
programs share.

>>> import pyvirt.api
>>> conn = pyvirt.api.open()              # embedded (no daemon); ``uri`` as for ``pyvirt -c``
>>> dom = conn.domains.get("web1")        # by name or UUID
>>> dom.start()

Collections (``conn.domains``, ``conn.networks``, ``conn.pools``, ``conn.nodedevs``) have
``list()``, ``get(name_or_uuid)``, ``define(xml)`` and ``create(xml)`` where they apply; handles
(:class:`~pyvirt.api.domains.Domain`, :class:`~pyvirt.api.networks.Network`,
:class:`~pyvirt.api.pools.Pool`, :class:`~pyvirt.api.pools.Volume`) carry the verbs, named
after virsh's verbs in snake_case. Results are typed values with a ``to_json()`` form.
Errors are :mod:`pyvirt.errors`. Importing this package is cheap: every collection loads its
implementation when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.api.connection import Connection

if TYPE_CHECKING:
    from pyvirt.api.remote.connection import RemoteConnection
    from pyvirt.service.domain.migrate import Policy as MigrationPolicy
    from pyvirt.service.domain.migrate_storage import DiskCopy as MigrationDisk
    from pyvirt.service.domain.migrate_storage import StorageCopy as MigrationStorage
    from pyvirt.service.domain.migrate_tls import TlsClient as MigrationTls

__all__ = [
    "Connection",
    "MigrationDisk",
    "MigrationPolicy",
    "MigrationStorage",
    "MigrationTls",
    "RemoteConnection",
    "open",
    "open_embedded",
]

# lazy: ``open`` loads the embedded service or the remote client only for its kind of URI. It
# lives here, not in pyvirt.api.connection, because the remote classes subclass Connection.


def open(uri: str | None = None) -> Connection:
    """Open a connection (``None``: ``$PYVIRT_DEFAULT_URI``, then the local pyvirtd if one
    answers, else embedded). The URIs are listed in :mod:`pyvirt.client.uri`.

    :raises InvalidConfigError: for a URI pyvirt does not know
    """
    from pyvirt.client.uri import resolve  # lazy: socket and URI code, not for open_embedded

    target = resolve(uri)
    if target.remote:
        from pyvirt.api.remote import open_remote  # lazy

        return open_remote(target)
    from pyvirt.service.connection import open_connection  # lazy

    return Connection(open_connection(target.uri))


def open_embedded() -> Connection:
    """The in-process connection to this host's default state directory (``pyvirt:///embed``)
    without looking for a daemon: for a caller that knows none is configured (the CLI's
    embedded fast path, :mod:`pyvirt.cli.embedded`)."""
    from pyvirt.service.connection import open_connection  # lazy

    return Connection(open_connection("pyvirt:///embed"))


def __getattr__(name: str) -> object:
    if name == "RemoteConnection":
        from pyvirt.api.remote.connection import RemoteConnection  # lazy

        return RemoteConnection
    if name == "MigrationPolicy":
        from pyvirt.service.domain.migrate import Policy  # lazy

        return Policy
    if name in ("MigrationDisk", "MigrationStorage"):
        from pyvirt.service.domain import migrate_storage  # lazy

        return migrate_storage.DiskCopy if name == "MigrationDisk" else migrate_storage.StorageCopy
    if name == "MigrationTls":
        from pyvirt.service.domain.migrate_tls import TlsClient  # lazy

        return TlsClient
    raise AttributeError(f"module 'pyvirt.api' has no attribute {name!r}")
