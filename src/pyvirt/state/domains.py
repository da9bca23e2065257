"""The persistent domain store: one XML file per defined domain plus autostart markers.

Only names that are safe as file names reach this module (the service layer validates them),
but every entry point re-checks so that a bug upstream can never write outside the store.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.errors import InvalidConfigError
from pyvirt.state.atomic import atomic_write
from pyvirt.state.modes import check_trusted_file, is_trusted_file
from pyvirt.state.paths import StatePaths


def check_name(name: str, *, kind: str = "domain") -> str:
    """Return ``name`` if it is usable as an object name, else raise.

    :raises InvalidConfigError: for empty names, '/', '.' or '..', control characters
    """
    if not name:
        raise InvalidConfigError(f"{kind} name must not be empty")
    if "/" in name or name in (".", "..") or "\0" in name:
        raise InvalidConfigError(
            f"{kind} name '{name}' is not valid: it must not contain '/' or be '.' or '..'"
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidConfigError(f"{kind} name {name!r} contains control characters")
    if len(name.encode()) > 200:
        raise InvalidConfigError(f"{kind} name is longer than 200 bytes")
    return name


class DomainStore:
    """Reads and writes ``CONFIG/qemu/NAME.xml`` and ``CONFIG/qemu/autostart/NAME``."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    def names(self) -> list[str]:
        """Names of all persistent domains, sorted."""
        try:
            entries = os.listdir(self.paths.domain_config_dir)
        except FileNotFoundError:
            return []
        directory = self.paths.domain_config_dir
        return sorted(
            e[:-4]
            for e in entries
            if e.endswith(".xml") and not e.startswith(".") and is_trusted_file(directory / e)
        )

    def exists(self, name: str) -> bool:
        return self.paths.domain_xml(check_name(name)).is_file()

    def read(self, name: str) -> str | None:
        """The stored XML of ``name``, or None if it is not defined.

        :raises InvalidStateError: the file is not root's or is writable by others (planted)
        """
        data = self.read_bytes(name)
        return None if data is None else data.decode()

    def read_bytes(self, name: str) -> bytes | None:
        """The stored XML of ``name`` as bytes, or None if it is not defined.

        :raises InvalidStateError: the file is not root's or is writable by others (planted)
        """
        path = self.paths.domain_xml(check_name(name))
        try:
            with open(path, "rb") as f:
                check_trusted_file(path, os.fstat(f.fileno()))
                return f.read()
        except FileNotFoundError:
            return None

    def write(self, name: str, xml: str) -> None:
        """Atomically store the definition of ``name``."""
        path = self.paths.domain_xml(check_name(name))
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, xml.encode(), mode=0o600)

    def delete(self, name: str) -> None:
        """Remove the definition and the autostart marker of ``name`` (if present)."""
        self.paths.domain_xml(check_name(name)).unlink(missing_ok=True)
        self.set_autostart(name, False)
        (self.paths.cache / "plans" / f"{name}.json").unlink(missing_ok=True)

    # UUID index: CONFIG/qemu/.uuids/UUID holds the name, so that define and lookups by UUID
    # do not parse every definition.
    def name_for_uuid(self, uuid: str) -> str | None:
        """The persistent domain that owns ``uuid``, or None."""
        try:
            name = (self.paths.uuid_index_dir / uuid.lower()).read_text()
        except (FileNotFoundError, NotADirectoryError):
            return None
        return name if self.exists(name) else None

    def uuids(self) -> dict[str, str]:
        """Map of name -> UUID for every indexed persistent domain."""
        out: dict[str, str] = {}
        try:
            entries = os.listdir(self.paths.uuid_index_dir)
        except FileNotFoundError:
            return out
        for uuid in entries:
            try:
                out[(self.paths.uuid_index_dir / uuid).read_text()] = uuid
            except FileNotFoundError:
                continue
        return out

    def index_uuid(self, name: str, uuid: str) -> None:
        """Record that ``uuid`` belongs to ``name`` (caller holds the namespace lock)."""
        path = self.paths.uuid_index_dir / uuid.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, check_name(name).encode(), mode=0o600, sync=False)

    def unindex_uuid(self, uuid: str) -> None:
        (self.paths.uuid_index_dir / uuid.lower()).unlink(missing_ok=True)

    def autostart(self, name: str) -> bool:
        return (self.paths.autostart_dir / check_name(name)).exists()

    def set_autostart(self, name: str, enabled: bool) -> None:
        marker = self.paths.autostart_dir / check_name(name)
        if enabled:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)


def path_is_safe(path: Path) -> bool:
    """True if ``path`` has no '..' component."""
    return ".." not in path.parts
