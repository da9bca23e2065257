"""Typed QMP commands about the machine: run state, vCPUs, I/O threads, balloon, display."""

from __future__ import annotations

from pyvirt.drivers.qemu.monitor.base import Commands, JsonValue
from pyvirt.drivers.qemu.monitor.types import (
    BalloonStats,
    CpuInfo,
    HotpluggableCpu,
    IOThreadInfo,
)


class MachineCommands(Commands):
    """Run state, vCPUs, I/O threads, the balloon, VNC and screen dumps."""

    # run state -----------------------------------------------------------------------------
    def query_status(self) -> tuple[str, bool]:
        """QEMU's run state (``running``, ``paused``, ``shutdown``, ``prelaunch``...) and
        whether the vCPUs run."""
        reply = self._call("query-status")
        return str(reply["status"]), bool(reply["running"])

    def system_powerdown(self) -> None:
        """Press the ACPI power button (graceful shutdown request)."""
        self._call("system_powerdown")

    def stop(self) -> None:
        """Pause the vCPUs."""
        self._call("stop")

    def cont(self) -> None:
        """Resume the vCPUs (also starts a guest launched with ``-S``)."""
        self._call("cont")

    def system_reset(self) -> None:
        """Hard reset, like the reset button."""
        self._call("system_reset")

    # vCPUs and threads ---------------------------------------------------------------------
    def query_cpus_fast(self) -> list[CpuInfo]:
        """Every vCPU with its host thread id (for pinning)."""
        return [CpuInfo.from_wire(c) for c in self._call("query-cpus-fast")]

    def vcpu_threads(self) -> dict[int, int]:
        """vCPU index -> host thread id (``query-cpus-fast``)."""
        return {c.cpu_index: c.thread_id for c in self.query_cpus_fast()}

    def query_hotpluggable_cpus(self) -> list[HotpluggableCpu]:
        """Every vCPU slot, plugged (``qom_path`` set) or empty."""
        return [HotpluggableCpu.from_wire(s) for s in self._call("query-hotpluggable-cpus")]

    def query_iothreads(self) -> list[IOThreadInfo]:
        """Every I/O thread object with its host thread id."""
        return [IOThreadInfo.from_wire(t) for t in self._call("query-iothreads")]

    # balloon -------------------------------------------------------------------------------
    def query_balloon(self) -> int:
        """The guest's current memory in bytes, as the balloon reports it.

        :raises QmpCommandError: the guest has no (active) balloon device
        """
        return int(self._call("query-balloon")["actual"])

    def set_balloon(self, size: int) -> None:
        """Ask the balloon driver to resize the guest to *size* bytes."""
        self._call("balloon", {"value": size})

    def balloon_stats(self, path: str) -> BalloonStats:
        """The guest statistics of the balloon device at QOM *path*."""
        reply = self._call("qom-get", {"path": path, "property": "guest-stats"})
        return BalloonStats.from_wire(reply)

    def set_balloon_stats_period(self, path: str, seconds: int) -> None:
        """Make the guest report statistics every *seconds* (0: never)."""
        args: dict[str, JsonValue] = {
            "path": path,
            "property": "guest-stats-polling-interval",
            "value": seconds,
        }
        self._call("qom-set", args)

    # display -------------------------------------------------------------------------------
    def set_password(self, protocol: str, password: str) -> None:
        """Change the password of the ``vnc`` (or ``spice``) server."""
        self._call("set_password", {"protocol": protocol, "password": password})

    def screendump(self, filename: str, *, head: int | None = None) -> None:
        """Write the screen (of display *head*) to *filename* as a PPM image."""
        self._call("screendump", {"filename": filename, "head": head})

    def add_client(self, protocol: str, fdname: str, *, skipauth: bool = False) -> None:
        """Hand QEMU's ``vnc`` server a connected socket passed before with ``getfd`` as
        *fdname* (``add_client``): a client without any listener; ``skipauth`` skips the
        display's password (the caller authenticated the user)."""
        self._call("add_client", {"protocol": protocol, "fdname": fdname, "skipauth": skipauth})
