"""The ``shares`` lifecycle hook: a ``<filesystem>`` share starts only when QEMU can use it.

QEMU opens a 9p share's directory at start-up, before it drops to the unprivileged QEMU user
(``-runas``, :mod:`pyvirt.service.domain.dac`); every later lookup, read and write the guest
makes is checked against that user's permissions. As libvirt's DAC driver, pyvirt changes no
owner or mode of a shared directory (it may hold the user's own files). Instead, before each
start, it checks that the directory exists and that the QEMU user may search and read it
(and write it unless the share is ``<readonly/>``) and refuses in one line otherwise, naming
the user and the directory. The check runs the kernel's own test (``test -r/-w/-x`` as that
user: ACLs and supplementary groups count), one short process per share and start.

A virtiofs share (``<driver type='virtiofs'>``) is served by a virtiofsd of its own, run as
root here before QEMU (``--socket-path`` in the run directory, where the argv's ``-chardev``
points; QEMU connects before it drops privileges). Its pid is recorded in the hook data and it
is stopped with the domain (it also exits by itself when QEMU disconnects). A host without
virtiofsd refuses such a start in one line naming virtiofsd.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, NotFoundError, OperationFailedError
from pyvirt.service import hooks
from pyvirt.state.qemu_user import QemuIdentity, resolve

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

HOOK_NAME = "shares"
#: where virtiofsd lives: its own package (newer distributions), QEMU's package (Debian 12)
VIRTIOFSD_PATHS = ("/usr/libexec/virtiofsd", "/usr/lib/qemu/virtiofsd")
#: how long a new virtiofsd may take to create its socket
VIRTIOFSD_TIMEOUT = 10.0
#: search + read, and write unless "ro"; exit 1 = no search/read, 2 = no write
_PROBE = 'test -r "$1" -a -x "$1" || exit 1; [ "$2" = ro ] || test -w "$1" || exit 2'


def shares(dom: Domain) -> list[dict[str, Any]]:
    """The shares of ``dom`` the argv builder lowers: their directory, tag and mode; for
    virtiofs also the alias (the argv names the socket after it) and virtiofsd's settings."""
    out: list[dict[str, Any]] = []
    for index, fs in enumerate(dom.devices.filesystems):
        driver = fs.driver_type or "path"
        if (fs.type or "mount") != "mount" or driver not in ("path", "virtiofs"):
            continue  # refused by the argv builder
        if not fs.source_dir or not os.path.isabs(fs.source_dir):
            continue
        share: dict[str, Any] = {"dir": fs.source_dir, "tag": fs.target_dir or ""}
        share["ro"] = fs.readonly
        if fs.virtiofs:
            share.update(virtiofs=True, alias=fs.alias or f"fs{index}", binary=fs.binary_path,
                         cache=fs.cache_mode, xattr=fs.binary_xattr == "on",
                         sandbox=fs.sandbox_mode)  # fmt: skip
        out.append(share)
    return out


def virtiofsd(wanted: str | None, tag: str) -> str:
    """The virtiofsd to run: ``<binary path>``, else the first installed one.

    :raises NotFoundError: none is installed (one line, naming virtiofsd)
    """
    for path in [wanted] if wanted else VIRTIOFSD_PATHS:
        if os.access(path, os.X_OK):
            return path
    where = wanted or " or ".join(VIRTIOFSD_PATHS)
    raise NotFoundError(
        f"share '{tag}': virtiofs needs virtiofsd, which is not installed here ({where})",
        hint="install virtiofsd, or share the directory over 9p (<driver type='path'/>)",
    )


def start_virtiofsd(mgr: DomainManager, name: str, share: dict[str, Any]) -> int:
    """Run the virtiofsd of one share and wait for its socket; returns its pid."""
    tag, alias = share.get("tag") or "?", str(share["alias"])
    binary = virtiofsd(share.get("binary"), tag)
    sock = mgr.paths.domain_run_dir(name) / f"{alias}-fs.sock"
    with contextlib.suppress(FileNotFoundError):
        sock.unlink()
    argv = [binary, f"--socket-path={sock}", "-o", f"source={share['dir']}"]
    for opt in (f"cache={share['cache']}" if share.get("cache") else None,
                "xattr" if share.get("xattr") else None,
                f"sandbox={share['sandbox']}" if share.get("sandbox") else None):  # fmt: skip
        if opt:
            argv += ["-o", opt]
    log_dir = mgr.paths.domain_log_dir(name)
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"virtiofsd-{alias}.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    threading.Thread(target=proc.wait, name=f"virtiofsd-{alias}", daemon=True).start()
    deadline = time.monotonic() + VIRTIOFSD_TIMEOUT
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_virtiofsd(proc.pid, str(sock))
            tail = _last_line(log)
            raise OperationFailedError(
                f"share '{tag}': virtiofsd did not start{': ' + tail if tail else ''}",
                hint=f"see {log}",
            )
        time.sleep(0.02)
    return proc.pid


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1] if lines else ""


