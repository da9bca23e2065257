"""Running host tools (mount, losetup, mkfs, blkid...) for storage backends.

One place that turns a failed command into :class:`~pyvirt.errors.HostCommandError` with the
exact argv and the tail of stderr, with a timeout on every call.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from pyvirt.errors import HostCommandError, UnsupportedError


def need(tool: str, package: str) -> str:
    """The path of ``tool``.

    :raises UnsupportedError: naming the Debian package to install
    """
    path = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise UnsupportedError(f"{tool} is not installed", hint=f"install the package {package}")
    return path


def run(
    argv: Sequence[str], *, what: str, timeout: float = 60.0, ok: Sequence[int] = (0,)
) -> subprocess.CompletedProcess[str]:
    """Run ``argv``; return the finished process when its status is in ``ok``.

    :param what: the lowercase start of the error message (``"cannot mount '/dev/loop3'"``)
    :raises HostCommandError: on another status or a timeout
    """
    argv = list(argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as err:
        raise HostCommandError(
            f"{what}: {argv[0]} did not finish within {timeout:.0f} s", argv=argv
        ) from err
    except FileNotFoundError as err:
        raise UnsupportedError(f"{what}: {argv[0]} is not installed") from err
    if proc.returncode not in ok:
        raise HostCommandError(
            f"{what}: {argv[0].rsplit('/', 1)[-1]} failed",
            argv=argv,
            returncode=proc.returncode,
            stderr=proc.stderr,
        )
    return proc
