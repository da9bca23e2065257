"""Snapshot metadata on disk and the snapshot tree built from it (no QEMU, no images)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyvirt.service.metatree import RecordStore, RecordTree
from pyvirt.state.atomic import DISK_FULL, disk_full_error

if TYPE_CHECKING:
    import threading

    from pyvirt.model.snapshot import DomainSnapshot
    from pyvirt.state.paths import StatePaths

#: flags of a new temporary file: never an existing file, never through a symlink
_TMP_FLAGS = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC

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
        pointer = self.dir / ".current"
        try:
            name = os.readlink(pointer)
        except FileNotFoundError:
            return None
        except OSError:  # a pointer file (pyvirt before the symlink), not a link
            try:
                name = pointer.read_text().strip()
            except FileNotFoundError:
                return None
        return name if name and self.exists(name) else None

    def set_current(self, name: str | None) -> None:
        """Make *name* the current snapshot (None: no current snapshot). A pointer that
        names *name* already is left alone: no durable write for nothing, as when a revert
        goes back to the current snapshot."""
        if name is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.dir / ".current")
            return
        with contextlib.suppress(OSError):
            if os.readlink(self.dir / ".current") == name:
                return
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._durably(lambda: self._point(name))

    def write_current(self, snap: DomainSnapshot) -> None:
        """Store new snapshot *snap* and make it the current one, durably (see
        :meth:`stage`)."""
        self.stage(snap, background=False).commit()

    def stage(self, snap: DomainSnapshot, *, background: bool = True) -> StagedRecord:
        """Write new snapshot *snap*'s record to a temporary file next to its place and
        fsync it, in a thread of its own with *background* (while QEMU takes the snapshot);
        :meth:`StagedRecord.commit` then puts it in place and makes it current."""
        name = snap.name
        assert name
        self.path(name)  # refuses names no record can have
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        return StagedRecord(self, name, snap.to_xml().encode(), background=background)

    def _point(self, name: str) -> None:
        """Make ``.current`` a symlink to *name* (atomically; not yet durable)."""
        tmp = os.path.join(self.dir, f"..current.{os.urandom(6).hex()}.tmp")
        os.symlink(name, tmp)
        try:
            os.replace(tmp, self.dir / ".current")
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def _durably(self, change: Callable[[], None]) -> None:
        """Run *change* (renames in :attr:`dir`), then fsync the directory; a full disk is
        pyvirt's one-line error."""
        try:
            change()
            dfd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        except OSError as err:
            if err.errno in DISK_FULL:
                raise disk_full_error(self.dir / ".current", err) from None
            raise


class StagedRecord:
    """A snapshot's record written and synced to a temporary file (:meth:`SnapshotStore.stage`).

    :meth:`commit` renames it into place and points ``.current`` at it (a symlink: its name
    is in the directory, no data to sync), then one fsync of the directory makes both
    durable: one file fsync and one directory fsync in all, the first off the critical path
    when staged in the background. :meth:`discard` drops it (the snapshot failed).
    """

    def __init__(self, store: SnapshotStore, name: str, data: bytes, *, background: bool) -> None:
        self._store = store
        self.name = name
        self._tmp: str | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background:
            import threading  # lazy

            self._thread = threading.Thread(
                target=self._write, args=(data,), name="pyvirt-snapshot-record", daemon=True
            )
            self._thread.start()
        else:
            self._write(data)
            self._wait()

    def _write(self, data: bytes) -> None:
        tmp = os.path.join(self._store.dir, f".{self.name}.xml.{os.urandom(6).hex()}.tmp")
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException as err:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self._error = err
            return
        self._tmp = tmp

    def _wait(self) -> str:
        """The synced temporary file (after the thread's end).

        :raises OSError: writing it failed (a full disk: pyvirt's one-line error)
        """
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            err = self._error
            if isinstance(err, OSError) and err.errno in DISK_FULL:
                raise disk_full_error(self._store.path(self.name), err) from None
            raise err
        assert self._tmp is not None
        return self._tmp

    def commit(self) -> None:
        """Put the record in place and make it the current snapshot, durably."""
        tmp = self._wait()
        store = self._store

        def both() -> None:
            try:
                os.replace(tmp, store.path(self.name))
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
            store._point(self.name)

        store._durably(both)

    def discard(self) -> None:
        """Drop the staged record (the snapshot was not taken)."""
        if self._thread is not None:
            self._thread.join()
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)


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
