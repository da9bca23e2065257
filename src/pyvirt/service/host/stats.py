"""Host counters for ``/metrics``: CPU time by mode (``/proc/stat``) and memory by kind
(``/proc/meminfo``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvirt.host.cpustats import read_cpu_times
from pyvirt.host.memory import read_meminfo

__all__ = ["HostStats", "host_stats"]

#: ``/proc/meminfo`` key -> our name
_MEMORY = (
    ("MemTotal", "total"),
    ("MemFree", "free"),
    ("MemAvailable", "available"),
    ("Buffers", "buffers"),
    ("Cached", "cached"),
)


@dataclass(frozen=True)
class HostStats:
    """CPU time of all host CPUs in nanoseconds by mode (``user``, ``system``, ``idle``,
    ``iowait`` as ``nodecpustats`` groups them) and memory in bytes by kind."""

    cpu_ns: dict[str, int]
    memory_bytes: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"cpu_ns": dict(self.cpu_ns), "memory_bytes": dict(self.memory_bytes)}


def host_stats(root: Path = Path("/")) -> HostStats:
    """The host's counters now (``root``: a fake tree in tests)."""
    times = read_cpu_times(root)
    info = read_meminfo(root)
    return HostStats(
        cpu_ns={
            "user": times.user,
            "system": times.system,
            "idle": times.idle,
            "iowait": times.iowait,
        },
        memory_bytes={name: info[key] * 1024 for key, name in _MEMORY if key in info},
    )
