"""Value types of the Domain handle's tuning and display verbs (``vcpucount``, ``vcpuinfo``,
``iothreadinfo``, ``numatune``, ``memtune``, ``screenshot``, ``vncdisplay``).

They live apart from the verbs so that commands which do not return them (``list``, ``start``,
``destroy``, ``dominfo``) do not pay for creating them; :mod:`pyvirt.api.domain_tuning`,
:mod:`pyvirt.api.domain_devices` and :mod:`pyvirt.api.domain` re-export them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# lazy: function-local imports marked ``# lazy`` keep start-up fast: pyvirt.api.values loads the
# size parser and with it lxml (~7 ms), which only the JSON form of affinities needs.

__all__ = [
    "IOThreadInfo",
    "MemTune",
    "NumaTune",
    "Screenshot",
    "VcpuCount",
    "VcpuInfo",
    "VncDisplay",
]


@dataclass(frozen=True)
class VcpuCount:
    """vCPU counts (``vcpucount``); a ``live`` value is None while the domain is shut off,
    a ``config`` value is None for a transient domain."""

    maximum_config: int | None
    maximum_live: int | None
    current_config: int | None
    current_live: int | None

    def to_json(self) -> dict[str, dict[str, int]]:
        """``{"maximum": {"config": N, "live": N}, "current": {...}}`` without absent values."""
        out: dict[str, dict[str, int]] = {"maximum": {}, "current": {}}
        for kind in ("maximum", "current"):
            for where in ("config", "live"):
                value = getattr(self, f"{kind}_{where}")
                if value is not None:
                    out[kind][where] = value
        return out


@dataclass(frozen=True)
class VcpuInfo:
    """One vCPU of a running domain (``vcpuinfo``)."""

    vcpu: int
    #: host thread id
    thread: int
    #: the host CPU it last ran on
    cpu: int
    state: str
    #: CPU seconds used
    cpu_time: float
    #: host CPUs it may run on
    affinity: frozenset[int]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; the affinity as a CPU list such as ``0-3``."""
        from pyvirt.api.values import format_cpuset  # lazy

        return {
            "vcpu": self.vcpu,
            "thread": self.thread,
            "cpu": self.cpu,
            "state": self.state,
            "cpu_time": self.cpu_time,
            "affinity": format_cpuset(set(self.affinity)),
        }


@dataclass(frozen=True)
class IOThreadInfo:
    """One I/O thread of a running domain (``iothreadinfo``)."""

    id: int | str
    thread: int
    affinity: frozenset[int]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict; the affinity as a CPU list."""
        from pyvirt.api.values import format_cpuset  # lazy

        return {"id": self.id, "thread": self.thread, "affinity": format_cpuset(set(self.affinity))}


@dataclass(frozen=True)
class NumaTune:
    """The NUMA memory policy (``numatune``)."""

    mode: str
    #: host NUMA nodes, e.g. ``0-1`` (empty: all)
    nodeset: str

    def to_json(self) -> dict[str, str]:
        """``{"numa_mode": ..., "numa_nodeset": ...}`` as virsh names them."""
        return {"numa_mode": self.mode, "numa_nodeset": self.nodeset}


@dataclass(frozen=True)
class MemTune:
    """Memory limits in KiB (``memtune``); None means unlimited."""

    hard_limit: int | None
    soft_limit: int | None
    swap_hard_limit: int | None

    def to_json(self) -> dict[str, int | None]:
        """JSON-ready dict, keys as virsh names them."""
        return {
            "hard_limit": self.hard_limit,
            "soft_limit": self.soft_limit,
            "swap_hard_limit": self.swap_hard_limit,
        }


@dataclass(frozen=True)
class Screenshot:
    """A screenshot written to ``path`` (PNG)."""

    path: str
    width: int
    height: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"path": self.path, "width": self.width, "height": self.height}


@dataclass(frozen=True)
class VncDisplay:
    """Where a running domain's VNC server listens (``vncdisplay``, ``domdisplay``)."""

    listen: str
    #: the display number (TCP port 5900 + display)
    display: int

    @property
    def port(self) -> int:
        """The TCP port."""
        return 5900 + self.display

    @property
    def uri(self) -> str:
        """``vnc://HOST:DISPLAY`` as ``domdisplay`` prints it (wildcards become localhost)."""
        host = "localhost" if self.listen in ("0.0.0.0", "::", "127.0.0.1") else self.listen
        return f"vnc://{host}:{self.display}"

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"listen": self.listen, "display": self.display, "port": self.port}
