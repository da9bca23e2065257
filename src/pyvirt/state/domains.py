"""The persistent domain store: one XML file per defined domain plus autostart markers.

Only names that are safe as file names reach this module (the service layer validates them),
but every entry point re-checks so that a bug upstream can never write outside the store.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

from pyvirt.errors import InvalidConfigError, InvalidStateError
from pyvirt.state.atomic import atomic_write
from pyvirt.state.modes import check_trusted_file, is_trusted_stat, trusted_owners
from pyvirt.state.paths import StatePaths

_UUID_RE = re.compile(rb"<uuid>\s*([0-9a-fA-F-]{32,36})\s*</uuid>")

#: marker in the UUID index directory: the index was (re)built from the definitions by a pyvirt
#: that writes index entries before definitions, so every definition's UUID is indexed
INDEX_STAMP = ".complete-v2"
#: the namespace intent log (a rename in progress), replayed by the next namespace holder
INTENT_FILE = ".intent.json"


def revision_of(data: bytes) -> str:
    """The revision of a definition's bytes: a short content hash (an ETag)."""
    import hashlib  # local import: OpenSSL's hashlib costs ~2.5 ms, only revisions need it

    return hashlib.sha256(data).hexdigest()[:16]


def uuid_in(xml: bytes) -> str | None:
    """The ``<uuid>`` of a stored definition, lower-cased, without parsing the XML."""
    match = _UUID_RE.search(xml)
    return match.group(1).decode().lower() if match else None


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
        """Names of all persistent domains, sorted (definitions :func:`check_trusted_file`
        refuses are left out: one directory scan and one ``stat`` per definition)."""
        directory = self.paths.domain_config_dir
        owners = trusted_owners(directory)
        out = []
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.endswith(".xml") and not name.startswith("."):
                        try:
                            st = entry.stat()
                        except OSError:
                            continue  # gone, or a dangling link
                        if is_trusted_stat(st, owners):
                            out.append(name[:-4])
        except FileNotFoundError:
            return []
        out.sort()
        return out

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

    def read_revision(self, name: str) -> tuple[bytes, str] | None:
        """The stored XML of ``name`` and its revision (:func:`revision_of`), or None."""
        data = self.read_bytes(name)
        return None if data is None else (data, revision_of(data))

    def revision(self, name: str) -> str | None:
        """The revision of ``name``'s definition, or None if it is not defined."""
        data = self.read_bytes(name)
        return None if data is None else revision_of(data)

    def check_revision(self, name: str, expect: str | None) -> None:
        """Refuse to go on if ``name``'s definition is no longer at revision ``expect``
        (caller holds the domain lock). ``expect`` None means "not defined".

        :raises InvalidStateError: it changed since it was read
        """
        if self.revision(name) != expect:
            raise InvalidStateError(
                f"domain '{name}' changed underneath this command; retry",
                hint="another command or client changed its definition meanwhile",
            )

    def write(self, name: str, xml: str, *, expect_revision: str | bool | None = False) -> None:
        """Atomically store the definition of ``name`` (its new revision is
        ``revision_of(xml.encode())``).

        :param expect_revision: the revision the caller read (None: it was not defined); the
            write is refused if the file changed since (caller holds the domain lock).
            False: no check.
        :raises InvalidStateError: the revision does not match
        """
        path = self.paths.domain_xml(check_name(name))
        if expect_revision is not False:
            assert expect_revision is None or isinstance(expect_revision, str)
            self.check_revision(name, expect_revision)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, xml.encode(), mode=0o600)

    def delete(self, name: str) -> None:
        """Remove the definition and the autostart marker of ``name`` (if present)."""
        self.paths.domain_xml(check_name(name)).unlink(missing_ok=True)
        self.set_autostart(name, False)
        (self.paths.cache / "plans" / f"{name}.json").unlink(missing_ok=True)

    # UUID index: CONFIG/qemu/.uuids/UUID holds the name, so that define and lookups by UUID
    # do not parse every definition. Entries are written before the definition and removed
    # after it, so every definition's UUID is indexed even after a crash; an entry may be
    # stale (its name gone or holding another UUID), so every answer is checked against the
    # definition it names. Hidden entries (temporary files) are never read.
    def _indexed_name(self, uuid: str) -> str | None:
        try:
            return (self.paths.uuid_index_dir / uuid.lower()).read_text()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None

    def _owns(self, name: str, uuid: str) -> bool:
        try:
            data = self.read_bytes(name)
        except InvalidConfigError:
            return False
        return data is not None and uuid_in(data) == uuid.lower()

    def name_for_uuid(self, uuid: str) -> str | None:
        """The persistent domain that owns ``uuid``, or None (the index is checked against the
        definition; a stale or missing entry falls back to a scan and is repaired)."""
        if not re.fullmatch(r"[0-9a-fA-F-]{32,36}", uuid):
            return None
        name = self._indexed_name(uuid)
        if name is not None and self._owns(name, uuid):
            return name
        if name is None and self.index_complete():
            return None  # entries are written before definitions: no definition has it
        return self._scan_for(uuid)  # a stale or wrong entry, or an old index: scan, repair

    def _scan_for(self, uuid: str) -> str | None:
        """Find ``uuid`` by reading every definition; repairs its index entry."""
        for name in self.names():
            if self._owns(name, uuid):
                with contextlib.suppress(OSError):  # a read-only caller still gets the answer
                    self.index_uuid(name, uuid)
                return name
        return None

    def index_complete(self) -> bool:
        """Whether the index was built by a pyvirt that keeps it complete."""
        return (self.paths.uuid_index_dir / INDEX_STAMP).exists()

    def rebuild_index(self) -> None:
        """Rebuild the UUID index from the definitions (caller holds the namespace lock)."""
        index = self.paths.uuid_index_dir
        index.mkdir(parents=True, exist_ok=True)
        wanted: dict[str, str] = {}
        for name in self.names():
            data = self.read_bytes(name)
            uuid = uuid_in(data) if data is not None else None
            if uuid is not None:
                wanted[uuid] = name
        for entry in os.listdir(index):
            if entry.startswith(".") or wanted.get(entry) is None:
                (index / entry).unlink(missing_ok=True)
        for uuid, name in wanted.items():
            if self._indexed_name(uuid) != name:
                self.index_uuid(name, uuid)
        atomic_write(index / INDEX_STAMP, b"", mode=0o600)

    def uuids(self) -> dict[str, str]:
        """Map of name -> UUID for every indexed persistent domain (a name indexed under two
        UUIDs after a crash is settled by its definition)."""
        out: dict[str, str] = {}
        try:
            entries = os.listdir(self.paths.uuid_index_dir)
        except FileNotFoundError:
            return out
        twice: set[str] = set()
        for uuid in entries:
            if uuid.startswith("."):
                continue
            name = self._indexed_name(uuid)
            if name is None:
                continue
            if name in out:
                twice.add(name)
            out[name] = uuid
        for name in twice:
            data = self.read_bytes(name)
            real = uuid_in(data) if data is not None else None
            if real is None:
                del out[name]
            else:
                out[name] = real
        return out

    def index_uuid(self, name: str, uuid: str) -> None:
        """Record that ``uuid`` belongs to ``name`` (caller holds the namespace lock)."""
        path = self.paths.uuid_index_dir / uuid.lower()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, check_name(name).encode(), mode=0o600, sync=False)

    def unindex_uuid(self, uuid: str) -> None:
        (self.paths.uuid_index_dir / uuid.lower()).unlink(missing_ok=True)

    # -- the namespace intent log -----------------------------------------------------------
    def write_intent(self, intent: dict[str, object]) -> None:
        """Record a multi-step namespace change before its first step (caller holds the
        namespace lock); :meth:`replay_intent` finishes it if the command dies."""
        self.paths.domain_config_dir.mkdir(parents=True, exist_ok=True)
        body = json.dumps(intent, sort_keys=True).encode()
        atomic_write(self.paths.domain_config_dir / INTENT_FILE, body, mode=0o600)

    def clear_intent(self) -> None:
        """The change recorded by :meth:`write_intent` is complete."""
        (self.paths.domain_config_dir / INTENT_FILE).unlink(missing_ok=True)

    def has_intent(self) -> bool:
        """Whether a namespace change was left unfinished (one stat)."""
        return (self.paths.domain_config_dir / INTENT_FILE).exists()

    def replay_intent(self) -> None:
        """Finish a namespace change a killed command left (caller holds the namespace
        lock). Only renames are logged: roll forward (write the new definition if missing,
        index it, move autostart, remove the old one)."""
        try:
            intent = json.loads((self.paths.domain_config_dir / INTENT_FILE).read_bytes())
        except FileNotFoundError:
            return
        except ValueError:  # torn write cannot happen (atomic); junk: drop it
            self.clear_intent()
            return
        if isinstance(intent, dict) and intent.get("op") == "rename":
            self._finish_rename(
                str(intent["old"]),
                str(intent["new"]),
                str(intent["uuid"]),
                str(intent["xml"]),
                bool(intent.get("autostart")),
            )
        self.clear_intent()

    def _finish_rename(self, old: str, new: str, uuid: str, xml: str, autostart: bool) -> None:
        self.index_uuid(new, uuid)
        if self.read_bytes(new) != xml.encode():
            self.write(new, xml)
        if autostart:
            self.set_autostart(new, True)
        self.delete(old)
        self.paths.domain_last_state(old).unlink(missing_ok=True)

    def rename(self, old: str, new: str, uuid: str, xml: str) -> None:
        """Rename domain ``old`` to ``new`` in one logged step (caller holds the namespace
        lock and both domain locks): a command killed midway is finished by the next one."""
        check_name(old)
        check_name(new)
        autostart = self.autostart(old)
        self.write_intent(
            {"op": "rename", "old": old, "new": new, "uuid": uuid, "xml": xml,
             "autostart": autostart}
        )  # fmt: skip
        self._finish_rename(old, new, uuid, xml, autostart)
        self.clear_intent()

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
