"""Typed QMP commands about migration: the machine state to and from a file descriptor.

Save and restore (:mod:`pyvirt.service.domain.save`) use migration to an fd: pyvirt opens
the state file itself and passes it to QEMU (``getfd`` with ``SCM_RIGHTS``), so a QEMU that
runs as another user needs no access to the file's directory, and no shell runs
(``exec:``). QEMU writes at (and reads from) the fd's current offset, after pyvirt's header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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
    :ivar passes: passes over the guest's memory so far (``dirty-sync-count``)
    :ivar total_time_ms: how long a finished migration took
    :ivar downtime_ms: how long the guest was paused at its end (once completed)
    :ivar dirty_rate: pages the guest dirties per second (measured each pass)
    :ivar page_size: bytes per page of :attr:`dirty_rate`
    :ivar expected_downtime_ms: the pause QEMU expects if it switched over now
    :ivar mbps: the measured throughput (megabits per second)
    :ivar elapsed_ms: time since the migration started (``total-time`` while it runs)
    """

    status: str
    transferred: int = 0
    total: int = 0
    remaining: int = 0
    error: str = ""
    socket_addresses: tuple[dict[str, str], ...] = ()
    # measurements of the run, not part of where it is: left out of comparisons
    passes: int = field(default=0, compare=False)
    total_time_ms: int = field(default=0, compare=False)
    downtime_ms: int | None = field(default=None, compare=False)
    dirty_rate: int = field(default=0, compare=False)
    page_size: int = field(default=0, compare=False)
    expected_downtime_ms: int | None = field(default=None, compare=False)
    mbps: float = field(default=0.0, compare=False)

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
            passes=int(ram.get("dirty-sync-count", 0) or 0),
            total_time_ms=int(data.get("total-time", 0) or 0),
            downtime_ms=int(data["downtime"]) if "downtime" in data else None,
            dirty_rate=int(ram.get("dirty-pages-rate", 0) or 0),
            page_size=int(ram.get("page-size", 0) or 0),
            expected_downtime_ms=(
                int(data["expected-downtime"]) if "expected-downtime" in data else None
            ),
            mbps=float(ram.get("mbps", 0) or 0),
        )


@dataclass(frozen=True)
class MigrationParameters:
    """``query-migrate-parameters``: what may be tuned while a migration runs.

    :ivar max_bandwidth: bytes/s
    :ivar downtime_limit_ms: the longest pause QEMU may end a pre-copy with
    :ivar xbzrle_cache_size: bytes of XBZRLE's page cache (``migrate-compcache``)
    """

    max_bandwidth: int
    downtime_limit_ms: int
    xbzrle_cache_size: int
    #: the multifd channels and auto-converge's throttle steps (None: not in the reply)
    multifd_channels: int | None = None
    throttle_initial: int | None = None
    throttle_increment: int | None = None
    #: bytes/s of post-copy's background transfer (0: unlimited)
    max_postcopy_bandwidth: int | None = None

    @classmethod
    def from_wire(cls, reply: Any) -> MigrationParameters:
        """Parse a ``query-migrate-parameters`` reply."""
        data = reply if isinstance(reply, dict) else {}

        def opt(key: str) -> int | None:
            return int(data[key]) if data.get(key) is not None else None

        return cls(
            max_bandwidth=int(data.get("max-bandwidth", 0) or 0),
            downtime_limit_ms=int(data.get("downtime-limit", 0) or 0),
            xbzrle_cache_size=int(data.get("xbzrle-cache-size", 0) or 0),
            multifd_channels=opt("multifd-channels"),
            throttle_initial=opt("cpu-throttle-initial"),
            throttle_increment=opt("cpu-throttle-increment"),
            max_postcopy_bandwidth=opt("max-postcopy-bandwidth"),
        )


