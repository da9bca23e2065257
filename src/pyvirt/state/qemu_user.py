"""Which user QEMU runs as (see docs/security.md).

As root, pyvirt runs every QEMU as a dedicated unprivileged user, ``pyvirt-qemu`` (created by
``scripts/setup.sh``), so that a guest escaping QEMU is not host root. The user is chosen by,
in order:

1. ``PYVIRT_QEMU_USER`` in the environment;
2. a ``user = NAME`` line in ``CONFIG/qemu.conf`` (``/var/lib/pyvirt/qemu.conf``);
3. ``pyvirt-qemu`` when that user exists.

``root`` may be chosen explicitly for debugging; it is warned about, and so is a host where
``pyvirt-qemu`` does not exist (QEMU then runs as root). A pyvirt that does not run as root
(per-user XDG state) runs QEMU as the caller, as ``qemu:///session`` does.
"""

from __future__ import annotations

import functools
import os
import pwd
from pathlib import Path
from typing import NamedTuple

from pyvirt.errors import InvalidConfigError

#: The user scripts/setup.sh creates.
DEFAULT_USER = "pyvirt-qemu"
ENV_VAR = "PYVIRT_QEMU_USER"
CONFIG_FILE = "qemu.conf"


class QemuIdentity(NamedTuple):
    """The user QEMU runs as (a named tuple: cheaper to create at start-up than a dataclass).

    :ivar user: its name (given to QEMU's ``-runas``); None = QEMU runs as pyvirt's user
    :ivar uid: its uid (pyvirt's own when ``user`` is None)
    :ivar gid: its primary group
    :ivar warning: why this choice is unsafe, for the commands to print ("" when fine)
    """

    user: str | None
    uid: int
    gid: int
    warning: str = ""

    @property
    def separate(self) -> bool:
        """Whether QEMU runs as a different user than pyvirt (files must be handed over)."""
        return self.user is not None and self.uid != os.geteuid()


def _configured(config_dir: Path) -> str | None:
    env = os.environ.get(ENV_VAR)
    if env:
        return env.strip()
    try:
        text = (config_dir / CONFIG_FILE).read_text()
    except (FileNotFoundError, NotADirectoryError):
        return None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "user":
            return value.strip().strip("'\"") or None
    return None


@functools.cache
def resolve(config_dir: Path) -> QemuIdentity:
    """The QEMU identity for the state whose config root is ``config_dir`` (cached).

    :raises InvalidConfigError: the configured user does not exist
    """
    if os.geteuid() != 0:
        return QemuIdentity(None, os.geteuid(), os.getegid())
    name = _configured(config_dir)
    explicit = name is not None
    name = name or DEFAULT_USER
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        if explicit:
            raise InvalidConfigError(
                f"the QEMU user '{name}' does not exist",
                hint=f"create it (scripts/setup.sh creates {DEFAULT_USER}) or fix {ENV_VAR} / "
                f"{config_dir / CONFIG_FILE}",
            ) from None
        return QemuIdentity(
            None,
            0,
            0,
            f"QEMU runs as root: the user '{DEFAULT_USER}' does not exist (run scripts/setup.sh)",
        )
    if pw.pw_uid == 0:
        return QemuIdentity(
            "root", 0, pw.pw_gid, "QEMU runs as root (configured): a QEMU escape is host root"
        )
    return QemuIdentity(name, pw.pw_uid, pw.pw_gid)
