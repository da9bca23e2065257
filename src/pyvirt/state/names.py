"""Which names a new object may take: nothing that collides with pyvirt's own files.

:func:`pyvirt.state.domains.check_name` keeps every path inside the store; this module adds the
rules for *new* names (define, create, rename, pool-define, net-define), which must also not be
mistaken for pyvirt's own files:

- no leading ``.`` (temporary files and indexes such as ``.uuids`` are hidden files, and
  listings skip hidden entries);
- no name ending in ``.json``, ``.xml``, ``.lock`` or ``.tmp`` (the suffixes of records, live
  definitions, locks and temporary files that sit next to ``NAME/`` in the same directories);
- for domains, short enough that every unix socket under ``RUN/qemu/NAME/`` fits in
  ``sun_path`` (108 bytes with the final NUL), computed from the actual run directory.
"""

from __future__ import annotations

from pyvirt.errors import InvalidConfigError
from pyvirt.state.domains import check_name
from pyvirt.state.paths import StatePaths

#: suffixes of pyvirt's own files next to object directories
RESERVED_SUFFIXES = (".json", ".xml", ".lock", ".tmp")
#: ``sun_path`` of ``struct sockaddr_un`` on Linux, including the final NUL
SUN_PATH = 108
#: room kept for the longest socket file name in a domain's run directory
#: (``events.sock``, ``charchannel10.sock``, ...)
SOCKET_FILE_ROOM = 20


def max_domain_name_bytes(paths: StatePaths) -> int:
    """The longest domain name (bytes) whose sockets fit under ``paths``' run directory."""
    run_root = len(str(paths.domain_run_root).encode())
    # RUN/qemu + "/" + NAME + "/" + socket file + NUL
    return SUN_PATH - run_root - 1 - 1 - SOCKET_FILE_ROOM - 1


def check_new_name(name: str, *, kind: str = "domain", paths: StatePaths | None = None) -> str:
    """Return ``name`` if a new ``kind`` may take it, else raise with one line.

    :param paths: the state paths; with them a domain name is checked against the socket
        path limit of its run directory
    :raises InvalidConfigError: see the module docstring
    """
    check_name(name, kind=kind)
    if name.startswith("."):
        raise InvalidConfigError(
            f"{kind} name '{name}' must not start with '.'",
            hint="pyvirt keeps its hidden files next to definitions; choose another name",
        )
    for suffix in RESERVED_SUFFIXES:
        if name.endswith(suffix):
            raise InvalidConfigError(
                f"{kind} name '{name}' must not end in '{suffix}'",
                hint="names ending in .json, .xml, .lock or .tmp collide with pyvirt's files",
            )
    if kind == "domain" and paths is not None:
        limit = max_domain_name_bytes(paths)
        if len(name.encode()) > limit:
            raise InvalidConfigError(
                f"domain name is {len(name.encode())} bytes, longer than the {limit} bytes "
                f"that fit in a socket path under {paths.domain_run_root}",
                hint="choose a shorter name (or a shorter PYVIRT_STATE_DIR)",
            )
    return name
