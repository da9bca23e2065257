"""``CONFIG/daemon/pyvirtd.toml``: the daemon's settings file (the command line wins).

::

    listen_tcp = "0.0.0.0:16514"           # --listen-tcp
    tls_cert = "/etc/pyvirt/server.pem"    # --tls-cert (relative paths: to this file's dir)
    tls_key = "/etc/pyvirt/server.key"     # --tls-key
    tls_client_ca = "/etc/pyvirt/ca.pem"   # --tls-client-ca
    tls_names = ["kvm1.example.org", "192.0.2.10"]  # extra names of the self-signed cert
    autostart = true                       # false: like --no-autostart
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pyvirt.errors import InvalidConfigError

__all__ = ["KEYS", "read_config_file"]

#: key -> its type
KEYS: dict[str, type] = {
    "listen_tcp": str, "tls_cert": str, "tls_key": str, "tls_client_ca": str,
    "tls_names": list, "autostart": bool,
}  # fmt: skip
_PATHS = ("tls_cert", "tls_key", "tls_client_ca")


def _typed(value: Any, want: type) -> bool:
    if want is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, want)


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings of ``path`` (empty if it does not exist), paths made absolute.

    :raises InvalidConfigError: not TOML, an unknown key or a value of the wrong type
    """
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise InvalidConfigError(f"cannot read {path}: {err}",
                                 hint="fix the file (TOML) or remove it") from None  # fmt: skip
    for key, value in doc.items():
        want = KEYS.get(key)
        if want is None:
            raise InvalidConfigError(f"unknown setting '{key}' in {path}",
                                     hint=f"known settings: {', '.join(KEYS)}")  # fmt: skip
        if not _typed(value, want):
            kind = "a list of strings" if want is list else want.__name__
            raise InvalidConfigError(f"setting '{key}' in {path} must be {kind}")
        if key in _PATHS:
            doc[key] = str(path.parent / str(value))  # an absolute value stays as it is
    return doc
