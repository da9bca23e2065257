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

from pyvirt.api.connection import Connection, open

__all__ = ["Connection", "open"]
