"""``pyvirt clone`` (virt-clone): copy a domain's definition and disks under a new identity.

The clone gets a new name, UUID, MAC addresses and disk paths; its NICs lose their tap names
and a fixed VNC port becomes automatic. Writable disks are copied (``qemu-img convert``,
sparse unless ``nonsparse``), reflinked (``cp --reflink=always``), or for ``linked`` clones
become qcow2 overlays whose backing file is the original's disk (instant). Read-only and
shareable disks (CD-ROMs, shared data) stay shared; a writable disk is never shared.
A running original is refused unless paused or ``force`` (then its disks are read with
QEMU's image lock shared and the copy may be inconsistent: a warning says so).
"""

from __future__ import annotations

import os
import random
import shutil
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt import hostcmd
from pyvirt.errors import (
    AlreadyExistsError,
    HostCommandError,
    InvalidConfigError,
    InvalidStateError,
    UnsupportedError,
)
from pyvirt.install.spec import CheckSpec
from pyvirt.install.xmlgen import random_mac
from pyvirt.progress import CancelToken, Progress, checkpoint
from pyvirt.service.install.checks import check_in_use
from pyvirt.state.domains import check_name
from pyvirt.storage import qemu_img

if TYPE_CHECKING:
    from pyvirt.model.devices import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.service.connection import Connection


@dataclass
class CloneRequest:
    """virt-clone's options."""

    original: str | None = None
    original_xml: str | None = None
    name: str | None = None
    auto_clone: bool = False
    files: list[str] = field(default_factory=list)
    macs: list[str] = field(default_factory=list)
    uuid: str | None = None
    preserve_data: bool = False
    nonsparse: bool = False
    reflink: bool = False
    linked: bool = False
    force: bool = False
    skip_copy: list[str] = field(default_factory=list)
    check: CheckSpec = field(default_factory=CheckSpec)


@dataclass
class DiskCopy:
    """One disk to produce: ``mode`` is copy, reflink, linked or preserve."""

    target: str
    src: str
    dst: str
    format: str
    mode: str
    live: bool = False


@dataclass
class ClonePlan:
    """What :meth:`CloneManager.run` will do."""

    domain: Domain
    copies: list[DiskCopy]
    warnings: list[str]
    nvram: tuple[str, str] | None = None


