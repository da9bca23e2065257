"""Console streams of a running domain for relays (pyvirtd's web console): a connected socket
to its VNC server or to its serial console.

VNC: QEMU is handed one end of a fresh ``socketpair`` over QMP (``getfd`` with
``SCM_RIGHTS``, then ``add_client protocol=vnc``) and serves it as a VNC client; the other
end is returned. No listener is involved: this works whatever the ``<graphics>`` listen
(TCP, loopback, a unix socket) and exposes no port. The display's password is skipped
(``skipauth``): the caller authenticated the user already.

Serial: the serial console's pseudo-terminal (``<serial type='pty'>`` is ``-chardev pty``,
as libvirt makes it; :mod:`pyvirt.service.domain.ptys` reads the ``/dev/pts/N`` back after the
start), bridged to a socket by :func:`pyvirt.drivers.qemu.console.open_stream`. One session
at a time, as virsh: a second one is refused unless forced, which ends the first. A domain
started by an older pyvirt still has a unix socket (``RUN_DIR/serial0.sock``), used as is.
"""

from __future__ import annotations

import secrets
import socket
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, InvalidStateError

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager

__all__ = ["KINDS", "check", "open_serial", "open_stream", "open_vnc"]

# lazy: function-local imports marked ``# lazy``: QMP loads only when a VNC stream opens.

#: the console kinds a stream can be opened to
KINDS = ("vnc", "serial")


def check(mgr: DomainManager, ident: str, kind: str) -> str:
    """The domain's name if a ``kind`` stream can be opened now (nothing is opened).

    :raises InvalidStateError: it is not running or has no such console
    :raises InvalidConfigError: an unknown kind
    """
    name, rec = mgr.running(ident)
    if kind == "vnc":
        if not any(g.type == "vnc" for g in mgr.definition(name).devices.graphics):
            raise InvalidStateError(
                f"domain '{name}' has no VNC display",
                hint="add <graphics type='vnc'/> to its definition and restart it",
            )
    elif kind == "serial":
        if not rec.serial_sockets and not rec.ptys:
            raise InvalidStateError(
                f"domain '{name}' has no serial console",
                hint="add <serial type='pty'/> (or <console type='pty'/>) to its definition",
            )
    else:
        raise InvalidConfigError(f"unknown console kind '{kind}'", hint="use vnc or serial")
    return name


def open_vnc(mgr: DomainManager, ident: str) -> socket.socket:
    """A socket connected to the running domain's VNC server (RFB from its first byte).

    :raises InvalidStateError: it is not running or has no VNC display
    :raises MonitorError: QEMU refused the client
    """
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    name = check(mgr, ident, "vnc")
    _, rec = mgr.running(name)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fdname = f"pyvirt-vnc-{secrets.token_hex(6)}"
    try:
        with Monitor(rec.qmp_socket, name=name) as mon:
            mon.getfd(theirs.fileno(), fdname)
            mon.add_client("vnc", fdname, skipauth=True)
    except BaseException:
        ours.close()
        raise
    finally:
        theirs.close()  # QEMU holds its own copy now
    return ours


def open_serial(mgr: DomainManager, ident: str, *, force: bool = False) -> socket.socket:
    """A socket connected to the running domain's first serial console.

    :param force: take the console over from the session holding it (which ends)
    :raises InvalidStateError: it is not running or has no serial console
    :raises OperationFailedError: the console cannot be opened, or is in use (not ``force``)
    """
    from pyvirt.drivers.qemu import console  # lazy
    from pyvirt.service.domain.lifecycle import console_socket  # lazy

    name, path = console_socket(mgr, ident)
    return console.open_stream(path, name=name, force=force, mark_dir=mgr.rundir(name).path)


def open_stream(mgr: DomainManager, ident: str, kind: str, *, force: bool = False) -> socket.socket:
    """:func:`open_vnc` or :func:`open_serial` by ``kind`` (``vnc`` or ``serial``).

    :raises InvalidConfigError: another kind
    """
    if kind == "vnc":
        return open_vnc(mgr, ident)
    if kind == "serial":
        return open_serial(mgr, ident, force=force)
    raise InvalidConfigError(f"unknown console kind '{kind}'", hint="use vnc or serial")
