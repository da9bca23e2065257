"""Block jobs of domains: ``blockcommit``, ``blockpull``, ``blockcopy`` and ``blockjob``.

Running domains use QEMU's block jobs (one per disk; its QEMU job id is the disk's target,
``vda``); they are started with auto-dismiss off, so whoever looks next at a disk whose job
ended (this process while it waits, or a later ``blockjob``) finishes it: the live XML gets
the disk's new source and ``<backingStore>`` chain as QEMU has it open, the definition of a
persistent domain the new source after a pivot, and files asked for are deleted.

Shut-off domains: :func:`commit` and :func:`stream` run ``qemu-img commit`` / ``qemu-img
rebase`` on the definition's images; :func:`copy` needs a running domain.

Every waiting function takes ``progress`` and ``cancel`` (:mod:`pyvirt.progress`): progress
is reported in bytes of QEMU's job; a cancel (or ``timeout``) aborts the QEMU job, removes a
copy's partial target pyvirt created, and raises :class:`~pyvirt.progress.CancelledError`.
Other features (snapshot deletion) call :func:`commit` and :func:`stream` directly, *without*
holding the domain lock: these functions take it themselves around each step (start, pivot,
XML update) and release it while QEMU works, so other commands on the domain go on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyvirt import hostcmd
from pyvirt.errors import (
    AlreadyExistsError,
    HostCommandError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
)
from pyvirt.model import Disk
from pyvirt.model.xmltree import insert_element, parse_xml, remove_element
from pyvirt.progress import CancelledError, CancelToken, Progress

# lazy: function-local imports marked ``# lazy`` keep the CLI's start-up fast and break an
# import cycle: the QMP client, the disk attach code and the DAC hook load only when a block
# job runs.

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor.blockjobs import ChainImage, JobStatus
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

__all__ = [
    "BlockJobInfo",
    "BlockJobResult",
    "abort",
    "commit",
    "copy",
    "info",
    "pivot",
    "set_speed",
    "stream",
]

#: the hook data section holding what pyvirt knows of each disk's job
SECTION = "blockjobs"
#: seconds a waiter holds the QMP socket listening for the job's next status change before it
#: lets other clients in (and reports progress)
SLICE = 0.25
#: seconds QEMU gets to pivot or to end a cancelled job
SETTLE = 60.0
MiB = 1024 * 1024
#: QEMU's job type -> pyvirt's kind
_KINDS = {"commit": "commit", "stream": "pull", "mirror": "copy"}


@dataclass(frozen=True)
class BlockJobInfo:
    """A disk's running block job (``blockjob --info``).

    :ivar kind: ``pull``, ``copy``, ``commit`` or ``active-commit``
    :ivar done: bytes done, of ``total``
    :ivar bandwidth: the limit in bytes per second (0: none)
    :ivar ready: a copy or active commit in its synchronized phase (it may pivot)
    """

    disk: str
    kind: str
    done: int
    total: int
    bandwidth: int
    ready: bool
    status: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "disk": self.disk,
            "kind": self.kind,
            "done": self.done,
            "total": self.total,
            "bandwidth": self.bandwidth,
            "ready": self.ready,
            "status": self.status,
        }


@dataclass(frozen=True)
class BlockJobResult:
    """How a block job call ended.

    :ivar outcome: ``started`` (not waited for), ``completed``, ``pivoted``, ``ready`` (a copy
        or active commit left in its synchronized phase), ``finished`` (a copy ended without
        a pivot: the target is a full copy) or ``kept-overlay`` (an active commit ended
        without a pivot)
    :ivar source: the disk's source now (top of its chain)
    :ivar chain: the disk's backing chain now, top first
    """

    disk: str
    kind: str
    outcome: str
    source: str = ""
    chain: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "disk": self.disk,
            "kind": self.kind,
            "outcome": self.outcome,
            "source": self.source,
            "chain": list(self.chain),
        }


@dataclass
class _Live:
    """A running domain's disk as QEMU has it."""

    name: str
    target: str
    root: str
    chain: list[ChainImage]
    alias: str = ""

    def own_nodes(self) -> list[str]:
        """The nodes pyvirt added for the disk at start (top first): a pivot leaves them
        behind, holding the old image open, so they are deleted after it."""
        return [self.root, *(f"{self.alias}-{n}" for n in ("format", "slice", "storage"))]


