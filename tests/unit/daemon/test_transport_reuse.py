"""The HTTP client keeps its connection between requests; when the daemon has closed the idle
kept-alive connection (its keep-alive timeout), the next request goes out once more on a new
one instead of failing with a broken pipe."""

from __future__ import annotations

import socket

import pytest

from pyvirt.client.transport import Client
from pyvirt.client.uri import resolve
from pyvirt.errors import OperationFailedError
from tests.unit.daemon.conftest import Served


def test_a_closed_idle_connection_is_reopened_once(served: Served) -> None:
    client = Client.for_target(resolve(served.uri))
    try:
        assert client.request("GET", "/health").status == 200
        sock = client.connection.sock
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)  # as if the daemon had dropped it
        assert client.request("GET", "/health").status == 200
    finally:
        client.close()


def test_a_fresh_connection_that_fails_is_an_error(served: Served) -> None:
    client = Client.for_target(resolve(f"pyvirt+unix://{served.root}/nonexistent.sock"))
    with pytest.raises(OperationFailedError, match="cannot reach pyvirtd"):
        client.request("GET", "/health")


class _TLSDroppedOnce:
    """An HTTPS connection whose kept-alive socket the daemon closed: the first request on it
    raises what TLS raises then (``SSLEOFError``), the next (on a new socket) is answered."""

    def __init__(self, served: Served) -> None:
        from pyvirt.client.transport import UnixHTTPConnection

        self.real = UnixHTTPConnection(served.sock)
        self.dropped = False

    def request(self, *args: object, **kw: object) -> None:
        import ssl

        if not self.dropped:
            self.dropped = True
            raise ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
        self.real.request(*args, **kw)  # type: ignore[arg-type]

    def getresponse(self) -> object:
        return self.real.getresponse()

    def close(self) -> None:
        self.real.close()


def test_a_tls_connection_closed_while_idle_is_reopened_once(served: Served) -> None:
    client = Client.for_target(resolve(served.uri))
    try:
        client.request("GET", "/health")
        client._conn = _TLSDroppedOnce(served)  # type: ignore[assignment]
        assert client.request("GET", "/health").status == 200
    finally:
        client.close()
