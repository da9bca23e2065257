"""Snapshot metadata on disk and the snapshot tree built from it (no QEMU, no images)."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import AlreadyExistsError, NotFoundError
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


class SnapshotStore:
    """The snapshot metadata of one domain."""

    def __init__(self, paths: StatePaths, domain: str) -> None:
        self.domain = domain
        self.dir: Path = paths.domain_config_dir / "snapshot" / domain

    def path(self, name: str) -> Path:
        """The XML file of snapshot *name*.

        :raises NotFoundError: a name no snapshot can have (``/``, a leading ``.``)
        """
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise NotFoundError(f"domain '{self.domain}' has no snapshot '{name}'")
        return self.dir / f"{name}.xml"

    def names(self) -> list[str]:
        """Every snapshot's name (unsorted)."""
        if not self.dir.is_dir():
            return []
        return [p.name[:-4] for p in self.dir.glob("*.xml") if not p.name.startswith(".")]

    def all(self) -> dict[str, DomainSnapshot]:
        """Every snapshot by name."""
        return {n: self.read(n) for n in self.names()}

    def exists(self, name: str) -> bool:
        try:
            return self.path(name).is_file()
        except NotFoundError:
            return False

    def read(self, name: str) -> DomainSnapshot:
        """Snapshot *name*'s metadata.

        :raises NotFoundError: no such snapshot
        """
        from pyvirt.model.snapshot import DomainSnapshot  # lazy

        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"domain '{self.domain}' has no snapshot '{name}'",
                hint=f"list them with 'snapshot-list {self.domain}'",
            ) from None
        return DomainSnapshot.from_xml(data)

    def write(self, snap: DomainSnapshot, *, new: bool = False) -> None:
        """Store *snap* atomically (*new*: refuse to replace one of the same name)."""
        assert snap.name
        if new and self.exists(snap.name):
            raise AlreadyExistsError(
                f"snapshot '{snap.name}' of domain '{self.domain}' already exists",
                hint="choose another name, or delete the old snapshot first",
            )
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path(snap.name), snap.to_xml().encode())

    def remove(self, name: str) -> None:
        """Forget snapshot *name* (and that it was current)."""
        self.path(name).unlink(missing_ok=True)
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

    def drop_all(self) -> None:
        """Forget every snapshot of the domain (``undefine --snapshots-metadata``)."""
        shutil.rmtree(self.dir, ignore_errors=True)


class SnapshotTree:
    """Parent/child relations of a domain's snapshots."""

    def __init__(self, snaps: dict[str, DomainSnapshot]) -> None:
        self.snaps = snaps
        self.kids: dict[str | None, list[str]] = {}
        for name, snap in snaps.items():
            parent = snap.parent if snap.parent in snaps else None
            self.kids.setdefault(parent, []).append(name)
        for names in self.kids.values():
            names.sort(key=lambda n: (snaps[n].creation_time or 0, n))

    def parent(self, name: str) -> str | None:
        parent = self.snaps[name].parent
        return parent if parent in self.snaps else None

    def children(self, name: str | None) -> list[str]:
        """Direct children of *name* (None: the roots), oldest first."""
        return list(self.kids.get(name, []))

    def descendants(self, name: str) -> list[str]:
        """Every descendant of *name*, parents before their children."""
        out: list[str] = []
        todo = self.children(name)
        while todo:
            cur = todo.pop(0)
            out.append(cur)
            todo[0:0] = self.children(cur)
        return out

    def roots(self) -> list[str]:
        return self.children(None)

    def leaves(self) -> list[str]:
        return [n for n in self.ordered() if not self.kids.get(n)]

    def ordered(self) -> list[str]:
        """Every snapshot, each root followed by its subtree."""
        out: list[str] = []
        for root in self.roots():
            out += [root, *self.descendants(root)]
        return out

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
