"""``dir`` pools: a directory of image files (raw, qcow2 with backing chains)."""

from __future__ import annotations

import os
from pathlib import Path

from pyvirt.errors import InvalidConfigError, InvalidStateError, NotFoundError
from pyvirt.storage.base import PoolCapabilities
from pyvirt.storage.filevol import FileVolumes
from pyvirt.storage.registry import register_pool_backend

DEFAULT_MODE = 0o711


def target_mode(backend: FileVolumes) -> int:
    """The directory mode from ``<target><permissions><mode>`` (octal), default 0711."""
    tgt = backend.pool.target
    perms = tgt.permissions if tgt is not None else None
    if perms is None or not perms.mode:
        return DEFAULT_MODE
    try:
        return int(perms.mode, 8)
    except ValueError:
        raise InvalidConfigError(
            f"pool '{backend.name}': <target>/<permissions>/<mode> '{perms.mode}' is not octal"
        ) from None


def make_target_dir(backend: FileVolumes) -> None:
    """Create the target directory (and parents); refuse a path that is not a directory."""
    path = backend.directory
    if path.exists() and not path.is_dir():
        raise InvalidConfigError(
            f"pool '{backend.name}' target path '{path}' exists and is not a directory",
            hint="choose another --target",
        )
    if not path.is_dir():
        path.mkdir(parents=True, mode=target_mode(backend))
        os.chmod(path, target_mode(backend))


def require_target_dir(backend: FileVolumes) -> Path:
    """The target directory, which must exist."""
    path = backend.directory
    if path.exists() and not path.is_dir():
        raise InvalidConfigError(
            f"pool '{backend.name}' target path '{path}' is not a directory",
            hint="choose another --target",
        )
    if not path.is_dir():
        raise NotFoundError(
            f"pool '{backend.name}' target directory '{path}' does not exist",
            hint=f"run 'pool-build {backend.name}' first, or 'pool-start --build'",
        )
    return path


def remove_target_dir(backend: FileVolumes) -> None:
    """Remove the (empty) target directory."""
    path = backend.directory
    try:
        path.rmdir()
    except FileNotFoundError:
        return
    except OSError as err:
        raise InvalidStateError(
            f"cannot delete pool '{backend.name}': target directory '{path}' "
            f"is not empty ({err.strerror})",
            hint="delete its volumes first",
        ) from None


@register_pool_backend("dir")
class DirPool(FileVolumes):
    """A pool whose target directory holds one file per volume."""

    capabilities = PoolCapabilities(formats=("raw", "qcow2"), build=True, delete=True, backing=True)

    def build(self, *, overwrite: bool | None = None) -> None:
        make_target_dir(self)

    def start(self) -> None:
        require_target_dir(self)

    def delete(self) -> None:
        remove_target_dir(self)

    def is_started(self) -> bool:
        return self.directory.is_dir()
