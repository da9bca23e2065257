"""Checkpoint metadata on disk and the checkpoint tree built from it (no QEMU, no images)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import AlreadyExistsError, NotFoundError
from pyvirt.state.atomic import atomic_write

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


class CheckpointStore:
    """The checkpoint metadata of one domain."""

    def __init__(self, paths: StatePaths, domain: str) -> None:
        self.domain = domain
        self.dir: Path = paths.domain_config_dir / "checkpoint" / domain

    def path(self, name: str) -> Path:
        """The XML file of checkpoint *name*.

        :raises NotFoundError: a name no checkpoint can have (``/``, a leading ``.``)
        """
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise NotFoundError(f"domain '{self.domain}' has no checkpoint '{name}'")
        return self.dir / f"{name}.xml"

    def names(self) -> list[str]:
        """Every checkpoint's name (unsorted)."""
        if not self.dir.is_dir():
            return []
        return [p.name[:-4] for p in self.dir.glob("*.xml") if not p.name.startswith(".")]

    def all(self) -> dict[str, DomainCheckpoint]:
        """Every checkpoint by name."""
        return {n: self.read(n) for n in self.names()}

    def exists(self, name: str) -> bool:
        """Whether checkpoint *name* has metadata."""
        try:
            return self.path(name).is_file()
        except NotFoundError:
            return False

    def read(self, name: str) -> DomainCheckpoint:
        """Checkpoint *name*'s metadata.

        :raises NotFoundError: no such checkpoint
        """
        from pyvirt.model.checkpoint import DomainCheckpoint  # lazy

        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(
                f"domain '{self.domain}' has no checkpoint '{name}'",
                hint=f"list them with 'checkpoint-list {self.domain}'",
            ) from None
        return DomainCheckpoint.from_xml(data)

    def write(self, cp: DomainCheckpoint, *, new: bool = False) -> None:
        """Store *cp* atomically (*new*: refuse to replace one of the same name)."""
        assert cp.name
        if new and self.exists(cp.name):
            raise AlreadyExistsError(
                f"checkpoint '{cp.name}' of domain '{self.domain}' already exists",
                hint="choose another name, or delete the old checkpoint first",
            )
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path(cp.name), cp.to_xml().encode())

    def remove(self, name: str) -> None:
        """Forget checkpoint *name*."""
        self.path(name).unlink(missing_ok=True)

    def drop_all(self) -> None:
        """Forget every checkpoint of the domain (``undefine --checkpoints-metadata``)."""
        shutil.rmtree(self.dir, ignore_errors=True)


class CheckpointTree:
    """Parent/child relations of a domain's checkpoints."""

    def __init__(self, cps: dict[str, DomainCheckpoint]) -> None:
        self.cps = cps
        self.kids: dict[str | None, list[str]] = {}
        for name, cp in cps.items():
            parent = cp.parent if cp.parent in cps else None
            self.kids.setdefault(parent, []).append(name)
        for names in self.kids.values():
            names.sort(key=lambda n: (cps[n].creation_time or 0, n))

    def parent(self, name: str) -> str | None:
        """The parent of *name* (None for a root)."""
        parent = self.cps[name].parent
        return parent if parent in self.cps else None

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
        """The checkpoints without a parent."""
        return self.children(None)

    def leaves(self) -> list[str]:
        """The checkpoints without children."""
        return [n for n in self.ordered() if not self.kids.get(n)]

    def ordered(self) -> list[str]:
        """Every checkpoint, each root followed by its subtree."""
        out: list[str] = []
        for root in self.roots():
            out += [root, *self.descendants(root)]
        return out

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
