"""Console streams of a domain, for relays such as pyvirtd's web console.

:meth:`DomainConsoles.open_console` returns a connected socket carrying the console's own
protocol: RFB (VNC) for ``vnc``, the serial line's bytes for ``serial``. The caller owns the
socket and closes it. The VNC stream needs no listener (QEMU is handed the socket over QMP),
so it works for any ``<graphics type='vnc'>`` and exposes no port; the display's password
is not asked (whoever may call this may read it with ``xml_desc(security_info=True)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    import socket

__all__ = ["CONSOLE_KINDS", "DomainConsoles"]

# lazy: function-local imports marked ``# lazy``: the console code (QMP) loads only for these
# verbs, not with every domain command.

#: what :meth:`DomainConsoles.open_console` opens
CONSOLE_KINDS = ("vnc", "serial")


class DomainConsoles(DomainHandle):
    """Console streams of :class:`~pyvirt.api.domains.Domain`."""

    def open_console(self, kind: str) -> socket.socket:
        """A socket connected to the running domain's ``vnc`` display or ``serial`` console.

        :raises InvalidStateError: it is not running, or has no such console
        :raises InvalidConfigError: an unknown ``kind``
        :raises MonitorError: QEMU refused the VNC client
        """
        from pyvirt.service.domain import consoles  # lazy

        return consoles.open_stream(self._domains, self._name, kind)

    def check_console(self, kind: str) -> None:
        """Check that :meth:`open_console` can open ``kind`` now (the domain runs and has
        that console); opens nothing.

        :raises InvalidStateError: it is not running, or has no such console
        :raises InvalidConfigError: an unknown ``kind``
        """
        from pyvirt.service.domain import consoles  # lazy

        consoles.check(self._domains, self._name, kind)
