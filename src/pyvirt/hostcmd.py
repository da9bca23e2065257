"""The one runner of host tools (mount, parted, lvm, qemu-img, apt-get, ...).

Every call goes through :func:`run`: a timeout, the C locale (so output parses the same on
every host), no standard input, and one way to fail: :class:`~pyvirt.errors.HostCommandError`
with the exact argv, the return code and the tail of stderr, or
:class:`~pyvirt.errors.UnsupportedError` naming the Debian package when the tool is missing.
This is the lowest layer next to :mod:`pyvirt.errors`; it imports nothing else of pyvirt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypeAlias

from pyvirt.errors import HostCommandError, UnsupportedError

#: seconds a metadata command may take (the machine may be busy)
TIMEOUT = 60.0

#: where tools are looked for when they are not on ``PATH`` (sbin is missing for non-root)
FALLBACK_PATH = "/usr/sbin:/sbin:/usr/bin:/bin"

#: the Debian package of each tool whose package is not named like the tool
PACKAGES: dict[str, str] = {
    "apt-get": "apt",
    "apt-cache": "apt",
    "dpkg-deb": "dpkg",
    "depmod": "kmod",
    "blkid": "util-linux",
    "losetup": "mount",
    "umount": "mount",
    "partx": "util-linux",
    "qemu-img": "qemu-utils",
    "nft": "nftables",
    "dnsmasq": "dnsmasq-base",
    "ip": "iproute2",
    "modprobe": "kmod",
    "cp": "coreutils",
}


def tool(name: str, package: str | None = None) -> str:
    """The path of host tool ``name``.

    :param package: the Debian package that provides it (default: :data:`PACKAGES` or ``name``)
    :raises UnsupportedError: when it is not installed, naming the package
    """
    path = shutil.which(name) or shutil.which(name, path=FALLBACK_PATH)
    if path is None:
        pkg = package or PACKAGES.get(name, name)
        raise UnsupportedError(
            f"{name} is not installed",
            hint=f"install the Debian package {pkg}",
        )
    return path


def run(
    argv: Sequence[str],
    *,
    what: str,
    timeout: float | None = TIMEOUT,
    env: Mapping[str, str] | None = None,
    ok_codes: Sequence[int] = (0,),
    cwd: Path | str | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` (never through a shell) and return the finished process (text output).

    :param what: the failure message's start, e.g. ``"cannot mount pool 'p'"``
    :param timeout: seconds before the command counts as failed (``None``: no limit)
    :param env: variables added to the environment (``LC_ALL=C`` is always set)
    :param ok_codes: exit statuses that are not failures
    :param input: text fed to the command's standard input (default: none)
    :raises HostCommandError: on a timeout or another exit status
    :raises UnsupportedError: when the program is not installed
    """
    argv = [str(a) for a in argv]
    name = os.path.basename(argv[0])
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=full_env,
            cwd=cwd,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as err:
        raise HostCommandError(
            f"{what}: {name} did not finish within {timeout or 0:g} s", argv=argv
        ) from err
    except FileNotFoundError as err:
        pkg = PACKAGES.get(name, name)
        raise UnsupportedError(
            f"{what}: {name} is not installed", hint=f"install the Debian package {pkg}"
        ) from err
    except OSError as err:
        raise HostCommandError(f"{what}: cannot run {name}: {err.strerror}", argv=argv) from err
    if proc.returncode not in ok_codes:
        raise HostCommandError(
            f"{what}: {name} exited with status {proc.returncode}",
            argv=argv,
            returncode=proc.returncode,
            stderr=proc.stderr or proc.stdout or "",
        )
    return proc


#: a started host tool (see :func:`spawn`)
Process: TypeAlias = "subprocess.Popen[str]"


def spawn(
    argv: Sequence[str], *, what: str, env: Mapping[str, str] | None = None
) -> subprocess.Popen[str]:
    """Start ``argv`` without waiting: stdout and stderr merged into one text pipe.

    For tools whose output is read while they run (a load generator, ``ping``). The caller
    owns the process: it must wait for or kill it.

    :param what: the failure message's start
    :param env: variables added to the environment (``LC_ALL=C`` is always set)
    :raises HostCommandError: the program could not be started
    :raises UnsupportedError: when the program is not installed
    """
    argv = [str(a) for a in argv]
    name = os.path.basename(argv[0])
    full_env = {**os.environ, "LC_ALL": "C", **(env or {})}
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
        )
    except FileNotFoundError as err:
        pkg = PACKAGES.get(name, name)
        raise UnsupportedError(
            f"{what}: {name} is not installed", hint=f"install the Debian package {pkg}"
        ) from err
    except OSError as err:
        raise HostCommandError(f"{what}: cannot run {name}: {err.strerror}", argv=argv) from err
