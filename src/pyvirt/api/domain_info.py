"""What ``dominfo`` shows (:meth:`pyvirt.api.domain.Domain.info`), apart from the handle so
that other domain commands do not pay for creating it; :mod:`pyvirt.api.domain` re-exports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyvirt.service.domain.types import DomainStatus

__all__ = ["DomainInfo"]


@dataclass(frozen=True)
class DomainInfo:
    """What ``dominfo`` shows: the status plus a summary of the definition."""

    status: DomainStatus
    os_type: str
    vcpus: int
    #: CPU seconds used by QEMU so far (None when shut off)
    cpu_time: float | None
    max_memory_kib: int
    used_memory_kib: int
    title: str | None
    #: whether a managed save image waits for ``start``
    managed_save: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: the status fields, then the definition's."""
        return {
            **self.status.to_json(),
            "os_type": self.os_type,
            "vcpus": self.vcpus,
            "cpu_time": self.cpu_time,
            "max_memory_kib": self.max_memory_kib,
            "used_memory_kib": self.used_memory_kib,
            "title": self.title,
            "managed_save": self.managed_save,
        }
