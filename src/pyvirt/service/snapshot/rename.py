"""``snapshot-edit --rename``: give an external snapshot another name.

Only the metadata names an external snapshot (its overlays and memory file are paths), so it
can be renamed: the record is written under the new name, its children are pointed at it, the
current pointer follows, then the old record goes. An internal snapshot's name is its tag
inside every qcow2 image, which QEMU cannot rename: it is refused. A ``--clone`` is refused
too: two records of one external snapshot would share its overlay files, and deleting either
(a block commit into the base) would break the other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.service.snapshot.store import SnapshotStore, location

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy``: the snapshot model loads with the verb.


def rename(mgr: DomainManager, ident: str, old_name: str, xml: str | bytes) -> str:
    """Store edited *xml* of snapshot *old_name* under the new ``<name>`` it gives.

    :returns: the new name
    :raises InvalidConfigError: the XML keeps the old name or gives none
    :raises UnsupportedError: an internal (or mixed) snapshot
    :raises AlreadyExistsError: the new name is taken
    """
    from pyvirt.model.snapshot import DomainSnapshot  # lazy

    snap = DomainSnapshot.from_xml(xml)
    new_name = snap.name
    if not new_name or new_name == old_name:
        raise InvalidConfigError(
            f"--rename needs a new <name> for snapshot '{old_name}'",
            hint="change the <name> element in the editor",
        )
    name = mgr.resolve(ident)
    with mgr.locked(name):
        store = SnapshotStore(mgr.paths, name)
        old = store.read(old_name)
        where = location(old)
        if where in ("internal", "mixed"):
            raise UnsupportedError(
                f"snapshot '{old_name}' is {where}: its name is its tag inside the qcow2 "
                "images, which cannot be renamed",
                hint="edit its description instead; external snapshots can be renamed",
            )
        snap.parent = old.parent
        snap.creation_time = old.creation_time
        store.write(snap, new=True)
        for record in store.all().values():
            if record.parent == old_name and record.name != new_name:
                record.parent = new_name
                store.write(record)
        was_current = store.current() == old_name
        store.remove(old_name)
        if was_current:
            store.set_current(new_name)
    return str(new_name)
