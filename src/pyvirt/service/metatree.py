"""Per-domain metadata records that form a tree: snapshots and checkpoints.

:class:`RecordStore` keeps one XML file per record under
``CONFIG/qemu/KIND/DOMAIN/NAME.xml`` (written atomically; names that cannot be file names are
refused as unknown); :class:`RecordTree` gives the parent/child relations libvirt's
``*-list --tree/--roots/--leaves/--parent`` options need. Records are model documents with ``name``,
``parent`` and ``creation_time``.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, cast

from pyvirt.errors import AlreadyExistsError, NotFoundError
from pyvirt.state.atomic import atomic_write

if TYPE_CHECKING:
    from pyvirt.model.xmlmap import XmlDocument
    from pyvirt.state.paths import StatePaths


class Record(Protocol):
    """What the store and the tree need of a snapshot or checkpoint."""

    name: str | None
    parent: str | None
    creation_time: int | None


#: a model document (``DomainSnapshot``, ``DomainCheckpoint``) that is also a :class:`Record`
#: (mypy does not match the model's descriptors against a protocol, hence the casts)
R = TypeVar("R", bound="XmlDocument")


class RecordStore(Generic[R]):
    """The records of one kind (``snapshot``, ``checkpoint``) of one domain."""

    def __init__(
        self, paths: StatePaths, domain: str, kind: str, parse: Callable[[bytes], R]
    ) -> None:
        self.domain = domain
        self.kind = kind
        self._parse = parse
        self.dir: Path = paths.domain_config_dir / kind / domain

    def _unknown(self, name: str) -> NotFoundError:
        return NotFoundError(
            f"domain '{self.domain}' has no {self.kind} '{name}'",
            hint=f"list them with '{self.kind}-list {self.domain}'",
        )

    def path(self, name: str) -> Path:
        """The XML file of record *name*.

        :raises NotFoundError: a name no record can have (``/``, a leading ``.``, NUL)
        """
        if not name or "/" in name or name.startswith(".") or "\0" in name:
            raise self._unknown(name)
        return self.dir / f"{name}.xml"

    def names(self) -> list[str]:
        """Every record's name (unsorted)."""
        if not self.dir.is_dir():
            return []
        return [p.name[:-4] for p in self.dir.glob("*.xml") if not p.name.startswith(".")]

    def all(self) -> dict[str, R]:
        """Every record by name."""
        return {n: self.read(n) for n in self.names()}

    def exists(self, name: str) -> bool:
        """Whether record *name* exists."""
        try:
            return self.path(name).is_file()
        except NotFoundError:
            return False

    def read(self, name: str) -> R:
        """Record *name*.

        :raises NotFoundError: no such record
        """
        try:
            data = self.path(name).read_bytes()
        except FileNotFoundError:
            raise self._unknown(name) from None
        return self._parse(data)

    def write(self, record: R, *, new: bool = False) -> None:
        """Store *record* atomically (*new*: refuse to replace one of the same name)."""
        name = cast(Record, record).name
        assert name
        if new and self.exists(name):
            raise AlreadyExistsError(
                f"{self.kind} '{name}' of domain '{self.domain}' already exists",
                hint=f"choose another name, or delete the old {self.kind} first",
            )
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        atomic_write(self.path(name), record.to_xml().encode())

    def remove(self, name: str) -> None:
        """Forget record *name*."""
        self.path(name).unlink(missing_ok=True)

    def drop_all(self) -> None:
        """Forget every record of the domain (``undefine --snapshots-metadata`` & co.)."""
        shutil.rmtree(self.dir, ignore_errors=True)


class RecordTree(Generic[R]):
    """Parent/child relations of a domain's records; siblings oldest first."""

    def __init__(self, records: dict[str, R]) -> None:
        self.records = records
        self.kids: dict[str | None, list[str]] = {}
        for name, rec in records.items():
            parent = cast(Record, rec).parent
            self.kids.setdefault(parent if parent in records else None, []).append(name)
        for names in self.kids.values():
            names.sort(key=lambda n: (cast(Record, records[n]).creation_time or 0, n))

    def parent(self, name: str) -> str | None:
        """The parent of *name* (None for a root)."""
        parent = cast(Record, self.records[name]).parent
        return parent if parent in self.records else None

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
        """The records without a parent."""
        return self.children(None)

    def leaves(self) -> list[str]:
        """The records without children."""
        return [n for n in self.ordered() if not self.kids.get(n)]

    def ordered(self) -> list[str]:
        """Every record, each root followed by its subtree."""
        out: list[str] = []
        for root in self.roots():
            out += [root, *self.descendants(root)]
        return out
