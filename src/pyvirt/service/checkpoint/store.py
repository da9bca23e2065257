"""Checkpoint metadata on disk and the checkpoint tree built from it (no QEMU, no images)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.service.metatree import RecordStore, RecordTree

if TYPE_CHECKING:
    from pyvirt.model.checkpoint import DomainCheckpoint
    from pyvirt.state.paths import StatePaths

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml loads only for
# the checkpoint verbs.


@dataclass(frozen=True)
class CheckpointInfo:
    """One checkpoint as ``checkpoint-list``/``checkpoint-info`` show it."""

    name: str
    domain: str
    creation_time: int
    parent: str | None
    children: int
    descendants: int
    #: disk target -> bitmap name
    disks: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "domain": self.domain,
            "creation_time": self.creation_time,
            "parent": self.parent,
            "children": self.children,
            "descendants": self.descendants,
            "disks": dict(self.disks),
        }


def _parse(data: bytes) -> DomainCheckpoint:
    from pyvirt.model.checkpoint import DomainCheckpoint  # lazy

    return DomainCheckpoint.from_xml(data)


class CheckpointStore(RecordStore["DomainCheckpoint"]):
    """The checkpoint metadata of one domain."""

    def __init__(self, paths: StatePaths, domain: str) -> None:
        super().__init__(paths, domain, "checkpoint", _parse)


class CheckpointTree(RecordTree["DomainCheckpoint"]):
    """Parent/child relations of a domain's checkpoints."""

    @property
    def cps(self) -> dict[str, DomainCheckpoint]:
        """The checkpoints by name."""
        return self.records

    def newest(self) -> str | None:
        """The most recent checkpoint (the one whose bitmaps record writes), if any."""
        if not self.cps:
            return None
        return max(self.cps, key=lambda n: (self.cps[n].creation_time or 0, n))

    def since(self, name: str) -> list[str]:
        """The checkpoints whose bitmaps together hold the changes since *name*: *name* and
        its descendants on the way to the newest checkpoint (oldest first)."""
        newest = self.newest()
        path: list[str] = []
        cur: str | None = newest
        while cur is not None:
            path.append(cur)
            if cur == name:
                return list(reversed(path))
            cur = self.parent(cur)
        return [name]  # not an ancestor of the newest: its own bitmap only

    def info(self, domain: str, name: str) -> CheckpointInfo:
        """The :class:`CheckpointInfo` of checkpoint *name*."""
        cp = self.cps[name]
        return CheckpointInfo(
            name=name,
            domain=domain,
            creation_time=cp.creation_time or 0,
            parent=self.parent(name),
            children=len(self.children(name)),
            descendants=len(self.descendants(name)),
            disks=cp.bitmaps(),
        )
