"""The runtime record of an active network: every host piece it created, for clean teardown.

The record is written *before* each piece is made (bridge, nft table, dnsmasq), so when pyvirt
dies in the middle of a start, the next ``net-start`` or ``net-destroy`` knows what to remove.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyvirt.state.atomic import atomic_write

VERSION = 1


@dataclass
class NetRecord:
    """What an active (or half-started) network owns on the host."""

    name: str
    mode: str
    bridge: str | None = None
    bridge_created: bool = False
    table: str | None = None
    dnsmasq_dir: str | None = None
    taps: list[str] = field(default_factory=list)
    started: bool = False
    version: int = VERSION

    def save(self, path: Path) -> None:
        """Write atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(asdict(self)).encode(), sync=False)

    @classmethod
    def load(cls, path: Path) -> NetRecord | None:
        """Read a record; None when absent or unreadable."""
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["version"] = VERSION
        return cls(**known)
