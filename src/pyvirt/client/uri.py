"""Connection URIs: which host a ``pyvirt``/``pyvirt.api.open`` talks to, and how.

==================================  ==========================================================
``pyvirt:///embed[?root=DIR]``      in-process, no daemon (also ``qemu:///session``)
``pyvirt:///system``                the local pyvirtd of this state directory (must run)
(none) / ``qemu:///system``         the local pyvirtd if one answers, else embedded
``pyvirt+unix:///path/to.sock``     a pyvirtd on that unix socket
``pyvirt+tls://host[:port]/``       a pyvirtd's TLS listener (default port 16514)
``pyvirt+ssh://[user@]host[:port]/[path]``  a remote pyvirtd's unix socket through ssh
==================================  ==========================================================

``PYVIRT_DEFAULT_URI`` (then ``LIBVIRT_DEFAULT_URI``) applies when no URI is given.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from pyvirt.errors import InvalidConfigError
from pyvirt.state.paths import StatePaths

# lazy: function-local imports marked ``# lazy`` keep every CLI start fast: ``urllib.parse``
# (with ``re`` and ``enum``, ~5 ms) loads only when a URI is given; ``typing`` never at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Literal

    Kind = Literal["embed", "unix", "tls", "ssh"]

__all__ = ["TLS_PORT", "Target", "daemon_answers", "resolve"]

#: the TLS listener's default port (libvirt's, so firewalls set up for it fit)
TLS_PORT = 16514


class Target:
    """Where a connection goes: in-process (``embed``) or to a daemon over a transport.

    A plain class, not a dataclass: the CLI's fast path imports this module, and
    ``dataclasses`` costs more start-up time than a request to the daemon.
    """

    __slots__ = ("host", "kind", "params", "path", "port", "uri", "user")

    def __init__(
        self,
        kind: Kind,
        uri: str,
        path: Path | None = None,
        host: str = "",
        port: int | None = None,
        user: str = "",
        params: dict[str, str] | None = None,
    ) -> None:
        self.kind: Kind = kind
        self.uri = uri
        #: ``embed``: the state root (``None``: the default); ``unix``: the socket
        self.path = path
        self.host = host
        self.port = port
        self.user = user
        #: query parameters (``?ca=FILE&insecure=1``, ``?socket=PATH`` ...), first value each
        self.params: dict[str, str] = params if params is not None else {}

    def _key(self) -> tuple[object, ...]:
        return (self.kind, self.uri, self.path, self.host, self.port, self.user, self.params)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Target) and self._key() == other._key()

    def __repr__(self) -> str:
        return (
            f"Target(kind={self.kind!r}, uri={self.uri!r}, path={self.path!r}, "
            f"host={self.host!r}, port={self.port!r}, user={self.user!r}, params={self.params!r})"
        )

    @property
    def remote(self) -> bool:
        """True when requests go to a daemon (any kind but ``embed``)."""
        return self.kind != "embed"


def daemon_answers(sock: Path) -> bool:
    """True if a process accepts connections on the unix socket ``sock`` (no request sent)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.settimeout(1.0)
        s.connect(str(sock))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _local_paths(root: str | None) -> StatePaths:
    return StatePaths.from_root(Path(root)) if root else StatePaths.default()


def resolve(uri: str | None = None) -> Target:
    """The :class:`Target` of ``uri`` (``None``: the environment, then auto-detection).

    :raises InvalidConfigError: for a URI pyvirt does not know
    """
    uri = uri or os.environ.get("PYVIRT_DEFAULT_URI") or os.environ.get("LIBVIRT_DEFAULT_URI")
    if not uri:
        return _auto(None, "")
    from urllib.parse import parse_qs, urlsplit  # lazy

    parts = urlsplit(uri)
    params = {k: v[0] for k, v in parse_qs(parts.query).items() if v}
    scheme = parts.scheme
    if scheme in ("pyvirt", "qemu") and parts.netloc == "":
        base = f"{scheme}://{parts.path}"
        if base in ("pyvirt:///embed", "qemu:///session"):
            return Target("embed", uri, Path(params["root"]) if "root" in params else None)
        if base == "pyvirt:///system":
            sock = _local_paths(params.get("root")).daemon_socket
            return Target("unix", uri, sock, params=params)
        if base == "qemu:///system":
            return _auto(params.get("root"), uri)
    elif scheme == "pyvirt+unix" and parts.path:
        return Target("unix", uri, Path(parts.path), params=params)
    elif scheme == "pyvirt+tls" and parts.hostname:
        return Target("tls", uri, None, parts.hostname, parts.port or TLS_PORT, params=params)
    elif scheme == "pyvirt+ssh" and parts.hostname:
        path = Path(parts.path) if parts.path not in ("", "/") else None
        return Target("ssh", uri, path, parts.hostname, parts.port, parts.username or "", params)
    raise InvalidConfigError(
        f"connection URI '{uri}' is not supported",
        hint="use pyvirt:///embed, pyvirt:///system, pyvirt+unix:///SOCKET, "
        "pyvirt+tls://HOST[:PORT]/ or pyvirt+ssh://[USER@]HOST/",
    )


def _auto(root: str | None, uri: str) -> Target:
    """The local daemon if one answers on this state directory's socket, else embedded."""
    sock = _local_paths(root).daemon_socket
    if daemon_answers(sock):
        return Target("unix", uri or "pyvirt:///system", sock)
    return Target("embed", uri or "pyvirt:///embed", Path(root) if root else None)
