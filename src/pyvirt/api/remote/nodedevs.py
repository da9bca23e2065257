"""Host devices through a pyvirtd: :class:`RemoteNodeDeviceCollection` and
:class:`RemoteNodeDevice` (``nodedev-list``, ``nodedev-dumpxml``).

The daemon sends each device's ``to_json()`` form; :class:`RemoteNodeDeviceInfo` carries it
so ``to_json()`` gives back exactly what the daemon's host reported (the sysfs details behind
it stay on that host). ``tree()`` uses ``service`` (a daemon on this host) or raises
:class:`~pyvirt.errors.UnsupportedError`.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyvirt.api.nodedevs import NodeDevice, NodeDeviceCollection, NodeDeviceInfo
from pyvirt.api.remote._resources import local_service, path, query

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.host.nodedev import NodeDeviceManager

__all__ = ["RemoteNodeDevice", "RemoteNodeDeviceCollection", "RemoteNodeDeviceInfo"]


@dataclass
class RemoteNodeDeviceInfo(NodeDeviceInfo):
    """A node device as a remote daemon described it."""

    wire: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> RemoteNodeDeviceInfo:
        """Rebuild from the daemon's JSON."""
        return cls(str(doc["name"]), doc.get("parent"), tuple(doc.get("caps") or ()), wire=doc)

    def to_json(self) -> dict[str, object]:
        """The daemon's JSON, unchanged."""
        return dict(self.wire)


class RemoteNodeDeviceCollection(NodeDeviceCollection):
    """``conn.nodedevs`` of a remote connection."""

    def __init__(self, client: Client, service: ServiceConnection | None = None) -> None:
        super().__init__(service)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _mgr(self) -> NodeDeviceManager:
        return local_service(self._local, "this node device verb").nodedevs

    def list(self, caps: Sequence[str] = ()) -> builtins.list[NodeDeviceInfo]:
        """``nodedev-list`` (see :meth:`NodeDeviceCollection.list`)."""
        rows = self._client.json("GET", query(path("nodedevs"), cap=list(caps) or None))
        return [RemoteNodeDeviceInfo.from_json(row) for row in rows]

    def get(self, name: str) -> RemoteNodeDevice:
        """One device by name.

        :raises NotFoundError: no such device
        """
        info = RemoteNodeDeviceInfo.from_json(self._client.json("GET", path("nodedevs", name)))
        return RemoteNodeDevice(self._client, self._local, info)


class RemoteNodeDevice(NodeDevice):
    """One host device of a remote connection."""

    def __init__(
        self, client: Client, service: ServiceConnection | None, info: NodeDeviceInfo
    ) -> None:
        super().__init__(service, info)  # type: ignore[arg-type]
        self._client = client

    def xml_desc(self) -> str:
        """``nodedev-dumpxml``."""
        return self._client.request("GET", path("nodedevs", self.name, "xml")).text()
