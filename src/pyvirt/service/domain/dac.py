"""Discretionary access control for the QEMU user (hook ``dac``), as libvirt's DAC driver does.

As root, QEMU runs as the unprivileged user of :mod:`pyvirt.state.qemu_user` (``-runas``:
QEMU opens the files on its command line -- images and their backing chains, kernel, initrd,
nvram, sockets, logs, the stderr FIFO, the pidfile, hugepage files -- *before* it drops to that
user, then runs the guest with no capabilities). What it must open *later*, as that user, is
handed over here:

``before_launch``
    the run directory becomes ``root:QEMU-GROUP 0710`` (QEMU may traverse it, not list or
    write it) with a scratch directory ``qemu/`` owned by the QEMU user (``screendump`` writes
    there); every *writable* file image of the domain is chowned to the QEMU user (so that QEMU
    can reopen it read-write: media changes, block jobs), its original owner and mode recorded
    in this hook's section of the run directory's hook data;
``grant``/``release``
    the same for a disk hot-plugged with ``attach-disk --live`` / ``detach-disk --live``;
``after_stop``
    every recorded file gets its owner back, unless another running domain still holds it (a
    ``<shareable/>`` image): the last domain to stop restores it. After a migration
    (:func:`hand_over`) the images the destination's QEMU took over on shared storage are no
    longer recorded here: they stay the QEMU user's.

Read-only images (CD-ROMs, ``<readonly/>`` disks, backing files) keep their owner: QEMU opened
them as root and never needs to write them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.service.hooks import HookResult, register_hook
from pyvirt.state.locks import file_lock
from pyvirt.state.qemu_user import QemuIdentity, resolve

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: pyroute2 (netlink)
# costs ~200 ms and only NIC hot-plug needs it here.

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.opts import JsonValue
    from pyvirt.drivers.qemu.monitor.block import BlockCommands
    from pyvirt.drivers.qemu.monitor.devices import DeviceCommands
    from pyvirt.model import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

log = logging.getLogger(__name__)

HOOK_NAME = "dac"
#: The directory in the run directory that belongs to the QEMU user.
SCRATCH = "qemu"


def identity(mgr: DomainManager) -> QemuIdentity:
    """The user QEMU runs as for ``mgr``'s state."""
    return resolve(mgr.paths.config)


def scratch_dir(mgr: DomainManager, name: str) -> Path:
    """Where QEMU may write files for pyvirt (a screendump): its own directory when it runs as
    another user, else the run directory."""
    run_dir = mgr.paths.domain_run_dir(name)
    scratch = run_dir / SCRATCH
    return scratch if scratch.is_dir() else run_dir


def writable_files(dom: Domain) -> list[str]:
    """The writable file images of ``dom`` (what QEMU may have to reopen read-write)."""
    return writable_files_of(dom.devices.disks)


def writable_files_of(disks: Iterable[Disk]) -> list[str]:
    """The writable file images among ``disks``."""
    out = []
    for disk in disks:
        if disk.type != "file" or not disk.source_file:
            continue
        if disk.readonly or disk.device in ("cdrom",):
            continue
        out.append(disk.source_file)
    return out


def _holders(mgr: DomainManager, path: str, *, but: str) -> list[dict[str, Any]]:
    """The records of ``path`` in the ``dac`` sections of other running domains."""
    out = []
    for other in mgr.running_names():
        if other == but:
            continue
        section = mgr.rundir(other).hooks().sections.get(HOOK_NAME, {})
        out += [e for e in section.get("owned", []) if e.get("path") == path]
    return out


def grant(mgr: DomainManager, name: str, path: str) -> None:
    """Give the QEMU user of running domain ``name`` ownership of image ``path``, recording its
    owner for :func:`release` (no-op when QEMU runs as pyvirt's user, or for non-files)."""
    ident = identity(mgr)
    if not ident.separate:
        return
    path = os.path.realpath(path)  # one key per file, however it is spelled
    with file_lock(mgr.paths.lock_dir / "dac.lock", what="image ownership"):
        try:
            st = os.stat(path)
        except OSError:
            return  # QEMU reports a missing image itself
        if not stat.S_ISREG(st.st_mode):
            return
        held = _holders(mgr, path, but=name)
        entry = dict(held[0]) if held else {"path": path, "uid": st.st_uid, "gid": st.st_gid}

        def change(section: dict[str, Any]) -> dict[str, Any]:
            owned = [e for e in section.get("owned", []) if e.get("path") != path]
            return {**section, "owned": [*owned, entry]}

        mgr.rundir(name).update_hooks(HOOK_NAME, change)
        os.chown(path, ident.uid, ident.gid)


def _restore(mgr: DomainManager, name: str, entry: dict[str, Any]) -> None:
    path = str(entry.get("path", ""))
    if not path or _holders(mgr, path, but=name):
        return  # another running domain still uses it: the last one restores
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, int(entry["uid"]), int(entry["gid"]))


def release(mgr: DomainManager, name: str, path: str) -> None:
    """Give image ``path`` back to its owner after a hot-unplug from domain ``name``."""
    path = os.path.realpath(path)
    with file_lock(mgr.paths.lock_dir / "dac.lock", what="image ownership"):
        section = mgr.rundir(name).hooks().sections.get(HOOK_NAME, {})
        entries = [e for e in section.get("owned", []) if e.get("path") == path]
        for entry in entries:
            _restore(mgr, name, entry)

        def change(section: dict[str, Any]) -> dict[str, Any]:
            owned = [e for e in section.get("owned", []) if e.get("path") != path]
            return {**section, "owned": owned}

        if entries:
            mgr.rundir(name).update_hooks(HOOK_NAME, change)


