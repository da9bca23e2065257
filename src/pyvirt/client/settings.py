"""What a remote connection authenticates and verifies with: the URI's parameters, the
environment, and the client configuration file.

The file is ``$PYVIRT_CLIENT_CONFIG``, else ``~/.config/pyvirt/client.toml``
(``$XDG_CONFIG_HOME`` honoured)::

    [default]                                   # every remote URI
    ca = "/etc/pyvirt/ca.pem"

    [uri."pyvirt+tls://kvm1.example.org/"]      # one daemon (port 16514 implied)
    token = "pyvirt_..."                        # or token_file = "kvm1.token"
    fingerprint = "SHA256:AB:CD:..."            # pin its certificate instead of a CA
    cert = "me.pem"                             # a client certificate and its key
    key = "me.key"

Keys: ``token``, ``token_file``, ``ca``, ``cert``, ``key``, ``fingerprint``, ``insecure``;
relative paths are relative to the file's directory. For each key the first of these wins:
the URI's query (``?ca=``, ``?cert=``, ``?key=``, ``?fingerprint=``, ``?insecure=1``; never a
token, which would end up in shell histories), the environment (``PYVIRT_TOKEN``,
``PYVIRT_CA``), the file's entry for the URI, its ``[default]``. A file holding a token must
not be readable by group or others (like ssh's keys).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyvirt.client.uri import TLS_PORT, Target
from pyvirt.errors import InvalidConfigError

__all__ = ["KEYS", "Settings", "config_path", "settings_for"]

#: the keys of a file entry, and the URI parameters with the same name
KEYS = ("token", "token_file", "ca", "cert", "key", "fingerprint", "insecure")
_URI_KEYS = ("ca", "cert", "key", "fingerprint", "insecure")
_PATH_KEYS = ("token_file", "ca", "cert", "key")
_TRUE = ("1", "yes", "true", "on")


@dataclass(frozen=True)
class Settings:
    """The resolved settings of one remote target."""

    token: str | None = None
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    fingerprint: str | None = None
    insecure: bool = False


def config_path() -> Path:
    """The client configuration file (it need not exist)."""
    env = os.environ.get("PYVIRT_CLIENT_CONFIG")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pyvirt" / "client.toml"


def _norm(uri: str) -> str:
    """``scheme://host:port`` of a URI (user, path and query do not select an entry)."""
    from urllib.parse import urlsplit

    parts = urlsplit(uri)
    port = parts.port or (TLS_PORT if parts.scheme == "pyvirt+tls" else 22)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def _load(path: Path) -> dict[str, Any]:
    import tomllib  # local imports: keep CLI start-up fast

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as err:
        raise InvalidConfigError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        doc = tomllib.loads(data.decode())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InvalidConfigError(f"cannot parse {path}: {err}", hint="fix it (TOML)") from None
    entries = [doc.get("default", {}), *dict(doc.get("uri", {})).values()]
    for entry in entries:
        if not isinstance(entry, dict):
            raise InvalidConfigError(f'{path}: [default] and [uri."URI"] must be tables')
        unknown = set(entry) - set(KEYS)
        if unknown:
            raise InvalidConfigError(f"unknown key '{sorted(unknown)[0]}' in {path}",
                                     hint=f"known keys: {', '.join(KEYS)}")  # fmt: skip
    if any("token" in e for e in entries) and os.stat(path).st_mode & 0o077:
        raise InvalidConfigError(
            f"{path} holds a token and can be read by other users",
            hint=f"chmod 600 {path}",
        )
    return dict(doc)


def _entry(doc: dict[str, Any], uri: str, base: Path) -> dict[str, Any]:
    """The file's settings for ``uri``: its own entry over ``[default]``."""
    merged = dict(doc.get("default", {}))
    want = _norm(uri)
    for key, entry in dict(doc.get("uri", {})).items():
        if _norm(str(key)) == want:
            merged.update(entry)
    for key in _PATH_KEYS:
        if key in merged:
            merged[key] = str(base / Path(str(merged[key])).expanduser())
    return merged


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in _TRUE


def settings_for(target: Target) -> Settings:
    """The settings of ``target`` (see the module's documentation for the order).

    :raises InvalidConfigError: an unreadable or unsafe configuration file, an unreadable
        token file
    """
    path = config_path()
    file = _entry(_load(path), target.uri, path.parent)
    env = {"token": os.environ.get("PYVIRT_TOKEN"), "ca": os.environ.get("PYVIRT_CA")}
    uri = {k: target.params[k] for k in _URI_KEYS if k in target.params}

    def pick(key: str) -> Any:
        for source in (uri, env, file):
            if source.get(key) not in (None, ""):
                return source[key]
        return None

    token = pick("token")
    if token is None and file.get("token_file"):
        try:
            token = Path(file["token_file"]).read_text().strip()
        except OSError as err:
            raise InvalidConfigError(
                f"cannot read the token file {file['token_file']}: {err.strerror or err}"
            ) from None
    return Settings(
        token=str(token) if token else None,
        ca=pick("ca"),
        cert=pick("cert"),
        key=pick("key"),
        fingerprint=pick("fingerprint"),
        insecure=_flag(pick("insecure")),
    )
