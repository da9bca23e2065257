"""Typed QMP commands about migration: the machine state to and from a file descriptor.

Save and restore (:mod:`pyvirt.service.domain.save`) use migration to an fd: pyvirt opens
the state file itself and passes it to QEMU (``getfd`` with ``SCM_RIGHTS``), so a QEMU that
runs as another user needs no access to the file's directory, and no shell runs
(``exec:``). QEMU writes at (and reads from) the fd's current offset, after pyvirt's header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Commands


@dataclass(frozen=True)
class MigrationStatus:
    """``query-migrate``: where an outgoing or incoming migration is.

    :ivar status: ``none``, ``setup``, ``active``, ``device``, ``completed``, ``failed``,
        ``cancelling``, ``cancelled`` ... (QAPI's ``MigrationStatus``)
    :ivar transferred: RAM bytes sent so far
    :ivar total: guest RAM bytes
    :ivar remaining: RAM bytes still to send
    :ivar error: QEMU's reason when it failed
    :ivar socket_addresses: where an incoming migration listens (``socket-address``)
    """

    status: str
    transferred: int = 0
    total: int = 0
    remaining: int = 0
    error: str = ""
    socket_addresses: tuple[dict[str, str], ...] = ()

    @property
    def finished(self) -> bool:
        """Whether the migration ended (well or not)."""
        return self.status in ("completed", "failed", "cancelled")

    @classmethod
    def from_wire(cls, reply: Any) -> MigrationStatus:
        """Parse a ``query-migrate`` reply (members missing before the migration starts)."""
        data = reply if isinstance(reply, dict) else {}
        ram = data.get("ram") if isinstance(data.get("ram"), dict) else {}
        assert isinstance(ram, dict)
        return cls(
            status=str(data.get("status", "none")),
            transferred=int(ram.get("transferred", 0) or 0),
            total=int(ram.get("total", 0) or 0),
            remaining=int(ram.get("remaining", 0) or 0),
            error=str(data.get("error-desc", "")),
            socket_addresses=tuple(
                {str(k): str(v) for k, v in a.items()}
                for a in data.get("socket-address") or ()
                if isinstance(a, dict)
            ),
        )


class MigrationCommands(Commands):
    """``getfd``, ``migrate``, ``migrate-incoming``, ``query-migrate``, ``migrate_cancel``,
    the capabilities and parameters of a migration, ``migrate-start-postcopy``."""

    def getfd(self, fd: int, name: str) -> None:
        """Pass open *fd* to QEMU under *name* (``SCM_RIGHTS``), for ``fd:NAME`` URIs."""
        self._send_fd(fd)
        self._call("getfd", {"fdname": name})

    def closefd(self, name: str) -> None:
        """Close QEMU's copy of the fd passed as *name*."""
        self._call("closefd", {"fdname": name})

    def set_migration_parameters(
        self, *, max_bandwidth: int | None = None, downtime_limit_ms: int | None = None
    ) -> None:
        """Set the migration's bandwidth limit (bytes/s; QEMU's default of 128 MiB/s would
        slow a save to a local file down for nothing) and the longest pause it may end with
        (ms; a long one ends a save after the first pass over the guest's memory)."""
        self._call(
            "migrate-set-parameters",
            {"max-bandwidth": max_bandwidth, "downtime-limit": downtime_limit_ms},
        )

    def set_migration_parameters_raw(self, params: dict[str, Any]) -> None:
        """``migrate-set-parameters`` with QAPI's member names (``downtime-limit``,
        ``max-bandwidth``, ``multifd-channels``, ``cpu-throttle-initial``...)."""
        self._call("migrate-set-parameters", params)

    def query_migration_parameters(self) -> dict[str, Any]:
        """``query-migrate-parameters``: the current parameters by QAPI name."""
        reply = self._call("query-migrate-parameters")
        return dict(reply) if isinstance(reply, dict) else {}

    def set_migration_capabilities(self, caps: dict[str, bool]) -> None:
        """``migrate-set-capabilities`` (only while no migration runs)."""
        listed: Any = [{"capability": k, "state": v} for k, v in caps.items()]
        self._call("migrate-set-capabilities", {"capabilities": listed})

    def migrate_start_postcopy(self) -> None:
        """Switch the running migration to post-copy (needs the ``postcopy-ram``
        capability on both sides)."""
        self._call("migrate-start-postcopy")

    def query_migrate_raw(self) -> dict[str, Any]:
        """``query-migrate``'s whole reply (passes, downtime, dirty rate...)."""
        reply = self._call("query-migrate")
        return dict(reply) if isinstance(reply, dict) else {}

    def migrate(self, uri: str) -> None:
        """Start an outgoing migration to *uri* (``fd:NAME``); it runs in the background,
        :meth:`query_migrate` follows it."""
        self._call("migrate", {"uri": uri})

    def migrate_incoming(self, uri: str) -> None:
        """Start the incoming migration of a QEMU started with ``-incoming defer``."""
        self._call("migrate-incoming", {"uri": uri})

    def query_migrate(self) -> MigrationStatus:
        """The state of the current (or last) migration."""
        return MigrationStatus.from_wire(self._call("query-migrate"))

    def migrate_cancel(self) -> None:
        """Cancel the outgoing migration (QEMU keeps the machine)."""
        self._call("migrate_cancel")
