"""Checkpoint and backup verbs of a domain (virsh's ``checkpoint-*`` and ``backup-*``),
mixed into :class:`~pyvirt.api.domain.Domain`.

Checkpoints are libvirt's ``<domaincheckpoint>`` XML, kept as persistent dirty bitmaps in the
disks' qcow2 images; backups are ``<domainbackup mode='push'|'pull'>``: a copy into target
files, or an NBD export. :class:`CheckpointInfo` is what listings return,
:class:`BackupJobInfo` what a backup job reports. See ``docs/snapshots.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyvirt.api.domain_base import DomainHandle
from pyvirt.errors import InvalidConfigError

if TYPE_CHECKING:
    from pyvirt.progress import CancelToken, Progress
    from pyvirt.service.checkpoint.backup import BackupJobInfo, BackupStarted
    from pyvirt.service.checkpoint.store import CheckpointInfo, CheckpointStore, CheckpointTree

__all__ = ["BackupJobInfo", "BackupStarted", "CheckpointInfo", "DomainCheckpoints"]

# lazy: function-local imports marked ``# lazy`` (kept lazy for CLI start-up): lxml, QMP and
# the checkpoint code load only for checkpoint and backup verbs.


def __getattr__(name: str) -> Any:
    """Re-export the value types without importing the checkpoint code at start-up."""
    if name == "CheckpointInfo":
        from pyvirt.service.checkpoint.store import CheckpointInfo  # lazy

        return CheckpointInfo
    if name in ("BackupJobInfo", "BackupStarted"):
        from pyvirt.service.checkpoint import backup  # lazy

        return getattr(backup, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class DomainCheckpoints(DomainHandle):
    """Checkpoint and backup verbs of :class:`~pyvirt.api.domain.Domain`."""

    def _checkpoint_tree(self) -> tuple[CheckpointStore, CheckpointTree]:
        from pyvirt.service.checkpoint.store import CheckpointStore, CheckpointTree  # lazy

        store = CheckpointStore(self._service.paths, self._domains.resolve(self._name))
        return store, CheckpointTree(store.all())

    # checkpoints ---------------------------------------------------------------------------
    def checkpoint_create(self, xml: str | bytes | None = None, *, redefine: bool = False) -> str:
        """Create a checkpoint described by ``<domaincheckpoint>`` *xml* (None: defaults),
        like ``checkpoint-create``; returns its name.

        :param redefine: only record *xml* (bitmaps that exist in the images)
        :raises UnsupportedError: a raw disk (bitmaps need qcow2)
        :raises AlreadyExistsError: the name is taken
        """
        from pyvirt.model.checkpoint import DomainCheckpoint  # lazy
        from pyvirt.service.checkpoint import create  # lazy

        cp = DomainCheckpoint.from_xml(xml) if xml is not None else DomainCheckpoint()
        return str(create.create(self._domains, self._name, cp, redefine=redefine).name)

    def checkpoint_edit(self, checkpoint: str, xml: str | bytes) -> str:
        """Replace checkpoint *checkpoint*'s metadata with edited *xml* (``checkpoint-edit``):
        its description may change; its name, parent and disks (the bitmaps in the images)
        may not. Returns its name.

        :raises InvalidConfigError: the edit renames it or changes what it tracks
        """
        from pyvirt.errors import InvalidConfigError  # lazy
        from pyvirt.model.checkpoint import DomainCheckpoint  # lazy
        from pyvirt.service.checkpoint import create  # lazy

        store, _ = self._checkpoint_tree()
        old = store.read(checkpoint)
        new = DomainCheckpoint.from_xml(xml)
        if new.name != old.name:
            raise InvalidConfigError(
                f"checkpoint-edit must not rename '{old.name}' to '{new.name}'",
                hint="a checkpoint's name is its bitmaps' name in the disk images",
            )
        if new.parent != old.parent or new.bitmaps() != old.bitmaps():
            raise InvalidConfigError(
                f"checkpoint-edit of '{old.name}' must not change its parent or disks",
                hint="only the description can change; create a new checkpoint instead",
            )
        new.creation_time = old.creation_time
        return str(create.create(self._domains, self._name, new, redefine=True).name)

    @staticmethod
    def checkpoint_xml_for(
        name: str | None = None, description: str | None = None, diskspecs: Sequence[str] = ()
    ) -> str:
        """The ``<domaincheckpoint>`` XML of ``checkpoint-create-as``'s options
        (``--diskspec vda[,checkpoint=bitmap|no][,bitmap=NAME]``).

        :raises InvalidConfigError: a malformed diskspec
        """
        from pyvirt.service.checkpoint.bitmaps import build  # lazy

        return build(name, description, list(diskspecs)).to_xml()

    def checkpoint_create_as(
        self,
        name: str | None = None,
        description: str | None = None,
        *,
        diskspecs: Sequence[str] = (),
    ) -> str:
        """Create a checkpoint from options, like ``checkpoint-create-as``; returns its name."""
        return self.checkpoint_create(self.checkpoint_xml_for(name, description, diskspecs))

    def checkpoints(self) -> list[CheckpointInfo]:
        """Every checkpoint, each root followed by its subtree (parents before children)."""
        store, tree = self._checkpoint_tree()
        return [tree.info(store.domain, n) for n in tree.ordered()]

    def checkpoint_info(self, checkpoint: str) -> CheckpointInfo:
        """One checkpoint.

        :raises NotFoundError: no such checkpoint
        """
        store, tree = self._checkpoint_tree()
        if checkpoint not in tree.cps:
            store.read(checkpoint)  # raises NotFoundError
        return tree.info(store.domain, checkpoint)

    def checkpoint_xml(
        self, checkpoint: str, *, size: bool = False, no_domain: bool = False
    ) -> str:
        """The ``<domaincheckpoint>`` XML of *checkpoint*.

        :param size: add each disk's ``size`` (bytes written since; the domain must run)
        :param no_domain: leave out the embedded ``<domain>``
        """
        store, _ = self._checkpoint_tree()
        cp = store.read(checkpoint)
        if size:
            from pyvirt.service.checkpoint.delete import dirty_sizes  # lazy

            sizes = dirty_sizes(self._domains, self._name, checkpoint)
            for disk in cp.disks:
                if disk.name in sizes:
                    disk.size = sizes[disk.name]
        if no_domain:
            cp.domain_xml = None
        return cp.to_xml()

    def checkpoint_children(
        self, checkpoint: str | None, *, descendants: bool = False
    ) -> list[str]:
        """The children (or all descendants) of *checkpoint*; None: the roots."""
        store, tree = self._checkpoint_tree()
        if checkpoint is not None and checkpoint not in tree.cps:
            store.read(checkpoint)
        if descendants and checkpoint is not None:
            return tree.descendants(checkpoint)
        return tree.children(checkpoint)

    def checkpoint_delete(
        self,
        checkpoint: str,
        *,
        children: bool = False,
        children_only: bool = False,
        metadata: bool = False,
    ) -> list[str]:
        """Delete *checkpoint* (its bitmaps merge into its parent's); returns what was
        deleted.

        :param children: its descendants too
        :param children_only: only its descendants
        :param metadata: only pyvirt's record; the bitmaps stay in the images
        """
        from pyvirt.service.checkpoint import delete  # lazy

        if children and children_only:
            raise InvalidConfigError("--children and --children-only exclude each other")
        return delete.delete(self._domains, self._name, checkpoint, children=children,
                             children_only=children_only, metadata=metadata)  # fmt: skip

    # backups -------------------------------------------------------------------------------
    def backup_begin(
        self,
        backup_xml: str | bytes | None = None,
        checkpoint_xml: str | bytes | None = None,
        *,
        reuse_external: bool = False,
        bandwidth: int | None = None,
    ) -> BackupStarted:
        """Start a backup job described by ``<domainbackup>`` *backup_xml* (None: a full push
        backup of every disk next to its image), like ``backup-begin``; with
        *checkpoint_xml*, create that checkpoint at the same point in time. A push backup
        copies at most *bandwidth* bytes per second (None: no limit).

        A lost or inconsistent bitmap makes an incremental backup full; the result's
        ``warnings`` say so.

        :raises InvalidStateError: the domain is not running, or a backup job is active
        """
        from pyvirt.model.checkpoint import DomainBackup, DomainCheckpoint  # lazy
        from pyvirt.service.checkpoint import backup  # lazy

        spec = DomainBackup.from_xml(backup_xml) if backup_xml is not None else DomainBackup()
        cp = DomainCheckpoint.from_xml(checkpoint_xml) if checkpoint_xml is not None else None
        return backup.begin(self._domains, self._name, spec, cp, reuse_external=reuse_external,
                            bandwidth=bandwidth)  # fmt: skip

    def backup_xml(self) -> str:
        """The ``<domainbackup>`` XML of the active backup job (``backup-dumpxml``)."""
        from pyvirt.service.checkpoint import backup  # lazy

        return backup.backup_xml(self._domains, self._name)

    def backup_job_info(self, *, completed: bool = False) -> BackupJobInfo | None:
        """The active backup job (None: none; a push backup that ended is finished here), or
        with *completed* the last finished one."""
        from pyvirt.service.checkpoint import backup  # lazy

        if completed:
            return backup.completed(self._domains, self._name)
        return backup.poll(self._domains, self._name)

    def backup_wait(
        self,
        *,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
        timeout: float | None = None,
    ) -> BackupJobInfo:
        """Wait for the push backup to end; *cancel* or *timeout* aborts it.

        :raises CancelledError: cancelled or timed out (the partial targets are removed)
        :raises OperationFailedError: the backup failed
        """
        from pyvirt.service.checkpoint import backup  # lazy

        return backup.wait(self._domains, self._name, progress=progress, cancel=cancel,
                           timeout=timeout)  # fmt: skip

    def backup_end(self) -> BackupJobInfo:
        """End the backup job (``domjobabort``): a pull backup's export stops, a push
        backup is cancelled and its partial targets removed.

        :raises InvalidStateError: no backup job is active
        """
        from pyvirt.service.checkpoint import backup  # lazy

        return backup.abort(self._domains, self._name)

    def has_backup_job(self) -> bool:
        """Whether a backup job is recorded for the domain (cheap: one stat)."""
        from pyvirt.service.checkpoint import backup  # lazy

        return backup.active(self._domains, self._domains.resolve(self._name))
