"""Typed QMP commands for the guest's memory dirty rate (``domdirtyrate-calc``, ``domstats
--dirtyrate``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Commands


@dataclass(frozen=True)
class DirtyRate:
    """``query-dirty-rate``: the last measurement.

    :ivar status: ``unstarted``, ``measuring`` or ``measured``
    :ivar start_time: when it started (seconds, QEMU's monotonic clock)
    :ivar calc_time: its length in seconds
    :ivar mb_per_s: the rate in MiB/s (``None`` until measured)
    """

    status: str
    start_time: int
    calc_time: int
    mode: str
    mb_per_s: int | None

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> DirtyRate:
        """Parse QEMU's reply."""
        rate = raw.get("dirty-rate")
        return cls(
            status=str(raw.get("status", "unstarted")),
            start_time=int(raw.get("start-time", 0)),
            calc_time=int(raw.get("calc-time", 0)),
            mode=str(raw.get("mode", "page-sampling")),
            mb_per_s=int(rate) if rate is not None else None,
        )


class DirtyRateCommands(Commands):
    """Start and read a dirty-page rate measurement."""

    def calc_dirty_rate(self, seconds: int, *, mode: str | None = None) -> None:
        """Start measuring for ``seconds`` (``mode``: page-sampling, dirty-bitmap, dirty-ring)."""
        self._call("calc-dirty-rate", {"calc-time": seconds, "mode": mode})

    def query_dirty_rate(self) -> DirtyRate:
        """The last (or running) measurement."""
        return DirtyRate.from_wire(self._call("query-dirty-rate"))
