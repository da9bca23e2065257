"""The host through a pyvirtd: :class:`RemoteHost` (``version``, ``capabilities``,
``nodeinfo``, ``freecell``, ``nodememstats``), the same results as :mod:`pyvirt.api.host`.

Everything else of :class:`~pyvirt.api.host.Host` (tuning, images, benchmarks) uses
``service`` (a daemon on this host) or raises :class:`~pyvirt.errors.UnsupportedError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.api.host import CellMemory, Host, NodeInfo, Versions
from pyvirt.api.remote._resources import local_service, path, query
from pyvirt.host.memory import MemStats

if TYPE_CHECKING:
    from pyvirt.client.transport import Client
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.host.facts import HostManager

__all__ = ["RemoteHost"]


class RemoteHost(Host):
    """``conn.host`` of a remote connection."""

    def __init__(self, client: Client, service: ServiceConnection | None = None) -> None:
        super().__init__(service)  # type: ignore[arg-type]
        self._client = client
        self._local = service

    @property
    def _mgr(self) -> HostManager:
        return local_service(self._local, "this host verb").host

    def versions(self) -> Versions:
        """``version`` of the daemon's host."""
        return Versions(**self._client.json("GET", path("host", "version")))

    def capabilities(self) -> str:
        """``capabilities`` XML of the daemon's host."""
        return self._client.request("GET", path("host", "capabilities")).text()

    def nodeinfo(self) -> NodeInfo:
        """``nodeinfo`` of the daemon's host."""
        return NodeInfo(**self._client.json("GET", path("host", "nodeinfo")))

    def freecell(self, cell: int | None = None) -> list[CellMemory]:
        """``freecell`` of the daemon's host."""
        rows = self._client.json("GET", query(path("host", "freecell"), cell=cell))
        return [CellMemory(**row) for row in rows]

    def memstats(self, cell: int | None = None) -> MemStats:
        """``nodememstats`` of the daemon's host."""
        return MemStats(**self._client.json("GET", query(path("host", "memstats"), cell=cell)))
