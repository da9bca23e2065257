"""The ``shares`` lifecycle hook: a ``<filesystem>`` share starts only when QEMU can use it.

QEMU opens a 9p share's directory at start-up, before it drops to the unprivileged QEMU user
(``-runas``, :mod:`pyvirt.service.domain.dac`); every later lookup, read and write the guest
makes is checked against that user's permissions. As libvirt's DAC driver, pyvirt changes no
owner or mode of a shared directory (it may hold the user's own files). Instead, before each
start, it checks that the directory exists and that the QEMU user may search and read it
(and write it unless the share is ``<readonly/>``) and refuses in one line otherwise, naming
the user and the directory. The check runs the kernel's own test (``test -r/-w/-x`` as that
user: ACLs and supplementary groups count), one short process per share and start.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, NotFoundError
from pyvirt.service import hooks
from pyvirt.state.qemu_user import QemuIdentity, resolve

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

HOOK_NAME = "shares"
#: search + read, and write unless "ro"; exit 1 = no search/read, 2 = no write
_PROBE = 'test -r "$1" -a -x "$1" || exit 1; [ "$2" = ro ] || test -w "$1" || exit 2'


def shares(dom: Domain) -> list[dict[str, Any]]:
    """The 9p shares of ``dom`` the argv builder lowers: their directory, tag and mode."""
    out: list[dict[str, Any]] = []
    for fs in dom.devices.filesystems:
        if (fs.type or "mount") != "mount" or (fs.driver_type or "path") != "path":
            continue  # refused by the argv builder
        if fs.source_dir and os.path.isabs(fs.source_dir):
            out.append({"dir": fs.source_dir, "tag": fs.target_dir or "", "ro": fs.readonly})
    return out


def can_use(ident: QemuIdentity, path: str, *, readonly: bool) -> str:
    """What QEMU user ``ident`` lacks on directory ``path``: ``""`` (nothing), ``"read"`` or
    ``"write"``."""
    groups = os.getgrouplist(ident.user, ident.gid) if ident.user else [ident.gid]
    res = subprocess.run(
        ["/bin/sh", "-c", _PROBE, "sh", path, "ro" if readonly else "rw"],
        user=ident.uid, group=ident.gid, extra_groups=groups, check=False,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return {0: "", 2: "write"}.get(res.returncode, "read")


def check(ident: QemuIdentity, share: dict[str, Any]) -> None:
    """Refuse a share whose directory is missing or out of the QEMU user's reach.

    :raises NotFoundError: the directory does not exist
    :raises InvalidConfigError: it is not a directory, or the QEMU user may not use it
    """
    path, tag = str(share["dir"]), share.get("tag") or "?"
    if not os.path.lexists(path):
        raise NotFoundError(
            f"share '{tag}': source dir '{path}' does not exist",
            hint="create the directory or fix <source dir=...> of the <filesystem>",
        )
    if not os.path.isdir(path):
        raise InvalidConfigError(f"share '{tag}': source dir '{path}' is not a directory")
    if not ident.separate:
        return
    readonly = bool(share.get("ro"))
    lacks = can_use(ident, path, readonly=readonly)
    if lacks:
        what = "search and read" if lacks == "read" else "write"
        perms = "rx" if readonly else "rwx"
        raise InvalidConfigError(
            f"share '{tag}': the QEMU user '{ident.user}' may not {what} '{path}'",
            hint=f"give it access (e.g. setfacl -m u:{ident.user}:{perms} '{path}'); pyvirt "
            "changes no owner or mode of a shared directory",
        )


class SharesHook:
    """Checks each 9p share's directory before every start."""

    name = HOOK_NAME

    def compile(self, mgr: DomainManager, dom: Domain) -> hooks.HookResult | None:
        """Record the shares (none: the hook stays out of the plan)."""
        found = shares(dom)
        return hooks.HookResult({"shares": found}) if found else None

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Check every share again: directories and permissions change between starts."""
        ident = resolve(mgr.paths.config)
        for share in data.get("shares", []):
            check(ident, share)

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do once QEMU runs."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Nothing to undo: no owner or mode was changed."""


hooks.register_hook(SharesHook())
