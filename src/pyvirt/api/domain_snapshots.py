"""Snapshot verbs of a domain (virsh's ``snapshot-*``), mixed into
:class:`~pyvirt.api.domain.Domain`.

Snapshots are libvirt's ``<domainsnapshot>`` XML; :class:`SnapshotInfo` is what listings
return. Internal snapshots keep disks (and a running guest's memory) inside its qcow2 images;
external ones put overlays on top of them. See ``docs/snapshots.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_base import DomainHandle
from pyvirt.errors import InvalidConfigError, NotFoundError

if TYPE_CHECKING:
    from pyvirt.service.snapshot.store import SnapshotInfo, SnapshotStore, SnapshotTree

__all__ = ["DomainSnapshots", "SnapshotInfo"]

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: lxml and the snapshot
# code load only for snapshot verbs.


def __getattr__(name: str) -> Any:
    """Re-export :class:`SnapshotInfo` without importing the snapshot code at start-up."""
    if name == "SnapshotInfo":
        from pyvirt.service.snapshot.store import SnapshotInfo  # lazy

        return SnapshotInfo
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DomainSnapshots(DomainHandle):
    """Snapshot verbs of :class:`~pyvirt.api.domain.Domain`."""

    def _snapshot_store(self) -> SnapshotStore:
        from pyvirt.service.snapshot.store import SnapshotStore  # lazy

        return SnapshotStore(self._service.paths, self._domains.resolve(self._name))

    def _snapshot_tree(self) -> tuple[SnapshotStore, SnapshotTree]:
        from pyvirt.service.snapshot.store import SnapshotTree  # lazy

        store = self._snapshot_store()
        return store, SnapshotTree(store.all())

    def snapshot_create(
        self,
        xml: str | bytes | None = None,
        *,
        disk_only: bool = False,
        atomic: bool = False,
        quiesce: bool = False,
        live: bool = False,
        no_metadata: bool = False,
        redefine: bool = False,
        current: bool = False,
    ) -> SnapshotInfo:
        """Take a snapshot described by ``<domainsnapshot>`` *xml* (None: defaults), like
        ``snapshot-create``.

        :param disk_only: disks only (external overlays), no memory state
        :param quiesce: freeze the guest's file systems meanwhile (guest agent; disk-only)
        :param no_metadata: take it but keep no record of it
        :param redefine: only record *xml* (a snapshot that exists in the images)
        :param current: with *redefine*: make it the current snapshot
        :raises UnsupportedError: what cannot be snapshotted (raw disks internally...)
        :raises AlreadyExistsError: the name is taken
        """
        from pyvirt.model.snapshot import DomainSnapshot  # lazy

        if current and not redefine:
            raise InvalidConfigError("--current needs --redefine")
        snap = DomainSnapshot.from_xml(xml) if xml is not None else DomainSnapshot()
        return self._take(
            snap,
            disk_only=disk_only,
            atomic=atomic,
            quiesce=quiesce,
            live=live,
            no_metadata=no_metadata,
            redefine=redefine,
            current=current,
        )

    def _take(
        self,
        snap: Any,
        *,
        disk_only: bool = False,
        atomic: bool = False,
        quiesce: bool = False,
        live: bool = False,
        no_metadata: bool = False,
        redefine: bool = False,
        current: bool = False,
    ) -> SnapshotInfo:
        """Take (or record) the ``DomainSnapshot`` document *snap*."""
        from pyvirt.service.snapshot import create  # lazy

        flags = create.CreateFlags(
            disk_only=disk_only,
            atomic=atomic,
            quiesce=quiesce,
            live=live,
            no_metadata=no_metadata,
            redefine=redefine,
            current=current,
        )
        made = create.create(self._domains, self._name, snap, flags)
        if redefine:
            return self._info_of(made)
        return self._new_info(made, recorded=not no_metadata)

    def _new_info(self, snap: Any, *, recorded: bool) -> SnapshotInfo:
        """The info of a snapshot just taken, without reading every snapshot's record: it has
        no children yet, and it is the current one unless it was not recorded."""
        from pyvirt.service.snapshot.store import SnapshotInfo, location  # lazy

        return SnapshotInfo(
            snap.name, self._domains.resolve(self._name), snap.creation_time or 0,
            snap.state or "shutoff", snap.parent, location(snap), recorded, 0, 0,
        )  # fmt: skip

    def _info_of(self, snap: Any) -> SnapshotInfo:
        from pyvirt.service.snapshot.store import SnapshotInfo, location  # lazy

        store, tree = self._snapshot_tree()
        if snap.name in tree.snaps:
            return tree.info(store.domain, snap.name, store.current())
        return SnapshotInfo(
            snap.name, store.domain, snap.creation_time or 0, snap.state or "shutoff",
            snap.parent, location(snap), False, 0, 0,
        )  # fmt: skip

    @staticmethod
    def snapshot_xml_for(
        name: str | None = None,
        description: str | None = None,
        *,
        memspec: str | None = None,
        diskspecs: Sequence[str] = (),
        disk_only: bool = False,
    ) -> str:
        """The ``<domainsnapshot>`` XML of ``snapshot-create-as``'s options (``--print-xml``).

        :raises InvalidConfigError: a malformed ``memspec`` or ``diskspec``
        """
        from pyvirt.service.snapshot import spec  # lazy

        snap = spec.build(
            name, description, memspec=memspec, diskspecs=diskspecs, disk_only=disk_only
        )
        return snap.to_xml()

    def snapshot_create_as(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        memspec: str | None = None,
        diskspecs: Sequence[str] = (),
        disk_only: bool = False,
        atomic: bool = False,
        quiesce: bool = False,
        live: bool = False,
        no_metadata: bool = False,
    ) -> SnapshotInfo:
        """Take a snapshot from options, like ``snapshot-create-as`` (see
        :meth:`snapshot_xml_for` and :meth:`snapshot_create`; the document built from the
        options is taken as it is, not written out as XML and parsed again)."""
        from pyvirt.service.snapshot import spec  # lazy

        snap = spec.build(
            name, description, memspec=memspec, diskspecs=diskspecs, disk_only=disk_only
        )
        return self._take(
            snap,
            disk_only=disk_only,
            atomic=atomic,
            quiesce=quiesce,
            live=live,
            no_metadata=no_metadata,
        )

    def snapshots(self) -> list[SnapshotInfo]:
        """Every snapshot, each root followed by its subtree (parents before children)."""
        store, tree = self._snapshot_tree()
        current = store.current()
        return [tree.info(store.domain, n, current) for n in tree.ordered()]

    def snapshot_info(self, snapshot: str | None = None) -> SnapshotInfo:
        """One snapshot (None: the current one).

        :raises NotFoundError: no such snapshot, or no current one
        """
        store, tree = self._snapshot_tree()
        current = store.current()
        snapshot = snapshot or current
        if snapshot is None:
            raise NotFoundError(f"domain '{store.domain}' has no current snapshot")
        if snapshot not in tree.snaps:
            store.read(snapshot)  # raises NotFoundError
        return tree.info(store.domain, snapshot, current)

    def snapshot_children(self, snapshot: str | None, *, descendants: bool = False) -> list[str]:
        """The children (or all descendants) of *snapshot*; None: the roots."""
        _, tree = self._snapshot_tree()
        if snapshot is not None and snapshot not in tree.snaps:
            self._snapshot_store().read(snapshot)
        if descendants and snapshot is not None:
            return tree.descendants(snapshot)
        return tree.children(snapshot)

    def snapshot_xml(self, snapshot: str | None = None) -> str:
        """The ``<domainsnapshot>`` XML of *snapshot* (None: the current one)."""
        info = self.snapshot_info(snapshot)
        return self._snapshot_store().read(info.name).to_xml()

    def current_snapshot(self) -> str | None:
        """The current snapshot's name (None when there is none)."""
        return self._snapshot_store().current()

    def set_current_snapshot(self, snapshot: str) -> None:
        """Make *snapshot* the current one (``snapshot-current DOMAIN SNAP``)."""
        store = self._snapshot_store()
        store.read(snapshot)
        store.set_current(snapshot)

    def snapshot_edit(self, snapshot: str, xml: str | bytes, *, rename: bool = False) -> str:
        """Replace snapshot *snapshot*'s metadata with edited *xml* (``snapshot-edit``); a
        new ``<name>`` renames it with *rename* (:meth:`snapshot_rename`). Returns its name.

        :raises InvalidConfigError: a new name without *rename*
        """
        from pyvirt.model.snapshot import DomainSnapshot  # lazy

        new = DomainSnapshot.from_xml(xml).name
        if new != snapshot:
            if not rename:
                raise InvalidConfigError(
                    f"snapshot-edit must not rename '{snapshot}' to '{new}'", hint="use --rename"
                )
            return self.snapshot_rename(snapshot, xml)
        current = self.current_snapshot() == snapshot
        return self.snapshot_redefine(xml, current=current).name

    def snapshot_rename(self, snapshot: str, xml: str | bytes) -> str:
        """Store the edited *xml* of external snapshot *snapshot* under the new name it
        gives (``snapshot-edit --rename``); its children and the current pointer follow.

        :raises UnsupportedError: an internal snapshot (its name is a tag in the images)
        """
        from pyvirt.service.snapshot import rename  # lazy

        return rename.rename(self._domains, self._name, snapshot, xml)

    def snapshot_redefine(self, xml: str | bytes, *, current: bool = False) -> SnapshotInfo:
        """Replace a snapshot's metadata with *xml* (``snapshot-edit``), or record a new one."""
        return self.snapshot_create(xml, redefine=True, current=current)

    def snapshot_revert(
        self,
        snapshot: str | None = None,
        *,
        running: bool = False,
        paused: bool = False,
        force: bool = False,
    ) -> str:
        """Revert to *snapshot* (None: the current one); returns its name.

        :param running: run the guest afterwards (``--running``)
        :param paused: leave it paused afterwards (``--paused``)
        :param force: accepted like virsh's ``--force``
        """
        from pyvirt.service.snapshot import revert  # lazy

        return revert.revert(
            self._domains, self._name, snapshot, running=running, paused=paused, force=force
        )

    def snapshot_delete(
        self,
        snapshot: str | None = None,
        *,
        children: bool = False,
        children_only: bool = False,
        metadata: bool = False,
    ) -> list[str]:
        """Delete *snapshot* (None: the current one); returns what was deleted.

        :param children: its descendants too
        :param children_only: only its descendants
        :param metadata: only pyvirt's record; the images stay as they are
        """
        from pyvirt.service.snapshot import delete  # lazy

        if children and children_only:
            raise InvalidConfigError("--children and --children-only exclude each other")
        return delete.delete(
            self._domains,
            self._name,
            snapshot,
            children=children,
            children_only=children_only,
            metadata=metadata,
        )
