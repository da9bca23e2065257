"""Snapshot metadata on disk and the snapshot tree built from it (no QEMU, no images)."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.service.metatree import RecordStore, RecordTree
from pyvirt.state.atomic import atomic_write

if TYPE_CHECKING:
    from pyvirt.model.snapshot import DomainSnapshot
    from pyvirt.state.paths import StatePaths

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml, the QEMU
# monitor and qemu-img load only for the snapshot verbs that need them.


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as ``snapshot-list``/``snapshot-info`` show it."""

    name: str
    domain: str
    creation_time: int
    state: str
    parent: str | None
    #: ``internal``, ``external`` or ``mixed`` (libvirt's "Location")
    location: str
    current: bool
    children: int
    descendants: int

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "name": self.name,
            "domain": self.domain,
            "creation_time": self.creation_time,
            "state": self.state,
            "parent": self.parent,
            "location": self.location,
            "current": self.current,
            "children": self.children,
            "descendants": self.descendants,
        }


def location(snap: DomainSnapshot) -> str:
    """``internal``, ``external``, ``mixed`` (or ``none`` for a snapshot of nothing)."""
    internal, external = snap.is_internal, snap.is_external
    if internal and external:
        return "mixed"
    return "external" if external else "internal" if internal else "none"


def _parse(data: bytes) -> DomainSnapshot:
    from pyvirt.model.snapshot import DomainSnapshot  # lazy

    return DomainSnapshot.from_xml(data)


class SnapshotStore(RecordStore["DomainSnapshot"]):
    """The snapshot metadata of one domain, and which snapshot is current."""

    def __init__(self, paths: StatePaths, domain: str) -> None:
        super().__init__(paths, domain, "snapshot", _parse)

    def remove(self, name: str) -> None:
        """Forget snapshot *name* (and that it was current)."""
        super().remove(name)
        if self.current() == name:
            self.set_current(None)

    def current(self) -> str | None:
        """The current snapshot's name (None when there is none)."""
        try:
            name = (self.dir / ".current").read_text().strip()
        except FileNotFoundError:
            return None
        return name if name and self.exists(name) else None

    def set_current(self, name: str | None) -> None:
        """Make *name* the current snapshot (None: no current snapshot). A pointer that
        names *name* already is left alone: no durable write (two fsyncs) for nothing, as
        when a revert goes back to the current snapshot."""
        if name is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.dir / ".current")
            return
        data = name.encode() + b"\n"
        try:
            if (self.dir / ".current").read_bytes() == data:
                return
        except FileNotFoundError:
            pass
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.dir / ".current", data)


class SnapshotTree(RecordTree["DomainSnapshot"]):
    """Parent/child relations of a domain's snapshots."""

    @property
    def snaps(self) -> dict[str, DomainSnapshot]:
        """The snapshots by name."""
        return self.records

    def info(self, domain: str, name: str, current: str | None) -> SnapshotInfo:
        """The :class:`SnapshotInfo` of snapshot *name*."""
        snap = self.snaps[name]
        return SnapshotInfo(
            name=name,
            domain=domain,
            creation_time=snap.creation_time or 0,
            state=snap.state or "shutoff",
            parent=self.parent(name),
            location=location(snap),
            current=name == current,
            children=len(self.children(name)),
            descendants=len(self.descendants(name)),
        )
