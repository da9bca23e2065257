"""Where a pool's directory may be: not on the host's system directories, not in pyvirt's
state, not nested in another pool's directory.

A pool's volumes are files that ``vol-wipe`` zeroes and ``vol-delete`` removes, and ``fs``/
``netfs`` pools mount over their target; a pool at ``/etc`` would make host files volumes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import PurePosixPath

from pyvirt.errors import InvalidConfigError
from pyvirt.state.paths import StatePaths

#: refused as a pool directory, and so is anything below them
SYSTEM_TREES = (
    "/etc", "/proc", "/sys", "/dev", "/boot", "/usr", "/bin", "/sbin", "/lib", "/lib32",
    "/lib64", "/libx32", "/efi",
)  # fmt: skip
#: refused as a pool directory themselves (their subdirectories are fine: /var/lib/pyvirt/...)
SYSTEM_DIRS = ("/", "/var", "/var/lib", "/run", "/root", "/home", "/tmp", "/srv", "/opt", "/mnt",
               "/media", "/var/tmp", "/var/log", "/var/cache", "/usr/local")  # fmt: skip


def _norm(path: str) -> PurePosixPath:
    """``path`` made absolute with symlinks resolved (as far as it exists)."""
    return PurePosixPath(os.path.realpath(os.path.abspath(path)))


def _nested(a: PurePosixPath, b: PurePosixPath) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_pool_target(
    name: str, target: str, paths: StatePaths, others: Iterable[tuple[str, str]]
) -> None:
    """Refuse ``target`` as the directory of pool ``name`` (one line naming the reason).

    :param others: ``(name, directory)`` of the other pools with a directory
    :raises InvalidConfigError: a system directory, pyvirt's state, or nested in another pool
    """
    path = _norm(target)
    for tree in SYSTEM_TREES:
        if path == PurePosixPath(tree) or path.is_relative_to(tree):
            raise InvalidConfigError(
                f"pool '{name}' target path '{target}' is in the system directory {tree}",
                hint="volumes of a pool can be wiped and deleted; choose a directory of its own",
            )
    if str(path) in SYSTEM_DIRS:
        raise InvalidConfigError(
            f"pool '{name}' target path '{target}' is the system directory {path}",
            hint="choose a subdirectory of its own, e.g. /var/lib/pyvirt/images",
        )
    images = _norm(str(paths.default_images_dir))
    if path != images:
        for root in (paths.config, paths.run, paths.log, paths.cache):
            state = _norm(str(root))
            if _nested(path, state) and not path.is_relative_to(images):
                raise InvalidConfigError(
                    f"pool '{name}' target path '{target}' overlaps pyvirt's state "
                    f"directory {root}",
                    hint="choose a directory outside pyvirt's state",
                )
    for other, directory in others:
        there = _norm(directory)
        if path != there and _nested(path, there):
            raise InvalidConfigError(
                f"pool '{name}' target path '{target}' is nested with pool '{other}' "
                f"at '{directory}'",
                hint="pools may not share directories; choose a separate directory",
            )
