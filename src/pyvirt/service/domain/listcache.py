"""The shut-off rows of ``list``, kept while the directories they come from are unchanged.

A long-lived connection (pyvirtd's) lists the same thousand definitions again and again; each
listing costs a ``stat`` and a status object per definition. The shut-off rows depend only on
directory entries: the definitions (``CONFIG/qemu``), the run root (which domains run, their
``NAME.last.json``), the autostart markers and, with UUIDs, the UUID index. Every change to
those is a create, unlink or rename in one of these directories (definitions and records are
written atomically), so the directories' ``stat`` (inode, mtime, ctime) tells whether a cached
listing is still right: four ``stat`` calls instead of a thousand, whoever wrote (this
process, an embedded CLI, a reaper).

Directory timestamps come from the kernel's coarse clock (one tick, at most 10 ms): two changes
within one tick can leave the same mtime. A listing is therefore kept only if no directory
changed within :data:`RACY_NS` before it was taken (the "racy clean" rule of git's index).

Not seen: a definition's mode or owner changed in place by its (trusted) owner; the file is
still checked whenever it is read.
"""

from __future__ import annotations

import os
import time

from pyvirt.service.domain.types import DomainStatus
from pyvirt.state.paths import StatePaths

__all__ = ["RACY_NS", "DefinedRows"]

#: a directory changed this recently (ns) may change again with the same mtime: not cached
RACY_NS = 50_000_000

Key = tuple[tuple[int, int, int] | None, ...]


class DefinedRows:
    """The cached shut-off rows of one connection, one listing with and one without UUIDs."""

    def __init__(self, paths: StatePaths) -> None:
        self._dirs = (
            paths.domain_config_dir,
            paths.domain_run_root,
            paths.autostart_dir,
            paths.uuid_index_dir,
        )
        self._rows: dict[bool, tuple[Key, list[DomainStatus]]] = {}

    def key(self) -> Key | None:
        """The directories' identity now; ``None`` if one changed too recently to tell."""
        limit = time.time_ns() - RACY_NS
        out: list[tuple[int, int, int] | None] = []
        for directory in self._dirs:
            try:
                st = os.stat(directory)
            except FileNotFoundError:
                out.append(None)
                continue
            if st.st_mtime_ns > limit or st.st_ctime_ns > limit:
                return None
            out.append((st.st_ino, st.st_mtime_ns, st.st_ctime_ns))
        return tuple(out)

    def get(self, uuids: bool, key: Key | None) -> list[DomainStatus] | None:
        """The rows cached under ``key`` (``None``: none, or they are stale)."""
        if key is None:
            return None
        hit = self._rows.get(uuids)
        return hit[1] if hit is not None and hit[0] == key else None

    def put(self, uuids: bool, key: Key | None, rows: list[DomainStatus]) -> None:
        """Keep ``rows``, listed under ``key`` (taken before the listing started)."""
        if key is not None:
            self._rows[uuids] = (key, rows)
