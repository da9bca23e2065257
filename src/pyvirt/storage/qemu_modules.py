"""QEMU's loadable block drivers: is the one a network disk or pool needs installed?

Debian builds QEMU with modules: the drivers for ``iscsi://``, ``nfs://``, ``http(s)://`` and
``ftp(s)://`` (curl), ``rbd:``, ``gluster://`` and ``ssh://`` are ``block-*.so`` files in QEMU's
module directory (``/usr/lib/x86_64-linux-gnu/qemu``) shipped by the package
``qemu-block-extra``. Without it QEMU fails late with its own message; pyvirt checks first, at
``pool-start`` and domain ``start``, and refuses in one line naming the driver and the package.

The check is a ``stat`` of one file. The module directory is QEMU's own ``QEMU_MODULE_DIR``
when set (tests point it elsewhere), else the first existing standard one; a QEMU without a
module directory is built without modules (drivers compiled in) and passes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from pyvirt.errors import UnsupportedError

#: the Debian package that ships QEMU's block driver modules
PACKAGE = "qemu-block-extra"

#: URL scheme / ``<source protocol>`` -> QEMU module (without ``.so``)
PROTOCOL_MODULES: dict[str, str] = {
    "iscsi": "block-iscsi",
    "nfs": "block-nfs",
    "http": "block-curl",
    "https": "block-curl",
    "ftp": "block-curl",
    "ftps": "block-curl",
    "rbd": "block-rbd",
    "gluster": "block-gluster",
    "ssh": "block-ssh",
}


def module_dir(env: Mapping[str, str] | None = None) -> Path | None:
    """QEMU's module directory, or ``None`` when QEMU has none (drivers built in)."""
    env = os.environ if env is None else env
    if env.get("QEMU_MODULE_DIR"):
        return Path(env["QEMU_MODULE_DIR"])
    multiarch = f"{os.uname().machine}-linux-gnu"
    for candidate in (f"/usr/lib/{multiarch}/qemu", "/usr/lib64/qemu", "/usr/lib/qemu"):
        if os.path.isdir(candidate):
            return Path(candidate)
    return None


def missing_module(protocol: str, directory: Path | None) -> str | None:
    """The module file ``protocol`` needs when it is not in ``directory``, else ``None``."""
    module = PROTOCOL_MODULES.get(protocol)
    if module is None or directory is None:
        return None
    path = directory / f"{module}.so"
    return None if path.exists() else str(path)


def require_block_driver(owner: str, protocol: str, *, directory: Path | None = None) -> None:
    """Refuse, in one line, when QEMU's block driver for ``protocol`` is not installed.

    :param owner: who needs it, e.g. ``"pool 'iscsi1'"`` or ``"domain 'vm1' disk vdb"``
    :param protocol: ``iscsi``, ``nfs``, ``https``, ... (others, like ``nbd``, are built in)
    :param directory: QEMU's module directory (default: :func:`module_dir`)
    :raises UnsupportedError: naming the driver, the missing file and the Debian package
    """
    missing = missing_module(protocol, directory if directory is not None else module_dir())
    if missing is not None:
        raise UnsupportedError(
            f"{owner} needs QEMU's {protocol} block driver, which is not installed "
            f"({missing} is missing): install the Debian package {PACKAGE}"
        )


def require_block_drivers(
    owner: str, sources: Iterable[str], *, directory: Path | None = None
) -> None:
    """:func:`require_block_driver` for every ``scheme://`` URL among ``sources`` (paths pass).

    :raises UnsupportedError: for the first missing driver
    """
    for source in sources:
        scheme, sep, _ = source.partition("://")
        if sep and scheme in PROTOCOL_MODULES:
            require_block_driver(owner, scheme, directory=directory)
