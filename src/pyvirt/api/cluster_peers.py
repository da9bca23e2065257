"""Connections from one cluster host's pyvirtd to another's, at the address the other
published (:mod:`pyvirt.service.cluster.peers` describes the trust between them).

A ``pyvirt+tls://`` address is called with this host's peer credential and the other host's
published certificate fingerprint pinned; any other address (``pyvirt+unix://`` of a host on
the same machine, ``pyvirt+ssh://``) is opened as it is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.service.cluster.records import HostRecord
    from pyvirt.service.connection import Connection as ServiceConnection

__all__ = ["PeerCheck", "open_peer", "peer_verifier"]

# lazy: the cluster and client code load only when a daemon calls another one


class PeerCheck(Protocol):
    """What :func:`peer_verifier` returns."""

    def verify(self, token: str) -> tuple[str | None, str]:
        """(the calling host, '') for a valid peer credential, else (None, why not)."""
        ...


def open_peer(service: ServiceConnection, here: str, record: HostRecord) -> Connection:
    """A connection to cluster host *record*'s pyvirtd, from host *here*.

    :raises UnsupportedError: the host published no address
    :raises InvalidStateError: this host has no peer secret
    """
    import pyvirt.api  # lazy
    from pyvirt.client.uri import resolve  # lazy

    if not record.address:
        raise UnsupportedError(
            f"cluster host {record.name!r} published no address for its pyvirtd",
            hint="join it with --address URI (its pyvirt+tls:// or pyvirt+unix:// URI)",
        )
    if resolve(record.address).kind != "tls":
        return pyvirt.api.open(record.address)
    from pyvirt.service.cluster.peers import credential  # lazy

    address = record.address
    if record.tls_fingerprint:  # pinned: the URI's parameter comes before client.toml's
        address += ("&" if "?" in address else "?") + f"fingerprint={record.tls_fingerprint}"
    conn = pyvirt.api.open(address)
    client = getattr(conn, "client", None)  # a RemoteConnection's (nothing sent yet)
    if client is not None:
        client.headers["Authorization"] = f"Bearer {credential(service.paths, here)}"
    return conn


def peer_verifier(service: ServiceConnection) -> PeerCheck:
    """pyvirtd's checker of the peer credentials (``pyvirt-peer:HOST:SECRET`` bearer tokens)
    other hosts present."""
    from pyvirt.service.cluster.peers import PeerVerifier  # lazy

    return PeerVerifier(service.paths)
