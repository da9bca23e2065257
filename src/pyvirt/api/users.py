"""The web console's users: ``CONFIG/daemon/users.json``, passwords stored as scrypt hashes.

``pyvirt user-add NAME`` (password on standard input), ``user-list`` and ``user-delete`` call
:func:`add_user`, :func:`list_users` and :func:`delete_user` directly when no daemon runs, or
the daemon's ``/api/v1/users`` routes (unix socket only) when one does. pyvirtd checks a login
with :class:`UserStore`, which rereads the file when it changes. Each password gets its own
random salt and the scrypt parameters are stored with the hash, so they can be raised later
without invalidating the stored ones. Writes are atomic (0600) under a lock file.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvirt.errors import AlreadyExistsError, InvalidConfigError, NotFoundError
from pyvirt.state.atomic import atomic_write
from pyvirt.state.locks import file_lock
from pyvirt.state.paths import StatePaths

__all__ = [
    "UserInfo",
    "UserStore",
    "add_user",
    "delete_user",
    "hash_password",
    "list_users",
    "users_file",
    "verify_password",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FORMAT = 1
#: scrypt cost: N=2**14, r=8, p=1 (16 MiB, ~50 ms): the figures RFC 7914 suggests for logins
_N, _R, _P = 1 << 14, 8, 1
MIN_PASSWORD = 8
MAX_PASSWORD = 1024


@dataclass(frozen=True)
class UserInfo:
    """One web console user: name, creation time (UTC, ISO 8601) and password hash."""

    name: str
    created: str
    password: str

    def to_json(self) -> dict[str, str]:
        """The public form (the hash stays on the daemon's host)."""
        return {"name": self.name, "created": self.created}


Where = StatePaths | Path | None


def users_file(where: Where = None) -> Path:
    """``CONFIG/daemon/users.json`` of a state directory."""
    if where is None:
        where = StatePaths.default()
    elif isinstance(where, Path):
        where = StatePaths.from_root(where)
    return where.daemon_config_dir / "users.json"


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$SALT$HASH`` (base64) of ``password`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True if ``password`` matches the stored hash (constant-time comparison)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode()[:MAX_PASSWORD * 4], salt=base64.b64decode(salt),
                             n=int(n), r=int(r), p=int(p), maxmem=64 << 20,
                             dklen=len(want))  # fmt: skip
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def _read(path: Path) -> list[UserInfo]:
    try:
        doc: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise InvalidConfigError(
            f"cannot read the user file {path}: {err}",
            hint="fix or remove it (removing it deletes every web console user)",
        ) from None
    try:
        return [UserInfo(str(u["name"]), str(u["created"]), str(u["password"]))
                for u in doc["users"]]  # fmt: skip
    except (KeyError, TypeError) as err:
        raise InvalidConfigError(
            f"the user file {path} is malformed: missing {err}",
            hint="fix or remove it (removing it deletes every web console user)",
        ) from None


def _write(path: Path, users: list[UserInfo]) -> None:
    doc = {
        "format": _FORMAT,
        "users": [{"name": u.name, "created": u.created, "password": u.password}
                  for u in users],
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode(), 0o600)


def _lock(path: Path) -> Any:
    return file_lock(path.with_name(".users.lock"), what="the user file")


def list_users(where: Where = None) -> list[UserInfo]:
    """The web console users, by name.

    :raises InvalidConfigError: the user file is unreadable
    """
    return sorted(_read(users_file(where)), key=lambda u: u.name)


def add_user(name: str, password: str, where: Where = None) -> UserInfo:
    """Add the user ``name`` with ``password`` (stored only as a salted scrypt hash).

    :raises InvalidConfigError: a bad name, or a password shorter than 8 characters
    :raises AlreadyExistsError: the user exists
    """
    if not _NAME.fullmatch(name):
        raise InvalidConfigError(
            f"invalid user name '{name}'",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidConfigError(
            f"the password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters",
            hint="give the password on standard input: echo PASSWORD | pyvirt user-add NAME",
        )
    path = users_file(where)
    hashed = hash_password(password)  # outside the lock: it takes a while on purpose
    with _lock(path):
        users = _read(path)
        if any(u.name == name for u in users):
            raise AlreadyExistsError(
                f"user '{name}' already exists",
                hint="pick another name, or delete it first with user-delete",
            )
        info = UserInfo(name, time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), hashed)
        _write(path, [*users, info])
    return info


def delete_user(name: str, where: Where = None) -> None:
    """Delete the user ``name`` (its open web sessions end at their next request).

    :raises NotFoundError: no such user
    """
    path = users_file(where)

    def unknown() -> NotFoundError:
        return NotFoundError(f"user '{name}' not found", hint="'pyvirt user-list' shows them")

    if all(u.name != name for u in _read(path)):
        raise unknown()  # before the lock: a refused request leaves no lock file behind
    with _lock(path):
        users = _read(path)
        kept = [u for u in users if u.name != name]
        if len(kept) == len(users):
            raise unknown()
        _write(path, kept)


class UserStore:
    """The daemon's view of the user file, reread whenever it changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_name: dict[str, str] = {}
        #: verified against when the user does not exist, so that both cases take as long
        self._dummy = hash_password(secrets.token_hex(8))

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        try:
            users = _read(self.path)
        except InvalidConfigError:
            users = []  # an unreadable file lets nobody in
        self._by_name = {u.name: u.password for u in users}
        self._stamp = stamp

    def exists(self, name: str) -> bool:
        """True if ``name`` is (still) a user."""
        self._refresh()
        return name in self._by_name

    def verify(self, name: str, password: str) -> bool:
        """True if ``name`` exists and ``password`` is its password."""
        self._refresh()
        stored = self._by_name.get(name)
        ok = verify_password(password, stored or self._dummy)
        return ok and stored is not None
