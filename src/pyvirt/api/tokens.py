"""pyvirtd's API tokens: created once, stored hashed in ``CONFIG/daemon/tokens.json``.

A token is ``pyvirt_`` followed by 32 random bytes (URL-safe base64). Only its SHA-256 is
kept, with a name and the creation time; the token itself is shown once, when it is created.
A salted slow hash is not needed: the secret has 256 bits of entropy, so the digest cannot be
reversed by guessing.

The daemon verifies requests with :class:`TokenStore` (which rereads the file when it
changes); ``pyvirt token-create/-list/-delete`` call :func:`create_token`,
:func:`list_tokens` and :func:`delete_token` directly when no daemon runs, or the daemon's
``/api/v1/tokens`` routes when one does. Writes are atomic (0600) under a lock file, so the
two never lose each other's changes.
"""

from __future__ import annotations

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
    "TOKEN_PREFIX",
    "TokenInfo",
    "TokenStore",
    "Where",
    "create_token",
    "delete_token",
    "hash_token",
    "list_tokens",
    "tokens_file",
]

#: every token starts with this (it makes a leaked token easy to recognise and grep for)
TOKEN_PREFIX = "pyvirt_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_FORMAT = 1


@dataclass(frozen=True)
class TokenInfo:
    """One stored token: its name, when it was created (UTC, ISO 8601) and its digest."""

    name: str
    created: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        """The public form (the digest stays on the daemon's host)."""
        return {"name": self.name, "created": self.created}


#: a state directory: its paths, its root directory (``PYVIRT_STATE_DIR``-style), or None for
#: this process's default
Where = StatePaths | Path | None


def tokens_file(where: Where = None) -> Path:
    """``CONFIG/daemon/tokens.json`` of a state directory."""
    if where is None:
        where = StatePaths.default()
    elif isinstance(where, Path):
        where = StatePaths.from_root(where)
    return where.daemon_config_dir / "tokens.json"


def hash_token(token: str) -> str:
    """The hex SHA-256 digest stored for ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def _read(path: Path) -> list[TokenInfo]:
    try:
        doc: Any = json.loads(path.read_bytes())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as err:
        raise InvalidConfigError(
            f"cannot read the token file {path}: {err}",
            hint="fix or remove it (removing it revokes every token)",
        ) from None
    try:
        return [TokenInfo(str(t["name"]), str(t["created"]), str(t["sha256"]))
                for t in doc["tokens"]]  # fmt: skip
    except (KeyError, TypeError) as err:
        raise InvalidConfigError(
            f"the token file {path} is malformed: missing {err}",
            hint="fix or remove it (removing it revokes every token)",
        ) from None


def _write(path: Path, tokens: list[TokenInfo]) -> None:
    doc = {
        "format": _FORMAT,
        "tokens": [{"name": t.name, "created": t.created, "sha256": t.sha256} for t in tokens],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(doc, indent=1) + "\n").encode(), 0o600)


def _lock(path: Path) -> Any:
    return file_lock(path.with_name(".tokens.lock"), what="the token file")


def list_tokens(where: Where = None) -> list[TokenInfo]:
    """The stored tokens, by name.

    :raises InvalidConfigError: the token file is unreadable
    """
    return sorted(_read(tokens_file(where)), key=lambda t: t.name)


def create_token(name: str, where: Where = None) -> tuple[TokenInfo, str]:
    """Create a token called ``name``; returns its record and the secret (shown once).

    :raises InvalidConfigError: ``name`` is not 1-64 letters, digits, '.', '_' or '-'
    :raises AlreadyExistsError: a token has that name
    """
    if not _NAME.fullmatch(name):
        raise InvalidConfigError(
            f"invalid token name '{name}'",
            hint="use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    path = tokens_file(where)
    with _lock(path):
        tokens = _read(path)
        if any(t.name == name for t in tokens):
            raise AlreadyExistsError(
                f"token '{name}' already exists",
                hint="pick another name, or delete it first with token-delete",
            )
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        info = TokenInfo(name, created, hash_token(secret))
        _write(path, [*tokens, info])
    return info, secret


def delete_token(name: str, where: Where = None) -> None:
    """Delete (revoke) the token ``name``.

    :raises NotFoundError: no token has that name
    """
    path = tokens_file(where)

    def unknown() -> NotFoundError:
        return NotFoundError(
            f"token '{name}' not found", hint="'pyvirt token-list' shows the tokens"
        )

    if all(t.name != name for t in _read(path)):
        raise unknown()  # before the lock: a refused request leaves no lock file behind
    with _lock(path):
        tokens = _read(path)
        kept = [t for t in tokens if t.name != name]
        if len(kept) == len(tokens):
            raise unknown()
        _write(path, kept)


class TokenStore:
    """The daemon's view of the token file: reread whenever its mtime, size or inode
    changes, so tokens created or deleted by ``pyvirt`` without the daemon apply at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._by_digest: dict[str, str] = {}

    def _refresh(self) -> None:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = (0, 0, 0)
        if stamp == self._stamp:
            return
        try:
            tokens = _read(self.path)
        except InvalidConfigError:
            tokens = []  # an unreadable file authenticates nobody (the daemon logs 401s)
        self._by_digest = {t.sha256: t.name for t in tokens}
        self._stamp = stamp

    def verify(self, token: str) -> str | None:
        """The name of the token ``token``, or None if it is not a valid token."""
        self._refresh()
        digest = hash_token(token)
        for stored, name in self._by_digest.items():
            if hmac.compare_digest(stored, digest):
                return name
        return None
