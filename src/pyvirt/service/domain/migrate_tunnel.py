"""The destination's end of a tunnelled migration (virsh ``migrate --p2p --tunnelled``).

A tunnelled migration opens no port for QEMU: the incoming QEMU listens on a unix socket in
its own scratch directory (:func:`pyvirt.service.domain.migrate.prepare` without a TCP
host), the source QEMU writes into a socket its pyvirtd holds (``fd:``), and the source
daemon streams the bytes to the destination daemon over that daemon's authenticated
channel (``POST /api/v1/migrations/incoming/{name}/tunnel``), which writes them into the
socket :func:`incoming_socket` names.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import NotFoundError

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager

__all__ = ["SOCKET", "incoming_socket"]

# lazy: function-local imports marked ``# lazy`` load the run directory's helpers only for a
# tunnelled migration.

#: the incoming QEMU's listening socket, in its scratch directory
SOCKET = "migrate-in.sock"


def incoming_socket(mgr: DomainManager, name: str) -> Path:
    """The unix socket the incoming QEMU of domain *name* listens on for its state.

    :raises NotFoundError: no incoming migration of *name* listening on a unix socket runs
        here (it was prepared for a TCP stream, or it ended)
    """
    from pyvirt.service.domain.dac import scratch_dir  # lazy

    name = mgr.resolve(name)
    rec = mgr.live_record(name, cleanup=True)
    path = scratch_dir(mgr, name) / SOCKET
    try:
        is_socket = rec is not None and stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        is_socket = False
    if not is_socket:
        raise NotFoundError(
            f"no incoming tunnelled migration of domain '{name}' waits here",
            hint="the source prepares it first ('migrate --p2p --tunnelled')",
        )
    return path
