"""Guest agent verbs of a domain (virsh's ``guestinfo``, ``domfsinfo``,
``set-user-password``, ``domfsfreeze``/``domfsthaw``, ``domtime``, ``qemu-agent-command``).

They need ``qemu-guest-agent`` running in the guest and a ``<channel type='unix'><target
type='virtio' name='org.qemu.guest_agent.0'/></channel>`` in the domain. Every verb takes a
``timeout`` in seconds for the agent's answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_base import DomainHandle

if TYPE_CHECKING:
    from pyvirt.service.domain.agent import FsInfo

__all__ = ["AGENT_TIMEOUT", "DomainAgent", "FsInfo"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the guest-agent code
# (QEMU agent client, QMP) loads only for agent verbs (~8 ms otherwise paid by every domain
# command).

#: seconds allowed for an agent command unless the caller says otherwise
AGENT_TIMEOUT = 10.0


def __getattr__(name: str) -> Any:
    """Re-export :class:`FsInfo` without importing the agent code at start-up."""
    if name == "FsInfo":
        from pyvirt.service.domain.agent import FsInfo  # lazy

        return FsInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DomainAgent(DomainHandle):
    """Guest agent verbs of :class:`~pyvirt.api.domains.Domain`.

    :raises InvalidStateError: (every verb) the domain is not running
    :raises UnsupportedError: (every verb) the domain has no guest agent channel
    :raises OperationFailedError: (every verb) the agent did not answer in time
    """

    def guest_info(
        self, groups: Sequence[str] = (), *, timeout: float = AGENT_TIMEOUT
    ) -> list[tuple[str, str]]:
        """Key/value pairs about the guest (``guestinfo``), group by group.

        :param groups: some of ``user``, ``os``, ``timezone``, ``hostname``, ``filesystem``
            (empty: all)
        """
        from pyvirt.service.domain import agent  # lazy

        return agent.guest_info(self._domains, self._name, list(groups), timeout=timeout)

    def fs_info(self, *, timeout: float = AGENT_TIMEOUT) -> list[FsInfo]:
        """The guest's mounted filesystems and the domain disks they are on (``domfsinfo``)."""
        from pyvirt.service.domain import agent  # lazy

        return agent.fs_info(self._domains, self._name, timeout=timeout)

    def set_user_password(
        self, user: str, password: str, *, encrypted: bool = False, timeout: float = AGENT_TIMEOUT
    ) -> None:
        """Set a guest user's password.

        :param encrypted: ``password`` is already a crypt(3) hash
        """
        from pyvirt.service.domain import agent  # lazy

        agent.set_user_password(
            self._domains, self._name, user, password, encrypted=encrypted, timeout=timeout
        )

    def fs_freeze(self, mountpoints: Sequence[str] = (), *, timeout: float = AGENT_TIMEOUT) -> int:
        """Freeze the guest's filesystems (all, or ``mountpoints``); returns how many."""
        from pyvirt.service.domain import agent  # lazy

        return agent.fs_freeze(self._domains, self._name, list(mountpoints), timeout=timeout)

    def fs_thaw(self, *, timeout: float = AGENT_TIMEOUT) -> int:
        """Thaw the guest's frozen filesystems; returns how many."""
        from pyvirt.service.domain import agent  # lazy

        return agent.fs_thaw(self._domains, self._name, timeout=timeout)

    def guest_time(self, *, timeout: float = AGENT_TIMEOUT) -> int:
        """The guest's clock in nanoseconds since the epoch (``domtime``)."""
        from pyvirt.service.domain import agent  # lazy

        return agent.get_time(self._domains, self._name, timeout=timeout)

    def set_guest_time(self, nanoseconds: int | None, *, timeout: float = AGENT_TIMEOUT) -> None:
        """Set the guest's clock (None: from its RTC, ``domtime --sync``)."""
        from pyvirt.service.domain import agent  # lazy

        agent.set_time(self._domains, self._name, nanoseconds, timeout=timeout)

    def agent_command(self, command: object, *, timeout: float = AGENT_TIMEOUT) -> object:
        """Send one raw agent command, decoded JSON such as ``{"execute": "guest-info"}``
        (``qemu-agent-command``); returns its ``return`` value as decoded JSON.

        :raises InvalidConfigError: ``command`` is not a mapping with an ``execute`` string
        """
        from pyvirt.service.domain import agent  # lazy

        result: object = agent.command(self._domains, self._name, command, timeout=timeout)
        return result
