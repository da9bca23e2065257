"""The only module that runs libiscsi's tools (``iscsi-ls``, ``iscsi-readcapacity16``).

pyvirt talks to iSCSI targets the way libvirt's ``iscsi-direct`` pools do: from user space,
without a kernel session. Listing targets and LUNs and reading capacities uses the libiscsi
command line tools; QEMU opens the LUNs itself with its libiscsi driver
(``iscsi://HOST:PORT/IQN/LUN``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pyvirt.hostcmd import run, tool

DEFAULT_PORT = 3260
#: the initiator name pyvirt presents when the pool names none
DEFAULT_INITIATOR = "iqn.2024-01.org.pyvirt:initiator"
TIMEOUT = 30.0

_TARGET = re.compile(r"^Target:(\S+)\s+Portal:(\S+)")
_LUN = re.compile(r"^Lun:(\d+)\s+Type:(\S+)")


@dataclass(frozen=True)
class Lun:
    """A LUN of a target: number and SCSI device type (``DIRECT_ACCESS`` for disks)."""

    number: int
    type: str


def portal_url(host: str, port: int | None) -> str:
    """``iscsi://HOST:PORT`` (IPv6 addresses bracketed)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"iscsi://{host}:{port or DEFAULT_PORT}"


def lun_url(host: str, port: int | None, iqn: str, lun: int) -> str:
    """``iscsi://HOST:PORT/IQN/LUN``: what QEMU and the libiscsi tools open."""
    return f"{portal_url(host, port)}/{iqn}/{lun}"


def _ls(host: str, port: int | None, initiator: str | None, luns: bool) -> str:
    argv = [tool("iscsi-ls", "libiscsi-bin"), "-i", initiator or DEFAULT_INITIATOR]
    if luns:
        argv.append("-s")
    argv.append(portal_url(host, port))
    what = f"cannot list the iSCSI targets at {host}:{port or DEFAULT_PORT}"
    return run(argv, what=what, timeout=TIMEOUT).stdout


def targets(host: str, port: int | None = None, initiator: str | None = None) -> list[str]:
    """The IQNs the portal offers (SendTargets discovery)."""
    return list(parse_listing(_ls(host, port, initiator, luns=False)))


def luns(host: str, port: int | None, iqn: str, initiator: str | None = None) -> list[Lun] | None:
    """The LUNs of target ``iqn`` (None when the portal does not offer that target)."""
    return parse_listing(_ls(host, port, initiator, luns=True)).get(iqn)


def parse_listing(text: str) -> dict[str, list[Lun]]:
    """Parse ``iscsi-ls -s`` output into target IQN -> LUNs (pure; a target reached over
    several portals is listed once)."""
    found: dict[str, list[Lun]] = {}
    current: list[Lun] | None = None
    for line in text.splitlines():
        line = line.strip()
        m = _TARGET.match(line)
        if m:
            current = found.setdefault(m.group(1), [])
            continue
        m = _LUN.match(line)
        if m and current is not None:
            lun = Lun(int(m.group(1)), m.group(2))
            if lun not in current:
                current.append(lun)
    return found


def capacity(host: str, port: int | None, iqn: str, lun: int, initiator: str | None = None) -> int:
    """The exact size in bytes of one LUN (READ CAPACITY(16))."""
    argv = [
        tool("iscsi-readcapacity16", "libiscsi-bin"),
        "-i",
        initiator or DEFAULT_INITIATOR,
        "-s",
        lun_url(host, port, iqn, lun),
    ]
    out = run(argv, what=f"cannot read the size of LUN {lun} of '{iqn}'", timeout=TIMEOUT)
    return int(out.stdout.split()[0])