class MigrationCommands(Commands):
    """``getfd``, ``migrate``, ``migrate-incoming``, ``query-migrate``, ``migrate_cancel``,
    the capabilities and parameters of a migration, ``migrate-start-postcopy``,
    ``migrate-continue``, ``migrate-pause`` and ``migrate-recover``."""

    def getfd(self, fd: int, name: str) -> None:
        """Pass open *fd* to QEMU under *name* (``SCM_RIGHTS``), for ``fd:NAME`` URIs."""
        self._send_fd(fd)
        self._call("getfd", {"fdname": name})

    def closefd(self, name: str) -> None:
        """Close QEMU's copy of the fd passed as *name*."""
        self._call("closefd", {"fdname": name})

    def set_migration_parameters(
        self,
        *,
        max_bandwidth: int | None = None,
        downtime_limit_ms: int | None = None,
        multifd_channels: int | None = None,
        throttle_initial: int | None = None,
        throttle_increment: int | None = None,
        xbzrle_cache_size: int | None = None,
        tls_creds: str | None = None,
        tls_hostname: str | None = None,
        max_postcopy_bandwidth: int | None = None,
    ) -> None:
        """Set the migration's bandwidth limit (bytes/s; QEMU's default of 128 MiB/s would
        slow a save to a local file down for nothing), the longest pause it may end with
        (ms; a long one ends a save after the first pass over the guest's memory), the
        multifd channels, auto-converge's throttle steps (percent), XBZRLE's cache (bytes),
        the ``tls-creds-x509`` object of a TLS migration and the host name its peer's
        certificate must name (``""``: plain again) and post-copy's bandwidth (bytes/s, 0:
        unlimited); None: unchanged. The bandwidth, downtime
        and cache may change while a migration runs."""
        self._call(
            "migrate-set-parameters",
            {
                "max-bandwidth": max_bandwidth,
                "downtime-limit": downtime_limit_ms,
                "multifd-channels": multifd_channels,
                "cpu-throttle-initial": throttle_initial,
                "cpu-throttle-increment": throttle_increment,
                "xbzrle-cache-size": xbzrle_cache_size,
                "tls-creds": tls_creds,
                "tls-hostname": tls_hostname,
                "max-postcopy-bandwidth": max_postcopy_bandwidth,
            },
        )

    def query_migration_parameters(self) -> MigrationParameters:
        """The migration's tunable parameters now."""
        return MigrationParameters.from_wire(self._call("query-migrate-parameters"))

    def set_migration_capabilities(
        self,
        *,
        auto_converge: bool = False,
        xbzrle: bool = False,
        multifd: bool = False,
        postcopy: bool = False,
        events: bool = True,
        late_block_activate: bool = False,
        pause_before_switchover: bool = False,
        current: Mapping[str, bool] | None = None,
    ) -> None:
        """Turn QEMU's migration capabilities on or off (only while no migration runs):
        vCPU throttling, XBZRLE compression of re-sent pages, several channels, post-copy,
        and the ``MIGRATION`` events; ``late_block_activate`` (incoming side): take the disk
        images over only at ``cont``, so the source can still resume if the hand-over fails;
        ``pause_before_switchover`` (outgoing side): stop in ``pre-switchover`` with the vCPUs
        paused until :meth:`migrate_continue` (the disk mirrors end there).

        :param current: QEMU's capabilities now (:meth:`query_migration_capabilities`; a
            name left out is off, so ``{}`` for a QEMU just started): only those that change
            are sent, none if nothing does. QEMU 7.2 takes ~0.35 ms plus ~0.18 ms for each
            capability listed (measured on an idle QEMU: all seven 1.6 ms, one 0.5 ms).
        """
        caps = {"auto-converge": auto_converge, "xbzrle": xbzrle, "multifd": multifd,
                "postcopy-ram": postcopy, "events": events,
                "late-block-activate": late_block_activate,
                "pause-before-switchover": pause_before_switchover}  # fmt: skip
        if current is not None:
            caps = {k: v for k, v in caps.items() if bool(current.get(k, False)) != v}
            if not caps:
                return
        listed: Any = [{"capability": k, "state": v} for k, v in caps.items()]
        self._call("migrate-set-capabilities", {"capabilities": listed})

    def query_migration_capabilities(self) -> dict[str, bool]:
        """QEMU's migration capabilities now, by QEMU's name (``postcopy-ram``...)."""
        reply = self._call("query-migrate-capabilities")
        rows = reply if isinstance(reply, list) else []
        return {str(r["capability"]): bool(r["state"]) for r in rows if isinstance(r, dict)}

    def migrate_start_postcopy(self) -> None:
        """Switch the running migration to post-copy (needs the ``postcopy-ram``
        capability on both sides)."""
        self._call("migrate-start-postcopy")

    def migrate(self, uri: str, *, resume: bool = False) -> None:
        """Start an outgoing migration to *uri* (``fd:NAME``); it runs in the background,
        :meth:`query_migrate` follows it. *resume*: go on with a post-copy migration paused
        in ``postcopy-paused`` (the destination listens again after :meth:`migrate_recover`)."""
        self._call("migrate", {"uri": uri, "resume": True} if resume else {"uri": uri})

    def migrate_pause(self) -> None:
        """Break off a post-copy migration's stream: both sides wait in ``postcopy-paused``
        (QEMU 3.0+; ``migrate --postcopy-resume`` goes on)."""
        self._call("migrate-pause")

    def migrate_recover(self, uri: str) -> None:
        """Incoming side of a ``postcopy-paused`` migration: listen on *uri* for the source's
        ``migrate`` with ``resume``."""
        self._call("migrate-recover", {"uri": uri})

    def migrate_incoming(self, uri: str) -> None:
        """Start the incoming migration of a QEMU started with ``-incoming defer``."""
        self._call("migrate-incoming", {"uri": uri})

    def query_migrate(self) -> MigrationStatus:
        """The state of the current (or last) migration."""
        return MigrationStatus.from_wire(self._call("query-migrate"))

    def migrate_continue(self) -> None:
        """Let a migration stopped in ``pre-switchover`` (``pause_before_switchover``) end."""
        self._call("migrate-continue", {"state": "pre-switchover"})

    def migrate_cancel(self) -> None:
        """Cancel the outgoing migration (QEMU keeps the machine)."""
        self._call("migrate_cancel")
