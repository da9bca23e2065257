"""Revisions of stored network and pool definitions: a content hash used as an HTTP ETag.

The domain store has its own (:func:`pyvirt.state.domains.revision_of`); this is the same hash
for the other definition files, with the check a redefinition makes under its lock.
"""

from __future__ import annotations

from pathlib import Path

from pyvirt.errors import InvalidStateError
from pyvirt.state.domains import revision_of

__all__ = ["check_revision", "revision_of"]


def check_revision(kind: str, name: str, path: Path, expect: str) -> None:
    """Refuse to go on unless ``path`` holds the definition at revision ``expect``.

    :raises InvalidStateError: it changed (or was removed) since it was read
    """
    try:
        current = revision_of(path.read_bytes())
    except FileNotFoundError:
        current = None
    if current != expect:
        raise InvalidStateError(
            f"{kind} '{name}' changed underneath this command; retry",
            hint="another command or client changed its definition meanwhile",
        )