# -- public: starting jobs ---------------------------------------------------------------
def commit(
    mgr: DomainManager,
    ident: str,
    disk: str,
    *,
    top: str | None = None,
    base: str | None = None,
    active: bool = False,
    pivot: bool = True,
    keep_overlay: bool = False,
    shallow: bool = False,
    delete: bool = False,
    keep_relative: bool = False,
    bandwidth: int | None = None,
    wait: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> BlockJobResult:
    """Commit the images from ``top`` (default: the active layer, which needs ``active``)
    down into ``base`` (default: the bottom of the chain; ``shallow``: the image right below
    ``top``). An active commit pivots to ``base`` with ``pivot`` (the overlay leaves the
    chain), keeps the overlay with ``keep_overlay``, else stays in its synchronized phase.

    :param disk: the disk's target (``vda``) or source path
    :param delete: delete the committed images once done
    :param keep_relative: the image above ``top`` names ``base`` by a path relative to its
        own directory (``--keep-relative``; not for an active commit)
    :param bandwidth: bytes per second, at most
    :param wait: wait for the end (else return ``started``)
    :raises InvalidConfigError: contradicting options, or images not in the chain
    :raises InvalidStateError: the disk has no backing image, or a job runs on it
    :raises CancelledError: cancelled or timed out (the job was aborted)
    """
    if pivot and keep_overlay:
        raise InvalidConfigError("--pivot and --keep-overlay are mutually exclusive")
    if shallow and base:
        raise InvalidConfigError("Options --base and --shallow are mutually exclusive")
    if keep_relative and top is None:
        raise InvalidConfigError(
            "--keep-relative applies to a commit below the active layer",
            hint="give --top; an active commit leaves no image above the base",
        )
    name = mgr.resolve(ident)
    if mgr.live_record(name, cleanup=True) is None:
        return _offline_commit(
            mgr,
            name,
            disk,
            top=top,
            base=base,
            active=active,
            pivot=pivot,
            keep_overlay=keep_overlay,
            shallow=shallow,
            delete=delete,
            keep_relative=keep_relative,
            progress=progress,
            cancel=cancel,
        )
    with mgr.locked(name), _monitor(mgr, name) as mon:
        live = _live_disk(mgr, name, disk, mon)
        _reap(mgr, live, mon)
        chain = live.chain
        top_i = 0 if top is None else _index(chain, top, live, "top")
        if len(chain) < 2:
            raise InvalidStateError(
                f"disk '{live.target}' does not have a backing image to commit into",
                hint="blockcommit merges an overlay into its backing image",
            )
        if top_i == 0 and not active:
            raise InvalidConfigError(
                f"commit of disk '{live.target}' active layer requires --active",
                hint="add --active (and --pivot to switch to the base when done)",
            )
        if top_i != 0 and active:
            raise InvalidConfigError(
                f"--active commits the top of disk '{live.target}' only",
                hint="leave out --top, or --active",
            )
        if shallow:
            base_i = top_i + 1
        elif base is not None:
            base_i = _index(chain, base, live, "base")
        else:
            base_i = len(chain) - 1
        if base_i <= top_i or base_i >= len(chain):
            raise InvalidConfigError(
                f"base '{chain[min(base_i, len(chain) - 1)].filename}' is not below top "
                f"'{chain[top_i].filename}' in the chain of disk '{live.target}'"
            )
        if top_i == 0 and base_i == len(chain) - 1:  # QEMU's defaults: no node lookup
            base_node = top_node = None
        else:
            nodes = _nodes(mon)
            base_node = _node_of(nodes, chain[base_i])
            top_node = None if top_i == 0 else _node_of(nodes, chain[top_i])
        for img in chain[max(top_i - 1, 0) : base_i + 1]:
            _grant(mgr, name, img.filename)
        kind = "active-commit" if top_i == 0 else "commit"
        doomed = [c.filename for c in chain[top_i:base_i]] if delete else []
        backing = (
            _relative(chain[base_i].filename, chain[top_i - 1].filename)
            if keep_relative and top_i > 0
            else None
        )
        mon.block_commit(live.target, live.root, top_node=top_node, base_node=base_node,
                         speed=bandwidth, backing_file=backing)  # fmt: skip
        _remember(mgr, name, live.target, {"kind": kind, "delete": doomed, "old": live.own_nodes()})
    if not wait:
        return BlockJobResult(live.target, kind, "started")
    return _follow(
        mgr,
        name,
        live.target,
        kind,
        pivot=pivot,
        finish=keep_overlay,
        timeout=timeout,
        progress=progress,
        cancel=cancel,
    )


def stream(
    mgr: DomainManager,
    ident: str,
    disk: str,
    *,
    base: str | None = None,
    bandwidth: int | None = None,
    wait: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> BlockJobResult:
    """Pull the data of the backing images above ``base`` (default: all of them) into the
    disk's active layer, which then backs onto ``base`` (or nothing: flattened).

    :raises InvalidConfigError: ``base`` is not in the chain
    :raises InvalidStateError: a job runs on the disk
    :raises CancelledError: cancelled or timed out
    """
    name = mgr.resolve(ident)
    if mgr.live_record(name, cleanup=True) is None:
        return _offline_stream(mgr, name, disk, base=base, progress=progress, cancel=cancel)
    with mgr.locked(name), _monitor(mgr, name) as mon:
        live = _live_disk(mgr, name, disk, mon)
        _reap(mgr, live, mon)
        base_node = None
        if base is not None:
            base_i = _index(live.chain, base, live, "base")
            if base_i == 0:
                raise InvalidConfigError(
                    f"base '{base}' is the active layer of disk '{live.target}'"
                )
            base_node = _node_of(_nodes(mon), live.chain[base_i])
        _grant(mgr, name, live.chain[0].filename)
        mon.block_stream(live.target, live.root, base_node=base_node, speed=bandwidth)
        _remember(mgr, name, live.target, {"kind": "pull"})
    if not wait:
        return BlockJobResult(live.target, "pull", "started")
    return _follow(
        mgr, name, live.target, "pull", timeout=timeout, progress=progress, cancel=cancel
    )


def copy(
    mgr: DomainManager,
    ident: str,
    disk: str,
    dest: str,
    *,
    format: str | None = None,
    pivot: bool = False,
    finish: bool = False,
    shallow: bool = False,
    reuse_external: bool = False,
    transient_job: bool = False,
    blockdev: bool = False,
    bandwidth: int | None = None,
    granularity: int | None = None,
    buf_size: int | None = None,
    wait: bool = True,
    timeout: float | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> BlockJobResult:
    """Copy a running domain's disk to ``dest`` while the guest runs, then pivot to it
    (``pivot``), end with a finished copy (``finish``), or stay mirroring.

    ``dest`` is created (``format``: default the source's; ``shallow``: the top image only,
    backed by the source's backing image) unless ``reuse_external``; a cancelled copy removes
    the partial ``dest`` pyvirt created and leaves the source untouched. ``transient_job``:
    a pivot changes the live XML only, not the definition.

    :raises InvalidStateError: the domain is not running, or a job runs on the disk
    :raises AlreadyExistsError: ``dest`` exists (without ``reuse_external``)
    :raises CancelledError: cancelled or timed out
    """
    if pivot and finish:
        raise InvalidConfigError("--pivot and --finish are mutually exclusive")
    if granularity is not None and (
        granularity < 512 or granularity > 64 << 20 or granularity & (granularity - 1)
    ):
        raise InvalidConfigError(
            f"granularity {granularity} must be a power of two between 512 and 64 MiB"
        )
    if buf_size is not None and not 0 < buf_size <= 1 << 30:
        raise InvalidConfigError(f"buf-size {buf_size} must be between 1 byte and 1 GiB")
    name = mgr.resolve(ident)
    if mgr.live_record(name, cleanup=True) is None:
        raise InvalidStateError(
            f"domain '{name}' is not running",
            hint="blockcopy copies a running guest's disk; copy a shut-off domain's image "
            "with 'vol-clone' or 'qemu-img convert'",
        )
    dest = os.path.abspath(dest)
    with mgr.locked(name), _monitor(mgr, name) as mon:
        live = _live_disk(mgr, name, disk, mon)
        _reap(mgr, live, mon)
        fmt = format or live.chain[0].format or "raw"
        created = False
        if reuse_external or blockdev:
            if not os.path.exists(dest):
                raise NotFoundError(
                    f"destination '{dest}' does not exist",
                    hint="leave out --reuse-external to create it",
                )
        else:
            if os.path.exists(dest):
                raise AlreadyExistsError(
                    f"destination '{dest}' already exists",
                    hint="remove it, or use --reuse-external to copy into it",
                )
            _create_target(dest, fmt, live, shallow)
            created = True
        try:
            _grant(mgr, name, dest)
            mon.drive_mirror(
                live.target, live.root, dest, format=fmt, shallow=shallow, speed=bandwidth,
                granularity=granularity, buf_size=buf_size,
            )  # fmt: skip
        except BaseException:
            if created:
                _remove(dest)
            raise
        _remember(
            mgr,
            name,
            live.target,
            {
                "kind": "copy",
                "dest": dest,
                "created": created,
                "transient": transient_job,
                "blockdev": blockdev,
                "old": live.own_nodes(),
            },
        )
    if not wait:
        return BlockJobResult(live.target, "copy", "started")
    return _follow(
        mgr,
        name,
        live.target,
        "copy",
        pivot=pivot,
        finish=finish,
        timeout=timeout,
        progress=progress,
        cancel=cancel,
    )


def copy_dest_of(xml: str) -> tuple[str, str | None, bool]:
    """``blockcopy --xml``: (path, format, is a block device) of the destination a
    ``<disk>`` element describes.

    :raises InvalidConfigError: not a ``<disk>`` with a local file or block source
    """
    from pyvirt.model.devices.disk import Disk  # lazy
    from pyvirt.model.xmltree import parse_xml, tag_of  # lazy

    el = parse_xml(xml, what="blockcopy --xml")
    if tag_of(el) != "disk":
        raise InvalidConfigError("blockcopy --xml needs a <disk> element")
    disk = Disk(el)
    path = disk.source_path
    if disk.type not in ("file", "block") or not path:
        raise InvalidConfigError(
            "blockcopy --xml needs a <disk type='file'> or <disk type='block'> with a <source>",
            hint="network destinations are not supported",
        )
    return path, disk.format, disk.type == "block"


# -- public: the job controls --------------------------------------------------------------
def info(mgr: DomainManager, ident: str, disk: str) -> BlockJobInfo | None:
    """The disk's running block job, or None (a job that ended is finished first).

    :raises InvalidStateError: the domain is not running
    """
    name, _ = mgr.running(ident)
    with mgr.locked(name), _monitor(mgr, name) as mon:
        live = _live_disk(mgr, name, disk, mon)
        _reap(mgr, live, mon, refuse=False)
        st = _job(mon, live.target)
        if st is None:
            return None
        kind = _recorded(mgr, name, live.target).get("kind") or _KINDS.get(st.type, st.type)
        return BlockJobInfo(
            live.target, str(kind), st.done, st.total, st.speed, st.ready, st.status
        )


def abort(
    mgr: DomainManager, ident: str, disk: str, *, pivot: bool = False, wait: bool = True
) -> None:
    """Abort the disk's block job (``blockjob --abort``); ``pivot``: pivot a ready copy or
    active commit instead. A copy aborted before it was ready loses its partial target.

    :raises InvalidStateError: no job runs on the disk
    """
    name, _ = mgr.running(ident)
    target = _running_target(mgr, name, disk)
    if pivot:
        _pivot(mgr, name, target)
        return
    _abort(mgr, name, target, wait=wait)


def pivot(mgr: DomainManager, ident: str, disk: str) -> BlockJobResult:
    """Pivot a ready copy or active commit (``blockjob --pivot``).

    :raises InvalidStateError: no job runs on the disk, or it is not ready yet
    """
    name, _ = mgr.running(ident)
    target = _running_target(mgr, name, disk)
    return _pivot(mgr, name, target)


def set_speed(mgr: DomainManager, ident: str, disk: str, bandwidth: int) -> None:
    """Limit the disk's running job to ``bandwidth`` bytes per second (0: no limit).

    :raises InvalidStateError: no job runs on the disk
    """
    name, _ = mgr.running(ident)
    target = _running_target(mgr, name, disk)
    with _monitor(mgr, name) as mon:
        mon.block_job_set_speed(target, bandwidth)


# -- following a job -----------------------------------------------------------------------
def _follow(
    mgr: DomainManager,
    name: str,
    target: str,
    kind: str,
    *,
    pivot: bool = False,
    finish: bool = False,
    timeout: float | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> BlockJobResult:
    """Watch the job until it ends (or, for a copy or active commit, is ready), then finish it
    as asked; a cancel, a timeout or Ctrl-C aborts it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            with _monitor(mgr, name) as mon:
                st = _job(mon, target)
                if st is not None and not _settled(st, kind):
                    mon.wait_job_change(target, SLICE)  # back at once on a status change
                    st = _job(mon, target)
                if pivot and st is not None and _settled(st, kind) and not st.concluded:
                    if progress is not None:
                        progress(st.done, st.total)
                    if cancel is not None:
                        cancel.check(f"block {kind} of disk '{target}'")
                    done = _pivot_now(mgr, name, target, mon)  # no second session
                    if done is not None:
                        return done
            if st is None:
                return _result(mgr, name, target, kind, "completed")
            if progress is not None:
                progress(st.done, st.total)
            if cancel is not None:
                cancel.check(f"block {kind} of disk '{target}'")
            if st.concluded:
                return _conclude(mgr, name, target, kind)
            if st.ready and kind in ("copy", "active-commit"):
                if pivot:
                    return _pivot(mgr, name, target)
                if finish:
                    _abort(mgr, name, target, wait=True)
                    return _result(
                        mgr, name, target, kind, "finished" if kind == "copy" else "kept-overlay"
                    )
                return _result(mgr, name, target, kind, "ready")
            if deadline is not None and time.monotonic() >= deadline:
                raise CancelledError(f"block {kind} of disk '{target}' timed out")
    except (CancelledError, KeyboardInterrupt):
        _abort(mgr, name, target, wait=True, quiet=True)
        raise


def _settled(st: JobStatus, kind: str) -> bool:
    """Whether the job needs no more waiting: it ended, or a pivot-able job is ready."""
    return st.concluded or (st.ready and kind in ("copy", "active-commit"))


def _conclude(mgr: DomainManager, name: str, target: str, kind: str) -> BlockJobResult:
    """Finish a concluded job: dismiss it, update the XML, delete what was asked."""
    with mgr.locked(name), _monitor(mgr, name) as mon:
        st = _job(mon, target)
        rec = _recorded(mgr, name, target)
        if st is not None:
            mon.job_dismiss(target)
        _forget(mgr, name, target)
        if st is not None and st.error:
            if rec.get("kind") == "copy" and rec.get("created"):
                _remove(str(rec.get("dest", "")))
            raise OperationFailedError(f"block {kind} of disk '{target}' failed: {st.error}")
        chain = _sync_live(mgr, name, target, mon)
    for path in rec.get("delete", []):
        _remove(str(path))
    return BlockJobResult(target, kind, "completed", chain[0] if chain else "", chain)


def _pivot(mgr: DomainManager, name: str, target: str) -> BlockJobResult:
    with mgr.locked(name), _monitor(mgr, name) as mon:
        rec, kind, chain = _pivot_locked(mgr, name, target, mon)
    return _pivoted(target, rec, kind, chain)


def _pivot_now(mgr: DomainManager, name: str, target: str, mon: Monitor) -> BlockJobResult | None:
    """:func:`_pivot` on a waiter's QMP session if the domain lock is free right now; None if
    it is not (the waiter must not wait for the lock while it holds the session: the lock's
    holder may be waiting for the session). Saves a QMP connect and the reads before it."""
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(mgr.locked(name, timeout=0.0))
        except OperationFailedError:
            return None
        rec, kind, chain = _pivot_locked(mgr, name, target, mon)
    return _pivoted(target, rec, kind, chain)


def _pivot_locked(
    mgr: DomainManager, name: str, target: str, mon: Monitor
) -> tuple[dict[str, Any], str, list[str]]:
    """Pivot the disk's ready job, holding the domain lock: the job's record, its kind and the
    disk's chain now."""
    st = _job(mon, target)
    rec = _recorded(mgr, name, target)
    if st is None or st.concluded:
        raise InvalidStateError(f"disk '{target}' has no active block job to pivot")
    kind = str(rec.get("kind") or _KINDS.get(st.type, st.type))
    if not st.ready:
        raise InvalidStateError(
            f"block job of disk '{target}' is not ready for a pivot yet",
            hint="wait for its synchronized phase ('blockjob --info' shows it)",
        )
    if not mon.block_job_complete_wait(target, SETTLE):
        raise OperationFailedError(f"QEMU did not pivot disk '{target}' in {SETTLE:g} s")
    _settle(mon, target)
    _forget(mgr, name, target)
    dom = _live_dom(mgr, name)
    disk = _find(dom, target)
    root, now = _chain_of(mon, _alias(mgr, dom, disk))  # the old nodes are not in it
    _drop_nodes(mgr, name, target, mon, [str(n) for n in rec.get("old", [])], root=root)
    chain = _sync_live(mgr, name, target, mon, known=(dom, disk, now))
    if not rec.get("transient"):
        fmt = disk.format if chain and disk.source_path == chain[0] and disk.format else "raw"
        _sync_definition(mgr, name, target, chain, blockdev=bool(rec.get("blockdev")), fmt=fmt)
    return rec, kind, chain


def _pivoted(target: str, rec: dict[str, Any], kind: str, chain: list[str]) -> BlockJobResult:
    """After a pivot, outside the lock: delete the files asked for; the result."""
    for path in rec.get("delete", []):
        _remove(str(path))
    return BlockJobResult(target, kind, "pivoted", chain[0] if chain else "", chain)


def _abort(mgr: DomainManager, name: str, target: str, *, wait: bool, quiet: bool = False) -> None:
    """Cancel the job; remove a copy's partial target pyvirt made (not once it was ready)."""
    with mgr.locked(name), _monitor(mgr, name) as mon:
        st = _job(mon, target)
        rec = _recorded(mgr, name, target)
        if st is None:
            if quiet:
                return
            raise InvalidStateError(
                f"disk '{target}' has no active block job",
                hint="start one with blockcommit, blockpull or blockcopy",
            )
        was_ready = st.ready
        if not st.concluded:
            mon.block_job_cancel(target, force=True)
        if not wait:
            return
        _settle(mon, target)
        _forget(mgr, name, target)
        _sync_live(mgr, name, target, mon)
    if rec.get("kind") == "copy" and rec.get("created") and not was_ready:
        _remove(str(rec.get("dest", "")))


def _drop_nodes(
    mgr: DomainManager,
    name: str,
    target: str,
    mon: Monitor,
    names: list[str],
    *,
    root: str | None = None,
) -> None:
    """Delete the disk's old nodes pyvirt added that the pivot left out of its chain (``root``:
    the disk's root node now, if known). A node that is gone or still in use is QEMU's error,
    ignored: no ``query-named-block-nodes`` (all nodes and their images) to check first."""
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    if root is None:
        root, _ = _chain_for(mgr, name, target, mon)
    for node in dict.fromkeys(names):
        if node and node != root:
            with contextlib.suppress(QmpCommandError):
                mon.blockdev_del(node)


def _settle(mon: Monitor, target: str) -> None:
    """Wait for the job to conclude, then dismiss it."""
    deadline = time.monotonic() + SETTLE
    while True:
        st = _job(mon, target)
        if st is None:
            return
        if st.concluded:
            mon.job_dismiss(target)
            return
        if time.monotonic() > deadline:
            raise OperationFailedError(f"block job of disk '{target}' did not end in {SETTLE:g} s")
        mon.wait_job_change(target, SLICE)


def _reap(mgr: DomainManager, live: _Live, mon: Monitor, *, refuse: bool = True) -> None:
    """Finish the disk's job that ended meanwhile; refuse (``refuse``) if one still runs."""
    st = _job(mon, live.target)
    if st is None:
        return
    if st.concluded:
        rec = _recorded(mgr, live.name, live.target)
        mon.job_dismiss(live.target)
        _forget(mgr, live.name, live.target)
        if st.error:
            if rec.get("kind") == "copy" and rec.get("created"):
                _remove(str(rec.get("dest", "")))
        else:
            for path in rec.get("delete", []):
                _remove(str(path))
        live.chain = _chain_of(mon, live.alias)[1]
        _sync_live(mgr, live.name, live.target, mon)
        return
    if refuse:
        raise InvalidStateError(
            f"disk '{live.target}' already has an active block job",
            hint=f"watch it with 'blockjob {live.name} {live.target} --info', or end it with "
            "--abort or --pivot",
        )


def _result(mgr: DomainManager, name: str, target: str, kind: str, outcome: str) -> BlockJobResult:
    with _monitor(mgr, name) as mon:
        _, chain = _chain_for(mgr, name, target, mon)
    files = [c.filename for c in chain]
    return BlockJobResult(target, kind, outcome, files[0] if files else "", files)


# -- QEMU's view of a disk -----------------------------------------------------------------
@contextlib.contextmanager
def _monitor(mgr: DomainManager, name: str) -> Iterator[Monitor]:
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    rec = mgr.live_record(name, cleanup=False)
    if rec is None:
        raise InvalidStateError(f"domain '{name}' is not running", hint="start it first")
    with Monitor(rec.qmp_socket, name=name) as mon:
        yield mon


def _job(mon: Monitor, target: str) -> JobStatus | None:
    return mon.block_job(target)


def _live_dom(mgr: DomainManager, name: str) -> Domain:
    """The live definition, parsed without validating it again (pyvirt wrote it, validated,
    at start; the validation costs ~50x the parse, and a commit reads it several times)."""
    from pyvirt.model.domain import Domain as DomainModel  # lazy
    from pyvirt.model.xmltree import parse_xml  # lazy

    try:
        return DomainModel(parse_xml(mgr.rundir(name).live_xml(), what=DomainModel.WHAT))
    except NotFoundError:
        raise InvalidStateError(f"domain '{name}' is not running") from None


def _find(dom: Domain, ident: str) -> Disk:
    from pyvirt.service.disk.attach import find_disk  # lazy

    disk = find_disk(dom, ident)
    if disk is None or disk.target_dev is None:
        raise NotFoundError(
            f"domain '{dom.name}' has no disk '{ident}'", hint="list its disks with 'domblklist'"
        )
    return disk


def _alias(mgr: DomainManager, dom: Domain, disk: Disk) -> str:
    from pyvirt.service.disk.attach import disk_alias  # lazy

    return disk_alias(mgr, dom, disk)


def _chain_of(mon: Monitor, alias_or_target: str) -> tuple[str, list[ChainImage]]:
    for key, (root, chain) in mon.block_chains().items():
        parts = key.strip("/").split("/")
        if alias_or_target in parts:
            return root, chain
    raise NotFoundError(
        f"QEMU has no medium for disk '{alias_or_target}'", hint="an empty CD-ROM has no block job"
    )


def _chain_for(
    mgr: DomainManager, name: str, target: str, mon: Monitor
) -> tuple[str, list[ChainImage]]:
    dom = _live_dom(mgr, name)
    return _chain_of(mon, _alias(mgr, dom, _find(dom, target)))


def _live_disk(mgr: DomainManager, name: str, ident: str, mon: Monitor) -> _Live:
    dom = _live_dom(mgr, name)
    disk = _find(dom, ident)
    target = str(disk.target_dev)
    root, chain = _chain_of(mon, _alias(mgr, dom, disk))
    if not chain:
        raise NotFoundError(f"QEMU has no image for disk '{target}'")
    return _Live(name, target, root, chain, _alias(mgr, dom, disk))


def _running_target(mgr: DomainManager, name: str, ident: str) -> str:
    return str(_find(_live_dom(mgr, name), ident).target_dev)


def _same(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _index(chain: list[ChainImage], path: str, live: _Live, what: str) -> int:
    if path == live.target:
        return 0
    for i, img in enumerate(chain):
        if _same(img.filename, path):
            return i
    m = re.fullmatch(rf"{re.escape(live.target)}\[(\d+)\]", path)
    if m and int(m.group(1)) < len(chain):
        return int(m.group(1))
    raise InvalidConfigError(
        f"{what} '{path}' is not in the backing chain of disk '{live.target}'",
        hint="'dumpxml' shows the chain under <backingStore>",
    )


def _nodes(mon: Monitor) -> list[tuple[str, str, str]]:
    return [(n.node_name, n.drv, n.file) for n in mon.query_named_block_nodes()]


def _node_of(nodes: list[tuple[str, str, str]], img: ChainImage) -> str:
    for node, drv, path in nodes:
        if drv == img.format and _same(path, img.filename):
            return node
    raise OperationFailedError(f"QEMU has no block node for image '{img.filename}'")


def _grant(mgr: DomainManager, name: str, path: str) -> None:
    from pyvirt.service.domain import dac  # lazy

    dac.grant(mgr, name, path)


# -- what pyvirt remembers of a job --------------------------------------------------------
def _recorded(mgr: DomainManager, name: str, target: str) -> dict[str, Any]:
    rec = mgr.rundir(name).hooks().sections.get(SECTION, {}).get(target)
    return dict(rec) if isinstance(rec, dict) else {}


def _remember(mgr: DomainManager, name: str, target: str, rec: dict[str, Any]) -> None:
    mgr.rundir(name).update_hooks(SECTION, lambda s: {**s, target: rec})


def _forget(mgr: DomainManager, name: str, target: str) -> None:
    mgr.rundir(name).update_hooks(SECTION, lambda s: {k: v for k, v in s.items() if k != target})


def _remove(path: str) -> None:
    if path and os.path.isfile(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


# -- the XML -------------------------------------------------------------------------------
def backing_xml(chain: list[tuple[str, str]], index: int = 1) -> str:
    """libvirt's nested ``<backingStore>`` of a chain below the top: ``(file, format)``
    pairs top first, ending in an empty ``<backingStore/>``."""
    if not chain:
        return "<backingStore/>"
    path, fmt = chain[0]
    inner = backing_xml(chain[1:], index + 1)
    return (
        f"<backingStore type='file' index='{index}'><format type='{_esc(fmt)}'/>"
        f"<source file='{_esc(path)}'/>{inner}</backingStore>"
    )


def _esc(text: str) -> str:
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace("'", "&apos;")
        .replace('"', "&quot;")
    )


def set_chain(disk: Disk, chain: list[tuple[str, str]], *, blockdev: bool = False) -> None:
    """Make ``disk``'s source the top of ``chain`` (``(file, format)``, top first) and its
    ``<backingStore>`` the rest (none when ``chain`` has one image)."""
    top, fmt = chain[0]
    if disk.source_path is None or not _same(disk.source_path, top):
        src = disk.element.find("source")
        if src is not None:
            remove_element(src)
        disk.type = "block" if blockdev else ("block" if disk.type == "block" else "file")
        insert_element(disk.element, parse_xml("<source/>"), Disk.ORDER)
        disk.source_path = top
    if fmt:
        disk.format = fmt
    old = disk.element.find("backingStore")
    if old is not None:
        remove_element(old)
    if len(chain) > 1:
        insert_element(disk.element, parse_xml(backing_xml(chain[1:])), Disk.ORDER)


def _sync_live(
    mgr: DomainManager,
    name: str,
    target: str,
    mon: Monitor,
    *,
    known: tuple[Domain, Disk, list[ChainImage]] | None = None,
) -> list[str]:
    """Write QEMU's chain of disk ``target`` into the live XML; returns its files. ``known``:
    the live definition, its disk and QEMU's chain, read already."""
    if known is None:
        dom = _live_dom(mgr, name)
        disk = _find(dom, target)
        _, chain = _chain_of(mon, _alias(mgr, dom, disk))
    else:
        dom, disk, chain = known
    if chain:
        moved = disk.source_path is None or not _same(disk.source_path, chain[0].filename)
        set_chain(disk, [(c.filename, c.format) for c in chain], blockdev=disk.type == "block")
        mgr.save_live(name, dom)
        if moved:
            _reinventory(mgr, name, disk)
    return [c.filename for c in chain]


def _reinventory(mgr: DomainManager, name: str, disk: Disk) -> None:
    """The disk inventory (what other domains may not open) follows a pivot."""
    from pyvirt.service.disk import hooks as disk_hooks  # lazy

    entry = disk_hooks.inventory_entry(disk)
    rest = [e for e in disk_hooks.load_inventory(mgr, name) if e.get("target") != disk.target_dev]
    disk_hooks.save_inventory(mgr, name, rest + ([entry] if entry else []))


def _sync_definition(
    mgr: DomainManager,
    name: str,
    target: str,
    chain: list[str],
    *,
    blockdev: bool = False,
    fmt: str | None = None,
) -> None:
    """A persistent domain's definition gets the disk's new top (after a pivot); ``fmt``: its
    format as the live XML has it (None: read the live XML)."""
    if not chain or not mgr.store.exists(name):
        return
    cfg, revision = mgr.read_config(name)
    disk = next((d for d in cfg.devices.disks if d.target_dev == target), None)
    if disk is None:
        return
    if fmt is None:
        live = _find(_live_dom(mgr, name), target)  # its top's format, as QEMU reported
        fmt = live.format if live.source_path == chain[0] and live.format else "raw"
    set_chain(disk, [(chain[0], fmt)], blockdev=blockdev)
    mgr.write_config(name, cfg, revision)


# -- images on the host (shut-off domains, copy targets) -----------------------------------
def image_chain(path: str) -> list[tuple[str, str, int]]:
    """``(file, format, virtual size)`` of ``path``'s backing chain, top first."""
    proc = hostcmd.run(
        [
            hostcmd.tool("qemu-img", "qemu-utils"),
            "info",
            "-U",
            "--backing-chain",
            "--output=json",
            path,
        ],
        what=f"cannot read image '{path}'",
    )
    return [
        (str(i.get("filename", "")), str(i.get("format", "")), int(i.get("virtual-size", 0)))
        for i in json.loads(proc.stdout)
    ]


def _create_target(dest: str, fmt: str, live: _Live, shallow: bool) -> None:
    size = image_chain(live.chain[0].filename)[0][2]
    argv = [hostcmd.tool("qemu-img", "qemu-utils"), "create", "-q", "-f", fmt]
    if shallow and len(live.chain) > 1:
        below = live.chain[1]
        argv += ["-b", below.filename, "-F", below.format]
    hostcmd.run([*argv, dest, str(size)], what=f"cannot create copy target '{dest}'")


_PERCENT = re.compile(r"\((\d+(?:\.\d+)?)/100%\)")


def run_qemu_img(
    argv: list[str], what: str, progress: Progress | None, cancel: CancelToken | None
) -> None:
    """Run ``qemu-img`` with ``-p``, feeding its percentages to ``progress`` (of 100); a
    cancel kills it.

    :raises HostCommandError: it failed
    :raises CancelledError: cancelled
    """
    proc = hostcmd.spawn(argv, what=what)
    assert proc.stdout is not None
    text = ""
    try:
        while True:
            chunk = proc.stdout.read(32)
            if not chunk:
                break
            text = (text + chunk)[-4096:]
            found = _PERCENT.findall(text)
            if found and progress is not None:
                progress(int(float(found[-1])), 100)
            if cancel is not None and cancel.cancelled:
                proc.kill()
                proc.wait()
                cancel.check(what)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    if proc.wait() != 0:
        raise HostCommandError(
            f"{what}: qemu-img exited with status {proc.returncode}",
            argv=argv,
            returncode=proc.returncode,
            stderr=text,
        )
    if progress is not None:
        progress(100, 100)


def _offline_disk(mgr: DomainManager, name: str, ident: str) -> tuple[Domain, Disk, list[Any]]:
    from pyvirt.model.domain import Domain as DomainModel  # lazy

    if not mgr.store.exists(name):
        raise InvalidStateError(f"domain '{name}' is not running")
    raw = mgr.store.read_revision(name)
    assert raw is not None
    dom = DomainModel.from_xml(raw[0])
    disk = _find(dom, ident)
    if disk.source_path is None or disk.type not in ("file", "block"):
        raise InvalidStateError(
            f"disk '{disk.target_dev}' of shut-off domain '{name}' is not a file or block image",
            hint="start the domain to run the block job live",
        )
    return dom, disk, image_chain(disk.source_path)


def _relative(base: str, above: str) -> str:
    """*base*'s path relative to the directory of image *above* (``--keep-relative``)."""
    return os.path.relpath(base, os.path.dirname(above))


def _offline_commit(
    mgr: DomainManager,
    name: str,
    ident: str,
    *,
    top: str | None,
    base: str | None,
    active: bool,
    pivot: bool,
    keep_overlay: bool,
    shallow: bool,
    delete: bool,
    keep_relative: bool,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> BlockJobResult:
    with mgr.locked(name):
        _, disk, chain = _offline_disk(mgr, name, ident)
        target = str(disk.target_dev)
        live = _Live(name, target, "", [_chain_image(c) for c in chain])
        if len(chain) < 2:
            raise InvalidStateError(
                f"disk '{target}' does not have a backing image to commit into",
                hint="blockcommit merges an overlay into its backing image",
            )
        top_i = 0 if top is None else _index(live.chain, top, live, "top")
        if top_i == 0 and not active:
            raise InvalidConfigError(
                f"commit of disk '{target}' active layer requires --active",
                hint="add --active and --pivot",
            )
        if top_i == 0 and not (pivot or keep_overlay):
            raise InvalidStateError(
                f"domain '{name}' is not running: an active commit of disk '{target}' cannot "
                "stay in a synchronized phase",
                hint="add --pivot (or --keep-overlay) to commit a shut-off domain's disk",
            )
        base_i = (
            top_i + 1
            if shallow
            else _index(live.chain, base, live, "base")
            if base
            else len(chain) - 1
        )
        if base_i <= top_i:
            raise InvalidConfigError(
                f"base '{chain[base_i][0]}' is not below top '{chain[top_i][0]}' in disk '{target}'"
            )
        qemu_img = hostcmd.tool("qemu-img", "qemu-utils")
        top_path, base_path = chain[top_i][0], chain[base_i][0]
        argv = [qemu_img, "commit", "-p", "-f", chain[top_i][1], "-b", base_path]
        if top_i == 0 and keep_overlay:
            argv.append("-d")
        run_qemu_img(
            [*argv, top_path], f"cannot commit '{top_path}' into '{base_path}'", progress, cancel
        )
        if top_i > 0:  # the image above top now backs onto base
            above = chain[top_i - 1][0]
            hostcmd.run(
                [
                    qemu_img,
                    "rebase",
                    "-u",
                    "-f",
                    chain[top_i - 1][1],
                    "-b",
                    _relative(base_path, above) if keep_relative else base_path,
                    "-F",
                    chain[base_i][1],
                    above,
                ],
                what=f"cannot rebase '{above}'",
            )
            outcome, files = (
                "completed",
                [c[0] for c in chain[:top_i]] + [c[0] for c in chain[base_i:]],
            )
        elif pivot:
            cfg, revision = mgr.read_config(name)
            cdisk = _find(cfg, target)
            set_chain(cdisk, [(base_path, chain[base_i][1])], blockdev=cdisk.type == "block")
            mgr.write_config(name, cfg, revision)
            outcome, files = "pivoted", [c[0] for c in chain[base_i:]]
        else:
            outcome, files = "kept-overlay", [c[0] for c in chain]
        if delete:
            for path, _, _ in chain[top_i:base_i]:
                if path not in files:
                    _remove(path)
    kind = "active-commit" if top_i == 0 else "commit"
    return BlockJobResult(target, kind, outcome, files[0], files)


def _offline_stream(
    mgr: DomainManager,
    name: str,
    ident: str,
    *,
    base: str | None,
    progress: Progress | None,
    cancel: CancelToken | None,
) -> BlockJobResult:
    with mgr.locked(name):
        _, disk, chain = _offline_disk(mgr, name, ident)
        target = str(disk.target_dev)
        live = _Live(name, target, "", [_chain_image(c) for c in chain])
        qemu_img = hostcmd.tool("qemu-img", "qemu-utils")
        argv = [qemu_img, "rebase", "-p", "-f", chain[0][1]]
        files = [chain[0][0]]
        if base is not None:
            base_i = _index(live.chain, base, live, "base")
            if base_i == 0:
                raise InvalidConfigError(f"base '{base}' is the active layer of disk '{target}'")
            argv += ["-b", chain[base_i][0], "-F", chain[base_i][1]]
            files += [c[0] for c in chain[base_i:]]
        else:
            argv += ["-b", ""]
        run_qemu_img([*argv, chain[0][0]], f"cannot pull into '{chain[0][0]}'", progress, cancel)
    return BlockJobResult(target, "pull", "completed", files[0], files)


def _chain_image(entry: tuple[str, str, int]) -> ChainImage:
    from pyvirt.drivers.qemu.monitor.blockjobs import ChainImage  # lazy

    return ChainImage(entry[0], entry[1])
