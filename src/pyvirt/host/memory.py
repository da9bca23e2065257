"""Host memory figures from ``/proc/meminfo`` and per-node ``meminfo`` (``nodememstats``).

virsh ``nodememstats`` prints total, free, buffers and cached in KiB for the whole host;
with ``--cell N`` it prints the node's total and free (the kernel keeps buffers and cache
per node too, as ``FilePages``; pyvirt reports them where the node file has them).

Every reader takes a ``root`` path so unit tests point it at a fake tree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class MemStats:
    """What ``nodememstats`` prints, in KiB (``None`` when the source lacks the figure)."""

    total: int
    free: int
    buffers: int | None = None
    cached: int | None = None

    def items(self) -> list[tuple[str, int]]:
        """``(name, KiB)`` pairs in virsh's order, skipping unknown figures."""
        pairs = [("total", self.total), ("free", self.free)]
        if self.buffers is not None:
            pairs.append(("buffers", self.buffers))
        if self.cached is not None:
            pairs.append(("cached", self.cached))
        return pairs

    def to_json(self) -> dict[str, int]:
        """JSON-ready dict of the known figures (``nodememstats --json``)."""
        return dict(self.items())


def read_meminfo(root: Path = Path("/")) -> dict[str, int]:
    """``/proc/meminfo`` as ``{key: value}``; values in KiB (counts for ``HugePages_*``)."""
    try:
        text = (root / "proc/meminfo").read_text()
    except OSError:
        return {}
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        parts = rest.split()
        if sep and parts:
            try:
                out[key.strip()] = int(parts[0])
            except ValueError:
                continue
    return out


def host_memstats(root: Path = Path("/")) -> MemStats:
    """Total, free, buffers and cached memory of the host."""
    info = read_meminfo(root)
    return MemStats(
        total=info.get("MemTotal", 0),
        free=info.get("MemFree", 0),
        buffers=info.get("Buffers"),
        cached=info.get("Cached"),
    )


def node_memstats(root: Path, node: int) -> MemStats | None:
    """Total and free memory of one NUMA node (``None`` when the node does not exist)."""
    path = root / "sys/devices/system/node" / f"node{node}" / "meminfo"
    try:
        text = path.read_text()
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[2].endswith(":"):
            try:
                values[parts[2][:-1]] = int(parts[3])
            except ValueError:
                continue
    return MemStats(total=values.get("MemTotal", 0), free=values.get("MemFree", 0))
