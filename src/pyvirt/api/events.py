"""Events of a pyvirtd: what happened to domains, networks, pools and jobs, as it happens.

>>> import pyvirt.api.events as events
>>> with events.watch(kinds=["lifecycle"], domain="web1", timeout=60) as stream:
...     for ev in stream:
...         print(ev.kind, ev.name, ev.event, ev.detail)   # lifecycle web1 Started Booted

Events need a daemon: the embedded mode has nobody to watch the guests between two commands,
so :func:`watch` on an embedded connection raises :class:`~pyvirt.errors.UnsupportedError`.
``event`` and ``detail`` use virsh's words (``Started``/``Booted``, ``Stopped``/``Destroyed``,
``Defined``/``Updated``); device events carry the device's alias as ``event``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from pyvirt.api.event_values import KINDS, Event, check_kinds
from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.api.remote.events import EventStream

__all__ = ["KINDS", "Event", "check_kinds", "watch"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: URI resolution and the
# HTTP client load only when a stream is opened.


def watch(
    uri: str | None = None,
    *,
    kinds: Iterable[str] | None = None,
    domain: str | None = None,
    network: str | None = None,
    pool: str | None = None,
    timeout: float | None = None,
) -> EventStream:
    """The event stream of the pyvirtd ``uri`` names (``None``: as :func:`pyvirt.api.open`).

    :param kinds: only these kinds (``None``: all)
    :param domain: only the events of this domain (likewise ``network``, ``pool``)
    :param timeout: the stream ends after this many seconds (``None``: never)
    :raises UnsupportedError: the connection is embedded (no daemon)
    :raises InvalidConfigError: an unknown kind or URI
    """
    from pyvirt.client.uri import resolve  # lazy

    wanted = check_kinds(kinds) if kinds is not None else None
    target = resolve(uri)
    if not target.remote:
        given = uri or os.environ.get("PYVIRT_DEFAULT_URI") or os.environ.get("LIBVIRT_DEFAULT_URI")
        why = (
            f"the connection '{given}' is embedded"
            if given
            else "this connection is embedded (no daemon runs for this state directory)"
        )
        raise UnsupportedError(
            f"events need pyvirtd, and {why}",
            hint="start pyvirtd (with the same PYVIRT_STATE_DIR), or connect to one with -c URI",
        )
    from pyvirt.api.remote.events import stream  # lazy

    return stream(target, kinds=wanted, domain=domain, network=network, pool=pool, timeout=timeout)
