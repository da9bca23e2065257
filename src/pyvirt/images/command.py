"""Running the host tools the image builder needs (apt, dpkg-deb, depmod, zstd)."""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from pyvirt.errors import HostCommandError, UnsupportedError

log = logging.getLogger(__name__)

#: Debian package that provides each host tool, for the hint of a missing tool.
TOOL_PACKAGES: dict[str, str] = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "depmod": "kmod",
    "zstd": "zstd",
}


def require_tool(name: str) -> str:
    """Return the path of host tool *name*.

    :raises UnsupportedError: the tool is not installed.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        package = TOOL_PACKAGES.get(name, name)
        raise UnsupportedError(
            f"'{name}' is needed to build the tiny image but is not installed",
            hint=f"install the Debian package '{package}' (apt-get install {package})",
        )
    return path


def run(argv: Sequence[str], *, cwd: Path | None = None, what: str | None = None) -> str:
    """Run *argv* (its first item is looked up with :func:`require_tool`) and return stdout.

    :param argv: the command and its arguments, never passed through a shell.
    :param cwd: working directory of the command.
    :param what: what the command does, for the error message.
    :raises HostCommandError: the command exited with a non-zero status.
    :raises UnsupportedError: the command is not installed.
    """
    full = [require_tool(argv[0]), *argv[1:]]
    log.debug("running %s", full)
    proc = subprocess.run(full, cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HostCommandError(
            f"{what or argv[0]} failed with exit status {proc.returncode}",
            argv=full,
            returncode=proc.returncode,
            stderr=proc.stderr,
        )
    return proc.stdout
