"""The state every domain handle holds: its connection's service objects and its name.

:class:`~pyvirt.api.domains.Domain` is assembled from mixins (lifecycle and inspection in
:mod:`pyvirt.api.domains`, tuning in :mod:`pyvirt.api.domain_tuning`, devices in
:mod:`pyvirt.api.domain_devices`, the guest agent in :mod:`pyvirt.api.domain_agent`); each
builds on :class:`DomainHandle`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.domain.manager import DomainManager


class DomainHandle:
    """A reference to one domain by name. Cheap: it holds no lock and no open monitor.

    The name is resolved once, when the handle is made (``conn.domains.get(...)``); every verb
    looks the domain up again, so a handle to a domain that went away raises
    :class:`~pyvirt.errors.NotFoundError`.
    """

    def __init__(self, service: ServiceConnection, name: str) -> None:
        self._service = service
        self._name = name

    @property
    def name(self) -> str:
        """The domain's name."""
        return self._name

    @property
    def _domains(self) -> DomainManager:
        return self._service.domains

    def __repr__(self) -> str:
        return f"<Domain {self._name!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DomainHandle) and (other._name, other._service.paths) == (
            self._name,
            self._service.paths,
        )

    def __hash__(self) -> int:
        return hash(self._name)
