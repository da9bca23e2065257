"""Virtual networks through a pyvirtd: :class:`RemoteNetworkCollection` and
:class:`RemoteNetwork`, the same verbs and results as :mod:`pyvirt.api.networks`.

Verbs the REST API does not carry (``update``) use ``service`` (the embedded implementation,
for a daemon on this host) or raise :class:`~pyvirt.errors.UnsupportedError`.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from pyvirt.api.networks import DhcpLease, Network, NetworkCollection, NetworkInfo
from pyvirt.api.remote._resources import local_service, path, post_xml, precondition, query
from pyvirt.errors import InvalidStateError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.network.networks import NetworkManager

__all__ = ["RemoteNetwork", "RemoteNetworkCollection"]


class RemoteNetworkCollection(NetworkCollection):
    """``conn.networks`` of a remote connection."""

    def __init__(self, client: Client, service: ServiceConnection | None = None) -> None:
        super().__init__(service)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _mgr(self) -> NetworkManager:
        return local_service(self._local, "this network verb").networks

    def list(self, *, active: bool | None = None) -> builtins.list[NetworkInfo]:
        """``net-list`` (see :meth:`NetworkCollection.list`)."""
        rows = self._client.json("GET", query(path("networks"), active=active))
        return [NetworkInfo(**row) for row in rows]

    def get(self, name_or_uuid: str) -> RemoteNetwork:
        """The network known by name or UUID.

        :raises NotFoundError: no such network
        """
        info = self._client.json("GET", path("networks", name_or_uuid))
        return RemoteNetwork(self._client, self._local, info["name"])

    def define(self, xml: str | bytes) -> tuple[RemoteNetwork, builtins.list[str]]:
        """``net-define`` (see :meth:`NetworkCollection.define`)."""
        made = post_xml(self._client, path("networks"), xml)
        return RemoteNetwork(self._client, self._local, made["name"]), list(made["warnings"])

    def create(self, xml: str | bytes) -> RemoteNetwork:
        """``net-create`` (see :meth:`NetworkCollection.create`)."""
        made = post_xml(self._client, query(path("networks"), create=True), xml)
        return RemoteNetwork(self._client, self._local, made["name"])


class RemoteNetwork(Network):
    """One virtual network of a remote connection."""

    def __init__(self, client: Client, service: ServiceConnection | None, name: str) -> None:
        super().__init__(service, name)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _mgr(self) -> NetworkManager:
        return local_service(self._local, "this network verb").networks

    def _url(self, *rest: str) -> str:
        return path("networks", self._name, *rest)

    def info(self) -> NetworkInfo:
        """``net-info``."""
        return NetworkInfo(**self._client.json("GET", self._url()))

    def xml_desc(self, *, inactive: bool = False) -> str:
        """``net-dumpxml``."""
        return self._client.request("GET", query(self._url("xml"), inactive=inactive)).text()

    def revision(self) -> str:
        """The persistent definition's revision (the daemon's ``ETag``).

        :raises InvalidStateError: the network is transient
        """
        tag = self._client.request("GET", self._url("xml"), headers={}).headers.get("etag")
        if not tag:
            raise InvalidStateError(f"network '{self._name}' is transient")
        return tag.strip('"')

    def redefine(self, xml: str | bytes, *, expect_revision: str | None = None) -> list[str]:
        """Replace the definition (``If-Match`` with ``expect_revision``)."""
        headers = {"If-Match": f'"{expect_revision}"'} if expect_revision else {}
        body = xml.encode() if isinstance(xml, str) else xml
        try:
            resp = self._client.request(
                "PUT", self._url("xml"), body=body, content_type="application/xml",
                headers=headers,
            )  # fmt: skip
        except PyvirtError as err:
            raise precondition(err) from None
        return list(resp.json()["warnings"])

    def start(self) -> None:
        """``net-start``."""
        self._client.json("POST", self._url("start"))

    def destroy(self) -> None:
        """``net-destroy``."""
        self._client.request("POST", self._url("destroy"))

    def undefine(self) -> None:
        """``net-undefine``."""
        self._client.request("DELETE", self._url())

    def set_autostart(self, enabled: bool) -> None:
        """``net-autostart [--disable]``."""
        self._client.json("PUT", self._url("autostart"), {"enabled": enabled})

    def dhcp_leases(self, *, mac: str | None = None) -> list[DhcpLease]:
        """``net-dhcp-leases``."""
        rows = self._client.json("GET", query(self._url("leases"), mac=mac))
        return [DhcpLease(**row) for row in rows]
