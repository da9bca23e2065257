"""Running the host tools the pool backends drive (parted, lvm, libiscsi, libnfs, mount).

One small runner so every tool call has a timeout, a clean environment for its locale, and
fails the same way: :class:`~pyvirt.errors.HostCommandError` with the exact argv and the tail of
stderr, or :class:`~pyvirt.errors.UnsupportedError` naming the Debian package when the tool is
not installed. Each tool still has exactly one module that runs it (``parted.py``, ``lvm.py``,
``libiscsi.py``, ``libnfs.py``); they all go through :func:`run`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence

from pyvirt.errors import HostCommandError, UnsupportedError

#: seconds a metadata command may take (the machine may be busy)
TIMEOUT = 60.0


def tool(name: str, package: str) -> str:
    """The path of host tool ``name``.

    :raises UnsupportedError: when it is not installed (naming the Debian ``package``)
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin:/bin")
    if path is None:
        raise UnsupportedError(
            f"{name} is not installed", hint=f"install the Debian package {package}"
        )
    return path


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float = TIMEOUT,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and return the finished process (text output, C locale).

    :param what: the failure message's start, e.g. ``"cannot create partition on '/dev/sdb'"``
    :param ok_codes: exit statuses that are not failures
    :raises HostCommandError: on timeout or another exit status
    """
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=full_env,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise HostCommandError(
            f"{what}: {os.path.basename(argv[0])} did not finish within {timeout:.0f} s",
            argv=argv,
        ) from err
    if proc.returncode not in ok_codes:
        raise HostCommandError(
            what, argv=argv, returncode=proc.returncode, stderr=proc.stderr or proc.stdout
        )
    return proc