def stop_virtiofsd(pid: int, sock: str) -> None:
    """SIGTERM virtiofsd ``pid`` if it still is the one serving ``sock``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return
    if f"--socket-path={sock}".encode() in cmdline.split(b"\0"):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)


def can_use(ident: QemuIdentity, path: str, *, readonly: bool) -> str:
    """What QEMU user ``ident`` lacks on directory ``path``: ``""`` (nothing), ``"read"`` or
    ``"write"``."""
    groups = os.getgrouplist(ident.user, ident.gid) if ident.user else [ident.gid]
    res = subprocess.run(
        ["/bin/sh", "-c", _PROBE, "sh", path, "ro" if readonly else "rw"],
        user=ident.uid, group=ident.gid, extra_groups=groups, check=False,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    return {0: "", 2: "write"}.get(res.returncode, "read")


def check(ident: QemuIdentity, share: dict[str, Any]) -> None:
    """Refuse a share whose directory is missing or out of the QEMU user's reach.

    :raises NotFoundError: the directory does not exist
    :raises InvalidConfigError: it is not a directory, or the QEMU user may not use it
    """
    path, tag = str(share["dir"]), share.get("tag") or "?"
    if not os.path.lexists(path):
        raise NotFoundError(
            f"share '{tag}': source dir '{path}' does not exist",
            hint="create the directory or fix <source dir=...> of the <filesystem>",
        )
    if not os.path.isdir(path):
        raise InvalidConfigError(f"share '{tag}': source dir '{path}' is not a directory")
    if not ident.separate:
        return
    readonly = bool(share.get("ro"))
    lacks = can_use(ident, path, readonly=readonly)
    if lacks:
        what = "search and read" if lacks == "read" else "write"
        perms = "rx" if readonly else "rwx"
        raise InvalidConfigError(
            f"share '{tag}': the QEMU user '{ident.user}' may not {what} '{path}'",
            hint=f"give it access (e.g. setfacl -m u:{ident.user}:{perms} '{path}'); pyvirt "
            "changes no owner or mode of a shared directory",
        )


class SharesHook:
    """Checks each 9p share's directory before every start."""

    name = HOOK_NAME

    def compile(self, mgr: DomainManager, dom: Domain) -> hooks.HookResult | None:
        """Record the shares (none: the hook stays out of the plan)."""
        found = shares(dom)
        return hooks.HookResult({"shares": found}) if found else None

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Check every share again (directories and permissions change between starts) and
        run the virtiofs shares' virtiofsd."""
        ident = resolve(mgr.paths.config)
        for share in data.get("shares", []):
            if share.get("virtiofs"):
                check(QemuIdentity(None, os.geteuid(), os.getegid()), share)  # runs as root
            else:
                check(ident, share)
        for share in data.get("shares", []):
            if share.get("virtiofs"):
                pid = start_virtiofsd(mgr, name, share)
                sock = str(mgr.paths.domain_run_dir(name) / f"{share['alias']}-fs.sock")
                entry = {"pid": pid, "sock": sock}

                def add(section: dict[str, Any], e: dict[str, Any] = entry) -> dict[str, Any]:
                    return {**section, "daemons": [*section.get("daemons", []), e]}

                mgr.rundir(name).update_hooks(HOOK_NAME, add)

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do once QEMU runs."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Stop the virtiofsd daemons (no owner or mode was changed)."""
        for entry in data.get("daemons", []):
            with contextlib.suppress(KeyError, ValueError, TypeError):
                stop_virtiofsd(int(entry["pid"]), str(entry["sock"]))


hooks.register_hook(SharesHook())