class CloneManager:
    """The clone use case of one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _source(self, req: CloneRequest, warnings: list[str]) -> tuple[Domain, bool]:
        """The original definition and whether its QEMU is running (paused or not)."""
        doms = self.conn.domains
        if req.original_xml is not None:
            return doms.parse(req.original_xml), False
        if not req.original:
            raise InvalidConfigError("give --original DOMAIN or --original-xml FILE")
        name = doms.resolve(req.original)
        st = doms.status(name)
        running = st.pid is not None
        if running and str(st.state) != "paused" and not req.force:
            raise InvalidStateError(
                f"domain '{name}' is running; its disks would be copied while in use",
                hint="shut it down or suspend it first, or use --force (the copy may be "
                "inconsistent)",
            )
        if running and str(st.state) != "paused":
            warnings.append(
                f"domain '{name}' is running: its disks are copied while the guest writes them, "
                "so the clone's file systems may be inconsistent (fsck on first boot)"
            )
        return doms.definition(name, inactive=True), running

    def _name(self, req: CloneRequest, orig: Domain) -> str:
        if req.name:
            return check_name(req.name)
        if not req.auto_clone:
            raise InvalidConfigError("--name is required", hint="or use --auto-clone")
        store = self.conn.domains.store
        base = f"{orig.name}-clone"
        name, n = base, 1
        while store.exists(name):
            name, n = f"{base}{n}", n + 1
        return name

    def prepare(self, req: CloneRequest) -> ClonePlan:
        """Check everything and build the clone's definition; changes nothing."""
        warnings: list[str] = []
        orig, running = self._source(req, warnings)
        name = self._name(req, orig)
        doms = self.conn.domains
        if doms.store.exists(name) or doms.paths.domain_run_dir(name).is_dir():
            raise AlreadyExistsError(f"domain '{name}' already exists")
        if req.linked and running:
            raise InvalidStateError(
                f"domain '{orig.name}' is running; a linked clone needs its disks unchanging",
                hint="shut it down first",
            )
        if sum((req.linked, req.reflink, req.preserve_data)) > 1:
            raise InvalidConfigError("--linked, --reflink and --preserve-data exclude each other")
        dom = orig.copy()
        dom.name = name
        dom.uuid = req.uuid or str(uuidlib.uuid4())
        self._new_macs(dom, req)
        for g in dom.devices.graphics:
            if g.type == "vnc" and not g.autoport:
                g.port, g.autoport = -1, True
        copies = self._disks(dom, req, running, warnings)
        nvram = None
        if dom.os.nvram:
            new = str(Path(dom.os.nvram).with_name(f"{name}_VARS.fd"))
            nvram, dom.os.nvram = (dom.os.nvram, new), new
        check_in_use(self.conn, dom, req.check)
        if req.linked:
            warnings.append(
                f"the clone's disks are overlays on those of '{orig.name}': keep '{orig.name}' "
                "shut off (or start it from its own overlay) or the clone's data breaks"
            )
        return ClonePlan(dom, copies, warnings, nvram)

    def _new_macs(self, dom: Domain, req: CloneRequest) -> None:
        taken = {i.mac.lower() for i in dom.devices.interfaces if i.mac}
        given = iter(req.macs)

        rng = random.SystemRandom()
        for iface in dom.devices.interfaces:
            mac = next(given, None)
            iface.mac = mac.lower() if mac and mac != "RANDOM" else random_mac(rng, taken)
            iface.target_dev = None

    def _disks(
        self, dom: Domain, req: CloneRequest, running: bool, warnings: list[str]
    ) -> list[DiskCopy]:
        files = iter(req.files)
        copies: list[DiskCopy] = []
        n = 0
        for disk in dom.devices.disks:
            if disk.device not in ("disk", "lun") or disk.readonly or disk.shareable:
                continue
            src = self._path(disk)
            if src is None:
                continue
            if disk.target_dev in req.skip_copy:
                raise InvalidConfigError(
                    f"--skip-copy {disk.target_dev}: a writable disk cannot be shared with "
                    "the original",
                    hint="give --file for it, or make it readonly/shareable in the original",
                )
            dst = next(files, None)
            if dst is None:
                if not req.auto_clone:
                    raise InvalidConfigError(f"--file is needed for disk '{disk.target_dev}'")
                dst = self._auto_path(src, dom.name, n)
            dst = os.path.abspath(dst)
            n += 1
            if os.path.realpath(dst) == os.path.realpath(src):
                raise InvalidConfigError(f"disk '{disk.target_dev}': --file is the original's disk")
            fmt = disk.format or "raw"
            mode = "copy"
            if req.preserve_data:
                if not os.path.exists(dst):
                    raise InvalidConfigError(f"--preserve-data: '{dst}' does not exist")
                mode = "preserve"
            elif os.path.exists(dst):
                raise AlreadyExistsError(
                    f"disk file '{dst}' already exists", hint="give another --file or remove it"
                )
            elif req.linked:
                mode = "linked"
            elif req.reflink:
                mode = "reflink"
            copies.append(DiskCopy(disk.target_dev or "", src, dst, fmt, mode, running))
            disk.type, disk.source_pool, disk.source_volume = "file", None, None
            disk.source_file = dst
            if mode == "linked":
                disk.format = "qcow2"
        return copies

    def _path(self, disk: Disk) -> str | None:
        if disk.type == "volume" and disk.source_pool and disk.source_volume:
            _, info = self.conn.pools.volumes.lookup(disk.source_volume, disk.source_pool)
            return info.path
        if disk.type == "network":
            raise UnsupportedError(
                f"disk '{disk.target_dev}' is a network disk; it cannot be cloned"
            )
        return disk.source_path

    @staticmethod
    def _auto_path(src: str, name: str, index: int) -> str:
        suffix = Path(src).suffix or ".img"
        base = f"{name}{'' if index == 0 else f'-{index}'}"
        path = Path(src).with_name(base + suffix)
        n = 1
        while path.exists():
            path = Path(src).with_name(f"{base}-{n}{suffix}")
            n += 1
        return str(path)

    def run(
        self,
        plan: ClonePlan,
        *,
        nonsparse: bool = False,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> Domain:
        """Produce the disks and define the clone; undo everything on failure or ``cancel``
        (``progress``: bytes of the copied disks, done and total)."""
        created: list[str] = []
        sizes = _copy_sizes(plan.copies) if progress is not None else {}
        total, base = sum(sizes.values()), 0
        try:
            for c in plan.copies:
                if c.mode == "preserve":
                    continue
                checkpoint(None, cancel, 0, 0)
                created.append(c.dst)
                size = sizes.get(c.dst, 0)

                def step(done: int, whole: int, base: int = base, size: int = size) -> None:
                    checkpoint(progress, None, base + done * size // max(whole, 1), total)

                if c.mode == "linked":
                    qemu_img.create(c.dst, "qcow2", None, backing=c.src, backing_fmt=c.format)
                elif c.mode == "reflink":
                    _reflink(c.src, c.dst)
                else:
                    prealloc = "falloc" if nonsparse else None
                    opts = None
                    if c.live:  # QEMU holds the image lock: read with it shared
                        opts = f"driver={c.format},file.filename={c.src.replace(',', ',,')}"
                        opts += ",force-share=on,read-only=on"
                    qemu_img.convert(c.src, c.format, c.dst, c.format,
                                     preallocation=prealloc, src_options=opts,
                                     progress=step if progress is not None else None,
                                     cancel=cancel)  # fmt: skip
                base += size
                checkpoint(progress, cancel, base, total)
            if plan.nvram:
                shutil.copyfile(plan.nvram[0], plan.nvram[1])
                created.append(plan.nvram[1])
            self.conn.domains.define(plan.domain.to_xml())
        except BaseException:
            for path in created:
                Path(path).unlink(missing_ok=True)
            raise
        return plan.domain


def _copy_sizes(copies: list[DiskCopy]) -> dict[str, int]:
    """Guest-visible bytes of each disk to copy (by destination), for progress reports."""
    sizes = {}
    for c in copies:
        if c.mode == "copy":
            try:
                sizes[c.dst] = int(qemu_img.info(c.src, c.format).get("virtual-size", 0))
            except HostCommandError:
                sizes[c.dst] = 0
    return sizes


def _reflink(src: str, dst: str) -> None:
    argv = ["cp", "--reflink=always", "--sparse=auto", src, dst]
    try:
        hostcmd.run(argv, what=f"cannot reflink '{src}' to '{dst}'", timeout=3600)
    except HostCommandError as err:
        if "Operation not supported" in err.stderr or "Invalid argument" in err.stderr:
            raise UnsupportedError(
                f"the file system of '{src}' cannot reflink (copy-on-write clone of a file)",
                hint="use btrfs or XFS with reflink=1, or clone without --reflink",
            ) from err
        raise