def hand_over(mgr: DomainManager, name: str, keep: Iterable[str]) -> None:
    """Forget the images of domain ``name`` that a migration handed over to the destination's
    QEMU (shared storage: every one but those in ``keep``, the copied disks' own images): the
    stop of the source QEMU must not take them from the QEMU user while the destination's
    QEMU runs on them (it reopens them for block jobs, media changes)."""
    if not identity(mgr).separate:
        return
    kept = {os.path.realpath(p) for p in keep}
    with file_lock(mgr.paths.lock_dir / "dac.lock", what="image ownership"):

        def change(section: dict[str, Any]) -> dict[str, Any]:
            owned = [e for e in section.get("owned", []) if e.get("path") in kept]
            return {**section, "owned": owned}

        mgr.rundir(name).update_hooks(HOOK_NAME, change)


def pass_file(
    mgr: DomainManager, mon: BlockCommands, path: str, tag: str, *, readonly: bool
) -> str:
    """Open ``path`` here and pass it to QEMU as an fd set (``add-fd``, both a read-write and a
    read-only fd unless ``readonly``); returns ``/dev/fdset/N`` to give QEMU instead of the path,
    or the path itself when QEMU runs as pyvirt's user or the file cannot be opened (QEMU then
    reports the error). An unprivileged QEMU thus needs neither the directories nor the
    permissions of the file.

    :param tag: the fd set's ``opaque`` tag, for :func:`drop_files`
    """
    if not identity(mgr).separate:
        return path
    fdset: int | None = None
    for flag in [os.O_RDONLY] if readonly else [os.O_RDWR, os.O_RDONLY]:
        try:
            fd = os.open(path, flag | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fdset = mon.add_fd(fd, fdset_id=fdset, opaque=f"pyvirt:{tag}")
        finally:
            os.close(fd)
    return path if fdset is None else f"/dev/fdset/{fdset}"


def pass_files(
    mgr: DomainManager, mon: BlockCommands, nodes: list[dict[str, JsonValue]], alias: str
) -> None:
    """:func:`pass_file` for the ``file`` nodes of a hot-plugged disk (``filename`` rewritten).

    :param alias: the disk's alias (the fd sets' tag)
    """
    for node in nodes:
        filename = node.get("filename")
        if node.get("driver") == "file" and isinstance(filename, str):
            node["filename"] = pass_file(
                mgr, mon, filename, alias, readonly=bool(node.get("read-only"))
            )


def drop_files(mgr: DomainManager, mon: BlockCommands, tag: str) -> None:
    """Remove the fd sets :func:`pass_file` made with ``tag`` (once QEMU no longer uses them:
    it closes the fds when the last user of each goes away)."""
    if not identity(mgr).separate:
        return
    for fdset, opaque in mon.query_fdsets():
        if opaque == f"pyvirt:{tag}":
            with contextlib.suppress(Exception):
                mon.remove_fd(fdset)


def pass_tap(mgr: DomainManager, mon: DeviceCommands, netdev: dict[str, JsonValue]) -> None:
    """Open the tap of a hot-plugged tap backend here and pass it (and ``/dev/vhost-net`` for
    ``vhost``) to QEMU by name: an unprivileged QEMU may not open ``/dev/net/tun`` (mode 0600
    on some hosts). ``netdev`` is rewritten (``ifname`` -> ``fd``); no-op when QEMU runs as
    pyvirt's user, or for multiqueue (QEMU then opens the tap it owns by name).
    """
    from pyvirt.network import netlink  # lazy

    ifname = netdev.get("ifname")
    if not identity(mgr).separate or netdev.get("type") != "tap" or not isinstance(ifname, str):
        return
    if netdev.get("queues") not in (None, 1):
        return
    netid = str(netdev["id"])
    fd = netlink.open_tap(ifname)
    try:
        mon.getfd(fd, f"{netid}-fd")
    finally:
        os.close(fd)
    for key in ("ifname", "script", "downscript"):
        netdev.pop(key, None)
    netdev["fd"] = f"{netid}-fd"
    if netdev.get("vhost"):
        vfd = os.open("/dev/vhost-net", os.O_RDWR | os.O_CLOEXEC)
        try:
            mon.getfd(vfd, f"{netid}-vhostfd")
        finally:
            os.close(vfd)
        netdev["vhostfd"] = f"{netid}-vhostfd"


class DacHook:
    """Hands the domain's run directory and writable images to the QEMU user."""

    name = HOOK_NAME

    def compile(self, mgr: DomainManager, dom: Domain) -> HookResult | None:
        return HookResult(data={"files": writable_files(dom)})

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        ident = identity(mgr)
        if ident.warning:
            log.warning("%s", ident.warning)
        if not ident.separate:
            return
        run_dir = mgr.paths.domain_run_dir(name)
        os.chown(run_dir, -1, ident.gid)
        os.chmod(run_dir, 0o710)
        scratch = run_dir / SCRATCH
        scratch.mkdir(mode=0o700, exist_ok=True)
        os.chown(scratch, ident.uid, ident.gid)
        os.chmod(scratch, 0o700)
        for path in data.get("files", []):
            grant(mgr, name, str(path))

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        del mgr, name, pid, data

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        with file_lock(mgr.paths.lock_dir / "dac.lock", what="image ownership"):
            for entry in data.get("owned", []):
                try:
                    _restore(mgr, name, entry)
                except (OSError, KeyError, ValueError) as err:
                    log.warning("cannot restore the owner of %s: %s", entry.get("path"), err)


register_hook(DacHook())
