"""Public API: networks (to be filled in)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection


class NetworkCollection:
    """Placeholder."""

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service
