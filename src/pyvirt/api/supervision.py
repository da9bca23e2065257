"""Supervision of running domains, for pyvirtd: what its supervisor needs from the layers below.

pyvirtd watches every running QEMU of its state directory in its own event loop, instead of
one reaper process per domain (:mod:`pyvirt.service.domain.supervise` does the work):

>>> supervision.claim(conn)                         # starts spawn no reaper any more
>>> supervision.on_started(conn, schedule_attach)   # told of starts in this process
>>> w = supervision.DomainWatch(conn, "web1", publish)
>>> if w.attach():                                  # blocking: in a worker thread
...     await w.watch()                             # until QEMU is gone
...     event = w.finish()                          # blocking: the stop work; Stopped event
>>> supervision.release(conn)                       # on the way out; then w.hand_back()

Only embedded connections can be supervised (the daemon's own).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from pyvirt.api.connection import Connection
from pyvirt.client.uri import resolve
from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.service.connection import open_connection
from pyvirt.service.domain import supervise
from pyvirt.service.domain.manager import DomainManager
from pyvirt.service.domain.supervise import DomainEvent

__all__ = [
    "DomainEvent",
    "DomainWatch",
    "claim",
    "on_started",
    "release",
    "running_names",
    "supervised",
]


@functools.cache
def _manager(uri: str) -> DomainManager:
    try:
        target = resolve(uri)
    except InvalidConfigError:
        target = None
    if target is None or target.remote:
        raise UnsupportedError(
            f"connection '{uri}' cannot be supervised",
            hint="supervision runs in pyvirtd on its embedded connection",
        )
    return open_connection(target.uri).domains


def _domains(conn: Connection) -> DomainManager:
    """The domain manager of embedded connection ``conn`` (the same state directory)."""
    return _manager(conn.uri)


def claim(conn: Connection) -> None:
    """Make this process the supervisor of the connection's domains: from now on starts
    spawn no reaper and commands respawn none."""
    supervise.claim(_domains(conn).paths)


def release(conn: Connection) -> None:
    """Give up the claim (starts spawn reapers again)."""
    supervise.release(_domains(conn).paths)


def supervised(conn: Connection) -> bool:
    """Whether a live supervisor (a pyvirtd) watches the connection's domains."""
    return supervise.supervisor_alive(_domains(conn).paths)


def running_names(conn: Connection) -> list[str]:
    """Names of the domains with a run directory (running, or gone and not cleaned up)."""
    return _domains(conn).running_names()


def on_started(conn: Connection, listener: Callable[[str], None]) -> Callable[[], None]:
    """Call ``listener(name)`` (in the starting thread) whenever this process starts a
    domain of ``conn``; returns the function that removes the listener."""
    _domains(conn)
    supervise.add_start_listener(listener)
    return lambda: supervise.remove_start_listener(listener)


class DomainWatch:
    """The supervision of one domain (see the module docstring).

    :param on_event: called in the event loop with each :class:`DomainEvent` while watching
        (the final ``Stopped`` event is returned by :meth:`finish` or left in
        :attr:`stopped` by :meth:`attach`)
    """

    def __init__(
        self, conn: Connection, name: str, on_event: Callable[[DomainEvent], None]
    ) -> None:
        self._sup = supervise.DomainSupervision(_domains(conn), name, on_event)

    @property
    def name(self) -> str:
        """The domain's name."""
        return self._sup.name

    @property
    def paused(self) -> bool:
        """Whether the domain was paused when attached."""
        return self._sup.paused

    @property
    def started(self) -> DomainEvent:
        """The ``Started`` event of the domain attached to: ``Booted``, or ``Migrated`` /
        ``Restored`` for a QEMU started to take in a migration or a saved state."""
        detail = {"migration": "Migrated", "restore": "Restored"}.get(self._sup.incoming or "")
        return DomainEvent("lifecycle", "Started", detail or "Booted")

    @property
    def incoming(self) -> str | None:
        """What the domain's QEMU was started to take in (``migration``, ``restore``)."""
        return self._sup.incoming

    @property
    def stopped(self) -> DomainEvent | None:
        """The ``Stopped`` event once the domain is known to have stopped."""
        return self._sup.stopped

    def attach(self) -> bool:
        """Take the domain over (blocking: call it in a worker thread). False when there is
        nothing to watch: not running, or its QEMU is gone, whose stop work is then done now
        (:attr:`stopped` says how it ended).

        :raises PyvirtError: the domain's runtime record cannot be read
        """
        return self._sup.attach()

    async def watch(self) -> None:
        """Follow QEMU until it is gone (cancel to stop watching: QEMU runs on)."""
        await self._sup.watch()

    def finish(self) -> DomainEvent:
        """The stop work once :meth:`watch` returned (blocking); the ``Stopped`` event."""
        return self._sup.finish()

    def hand_back(self) -> None:
        """Give the domain to a reaper process (blocking; after :func:`release`)."""
        self._sup.hand_back()
