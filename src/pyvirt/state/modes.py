"""Explicit modes for pyvirt's state, whatever the caller's umask (see docs/security.md).

Directories are created (or tightened when pyvirt owns them) with the modes of
:data:`DIR_MODES`: nothing that holds definitions, secrets, sockets or logs is reachable by other
local users. The QEMU user (:mod:`pyvirt.state.qemu_user`) only needs to *traverse* the config
root (to reach the default images pool for hot-plug) and the run root (to reach its own scratch
directory): those directories are group-owned by its group with mode 0710, never world-open.

Definitions are only read from files that root (or the state directory's owner) owns and that
nobody else may write: :func:`check_trusted_file` refuses a definition an unprivileged user
planted, so it is neither listed nor started.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from pyvirt.errors import InvalidStateError
from pyvirt.state.paths import StatePaths

#: Mode of a directory that only pyvirt (its owner) may enter.
PRIVATE_DIR = 0o700
#: Mode of a directory the QEMU user's group may traverse but not list (group-owned by it).
TRAVERSE_DIR = 0o710
#: Mode of files holding definitions, records, secrets.
PRIVATE_FILE = 0o600


def _ensure_dir(path: Path, mode: int, gid: int | None = None) -> None:
    """Create ``path`` with exactly ``mode`` (umask ignored); tighten it when we own it.

    :param gid: group to give the directory (the QEMU user's group); None keeps it
    """
    try:
        st = path.stat()  # one syscall when it exists (every command opens a connection)
    except FileNotFoundError:
        try:
            path.mkdir(parents=True, exist_ok=True)
            st = path.stat()
        except OSError:
            return  # read-only or foreign location: leave it to the commands to report
    except OSError:
        return
    if not stat.S_ISDIR(st.st_mode):
        return  # not a directory: the commands report it
    if st.st_uid != os.geteuid():
        return  # not ours (a shared parent such as /tmp): never change it
    if gid is not None and st.st_gid != gid:
        with contextlib.suppress(OSError):
            os.chown(path, -1, gid)
    if stat.S_IMODE(st.st_mode) != mode:
        with contextlib.suppress(OSError):
            os.chmod(path, mode)


def dir_modes(paths: StatePaths, qemu_gid: int | None) -> dict[Path, tuple[int, int | None]]:
    """Every state directory pyvirt creates -> (mode, group or None).

    :param qemu_gid: the QEMU user's group when QEMU runs as another user, else None (then
        everything is private to the owner)
    """
    traverse = (TRAVERSE_DIR, qemu_gid) if qemu_gid is not None else (PRIVATE_DIR, None)
    private = (PRIVATE_DIR, None)
    out: dict[Path, tuple[int, int | None]] = {}
    root = paths.config.parent
    if all(p.parent == root for p in (paths.run, paths.log, paths.cache)):
        out[root] = traverse  # one state root (PYVIRT_STATE_DIR)
    out.update(
        {
            paths.config: traverse,
            paths.domain_config_dir: private,
            paths.network_config_dir: private,
            paths.pool_config_dir: private,
            paths.run: traverse,
            paths.domain_run_root: traverse,
            paths.lock_dir: private,
            paths.log: private,
            paths.cache: private,
            paths.cache / "plans": private,
        }
    )
    return out


def secure_state_dirs(paths: StatePaths, qemu_gid: int | None = None) -> None:
    """Create the state directories with explicit modes, tightening existing ones we own."""
    for path, (mode, gid) in dir_modes(paths, qemu_gid).items():
        _ensure_dir(path, mode, gid)


def trusted_owners(path: Path) -> set[int]:
    """Users whose files pyvirt trusts in ``path``'s directory: root and this process."""
    del path
    return {0, os.geteuid()}


def check_trusted_file(path: Path, st: os.stat_result | None = None) -> None:
    """Refuse a definition file an other user owns or may write.

    :raises InvalidStateError: owned by another user, or group/world-writable
    """
    if st is None:
        st = path.stat()
    if st.st_uid not in trusted_owners(path):
        raise InvalidStateError(
            f"refusing '{path}': owned by uid {st.st_uid}, not by root or pyvirt's user",
            hint="an unprivileged user may have planted it; inspect and remove it",
        )
    if stat.S_IMODE(st.st_mode) & 0o022:
        raise InvalidStateError(
            f"refusing '{path}': it is group- or world-writable "
            f"(mode {stat.S_IMODE(st.st_mode):04o})",
            hint=f"inspect it, then 'chmod 600 {path}'",
        )


def is_trusted_stat(st: os.stat_result, owners: set[int]) -> bool:
    """Whether :func:`check_trusted_file` accepts a file with status ``st`` (``owners``:
    :func:`trusted_owners` of its directory); for scans of many files."""
    return st.st_uid in owners and not st.st_mode & 0o022


def is_trusted_file(path: Path) -> bool:
    """Whether :func:`check_trusted_file` accepts ``path`` (False when it is gone)."""
    try:
        check_trusted_file(path)
    except (OSError, InvalidStateError):
        return False
    return True
