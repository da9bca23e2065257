"""Copying non-shared disks with a migration (``--copy-storage-all``/``-inc``).

- source :func:`plan`: which disks go (writable file/block disks, or the ``--migrate-disks``
  targets) with their format, virtual size and (``-inc``) backing file, read from QEMU;
- destination :func:`create_images`: each image made empty, same format and size (``-inc``:
  on top of the backing file, which must exist there already); images that already exist are
  used as they are (pre-created) and never removed;
- destination :func:`export`: QEMU's NBD server on the migration's address (a unix socket
  beside the migration's, or a TCP port pyvirt binds itself and passes to QEMU as an fd: no
  check-then-bind), each disk's top node exported writable;
- source :func:`start_mirrors`: an NBD client node per disk and ``blockdev-mirror`` into it
  (sync full, or top for ``-inc``), followed until every mirror is ready; the RAM migration
  starts then, and at switch-over (QEMU's ``pre-switchover`` pause, vCPUs stopped)
  :func:`complete_mirrors` ends them (a ready mirror's cancel writes what is left and keeps
  the source's image) before the last RAM goes.
- :func:`drop_mirrors` undoes the source's side after a failure (the guest keeps its disks),
  :func:`remove_created` the destination's images.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import (
    InvalidConfigError,
    MonitorError,
    NotFoundError,
    OperationFailedError,
)
from pyvirt.progress import CancelledError, CancelToken

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.model.devices.disk import Disk
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy``: the model, qemu-img and QMP load only when
# a migration copies disks.

__all__ = [
    "DiskCopy",
    "StorageCopy",
    "complete_mirrors",
    "create_images",
    "drop_mirrors",
    "export",
    "plan",
    "remove_created",
    "start_mirrors",
]

#: the destination's record of the images its prepare step made (in the domain's run dir)
CREATED_FILE = "migrate-created.json"
_PREFIX = "migrate-"
_POLL = 0.02


@dataclass(frozen=True)
class DiskCopy:
    """One disk a migration copies: what the destination creates for it."""

    target: str
    format: str
    #: virtual size in bytes
    capacity: int
    #: ``-inc``: the backing file the destination must have already (relative to the
    #: image's directory when it lies under it on the source) and its format
    backing: str | None = None
    backing_format: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class StorageCopy:
    """Where the source mirrors the disks to: the destination's NBD server and exports."""

    #: ``unix:PATH`` or ``tcp:HOST:PORT``
    nbd: str
    #: disk target -> NBD export name
    exports: dict[str, str]
    #: mirror the top image only (``--copy-storage-inc``)
    incremental: bool = False

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {"nbd": self.nbd, "exports": dict(self.exports), "incremental": self.incremental}


def _copyable(disk: Disk) -> bool:
    return (
        disk.device in (None, "disk", "lun")
        and disk.type in ("file", "block", "volume")
        and disk.source_path is not None
        and not disk.readonly
        and not disk.shareable
    )


def copied_paths(mgr: DomainManager, name: str, targets: Iterable[str]) -> list[str]:
    """The images of running domain *name*'s disks *targets* (the ones a migration copies)."""
    wanted = set(targets)
    return [d.source_path for d in _live_dom(mgr, name).devices.disks
            if d.target_dev in wanted and d.source_path is not None]  # fmt: skip


def _live_dom(mgr: DomainManager, name: str) -> Domain:
    from pyvirt.model.domain import Domain as DomainModel  # lazy
    from pyvirt.model.xmltree import parse_xml  # lazy

    return DomainModel(parse_xml(mgr.rundir(name).live_xml(), what=DomainModel.WHAT))


def _root_and_chain(mon: Monitor, alias: str) -> tuple[str, list[Any]]:
    for key, (root, chain) in mon.block_chains().items():
        if alias in key.strip("/").split("/"):
            return root, chain
    raise NotFoundError(f"QEMU has no medium for disk '{alias}'")


def _alias(mgr: DomainManager, dom: Domain, disk: Disk) -> str:
    """The QEMU id of a disk of the running domain (its ``<alias>``, else the argv's)."""
    if disk.alias:
        return str(disk.alias)
    from pyvirt.drivers.qemu.argv.devices.disk import fixed_alias  # lazy
    from pyvirt.service.domain.hotplug import build_for  # lazy

    return fixed_alias(disk, build_for(mgr, dom))


def plan(
    mgr: DomainManager, name: str, mon: Monitor, targets: Sequence[str] | None, incremental: bool
) -> list[DiskCopy]:
    """The disks of running domain *name* to copy (*targets*, or every writable image disk).

    :raises NotFoundError: a named target is not a disk of the domain
    :raises InvalidConfigError: a named disk cannot be copied (read-only, shareable, network)
    """
    dom = _live_dom(mgr, name)
    by_target = {d.target_dev: d for d in dom.devices.disks if d.target_dev}
    if targets:
        chosen = []
        for t in targets:
            disk = by_target.get(t)
            if disk is None:
                raise NotFoundError(
                    f"domain '{name}' has no disk '{t}'", hint="list its disks with 'domblklist'"
                )
            if not _copyable(disk):
                raise InvalidConfigError(
                    f"disk '{t}' of domain '{name}' cannot be copied by a migration",
                    hint="read-only, shareable and network disks are not copied",
                )
            chosen.append(disk)
    else:
        chosen = [d for d in dom.devices.disks if _copyable(d) and d.target_dev]
    sizes = {n.node_name: n.virtual_size for n in mon.query_named_block_nodes()}
    out = []
    for disk in chosen:
        root, chain = _root_and_chain(mon, _alias(mgr, dom, disk))
        backing = chain[1] if incremental and len(chain) > 1 else None
        out.append(
            DiskCopy(
                target=str(disk.target_dev),
                format=chain[0].format if chain else (disk.format or "raw"),
                capacity=sizes.get(root, 0),
                backing=_relative(backing.filename, chain[0].filename) if backing else None,
                backing_format=backing.format if backing else None,
            )
        )
    return out


def _relative(backing: str, top: str) -> str:
    """*backing* as the destination finds it: relative to the top image's directory when it
    lies under it (the usual layout: the destination's own directory), else as it is."""
    here = os.path.dirname(top)
    if here and os.path.isabs(backing) and backing.startswith(here.rstrip("/") + "/"):
        return os.path.relpath(backing, here)
    return backing


# -- destination ---------------------------------------------------------------------------
def create_images(dom: Domain, copies: Sequence[DiskCopy]) -> list[str]:
    """Make the destination's empty images for *copies*; returns the paths it created.

    :raises NotFoundError: a disk is not in *dom*, or (``-inc``) its backing file is missing
    """
    from pyvirt.storage import qemu_img  # lazy

    created: list[str] = []
    try:
        for c in copies:
            disk = next((d for d in dom.devices.disks if d.target_dev == c.target), None)
            if disk is None or not disk.source_path:
                raise NotFoundError(f"domain '{dom.name}' has no disk '{c.target}' here")
            path = disk.source_path
            if os.path.exists(path):
                continue  # pre-created: the mirror overwrites it
            backing = c.backing
            if backing is not None:
                where = Path(path).parent / backing
                if not where.exists():
                    raise NotFoundError(
                        f"disk '{c.target}' of domain '{dom.name}': its backing file "
                        f"'{where}' does not exist on the destination",
                        hint="--copy-storage-inc copies only the top image: put the backing "
                        "chain there first, or use --copy-storage-all",
                    )
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            qemu_img.create(path, c.format, c.capacity, backing=backing,
                            backing_fmt=c.backing_format)  # fmt: skip
            created.append(path)
    except BaseException:
        remove_created(created)
        raise
    return created


def save_created(mgr: DomainManager, name: str, created: Sequence[str]) -> None:
    """Remember the images prepare made, for :func:`remove_created` on abort."""
    if created:
        (mgr.paths.domain_run_dir(name) / CREATED_FILE).write_text(json.dumps(list(created)))


def created_of(mgr: DomainManager, name: str) -> list[str]:
    """The images prepare made for the incoming domain *name* (and forget them)."""
    path = mgr.paths.domain_run_dir(name) / CREATED_FILE
    try:
        paths = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    path.unlink(missing_ok=True)
    return [str(p) for p in paths]


def remove_created(paths: Sequence[str]) -> None:
    """Remove images a failed migration's destination made."""
    for p in paths:
        with contextlib.suppress(OSError):
            os.unlink(p)


def export(
    mgr: DomainManager,
    name: str,
    mon: Monitor,
    listen: str,
    copies: Sequence[DiskCopy],
    *,
    tls: bool = False,
) -> str:
    """Start the destination QEMU's NBD server beside the migration's *listen* URI and export
    each copied disk writable; returns the server's URI (``unix:PATH``/``tcp:HOST:PORT``).
    *tls*: with the migration's TLS credentials (``migrate-tls``)."""
    import socket  # lazy

    creds = "migrate-tls" if tls else None
    if listen.startswith("unix:"):
        path = str(Path(listen[5:]).with_name("migrate-nbd.sock"))
        mon.nbd_server_start_unix(path, tls_creds=creds)
        uri = f"unix:{path}"
    else:
        host = listen[4:].rsplit(":", 1)[0]
        bare = host.strip("[]")
        family = socket.AF_INET6 if ":" in bare else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bare, 0))
            sock.listen(16)
            port = sock.getsockname()[1]
            mon.getfd(sock.fileno(), f"{_PREFIX}nbd")
        mon.nbd_server_start_fd(f"{_PREFIX}nbd", tls_creds=creds)
        uri = f"tcp:{host}:{port}"
    dom = _live_dom(mgr, name)
    for c in copies:
        disk = next(d for d in dom.devices.disks if d.target_dev == c.target)
        root, _ = _root_and_chain(mon, _alias(mgr, dom, disk))
        mon.nbd_export_add(f"{_PREFIX}{c.target}", root, c.target, writable=True)
    return uri


def stop_export(mon: Monitor) -> None:
    """Stop the destination's NBD server (its exports go with it), if one runs."""
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    with contextlib.suppress(QmpCommandError):
        mon.nbd_server_stop()


# -- source ----------------------------------------------------------------------------------
def _nbd_node(job_id: str) -> str:
    """The NBD client node of mirror job *job_id*."""
    return f"{job_id}-nbd"


def _server(nbd: str) -> dict[str, str]:
    if nbd.startswith("unix:"):
        return {"type": "unix", "path": nbd[5:]}
    host, _, port = nbd[4:].rpartition(":")
    return {"type": "inet", "host": host.strip("[]"), "port": port}


def start_mirrors(
    mgr: DomainManager,
    name: str,
    mon: Monitor,
    storage: StorageCopy,
    progress: Any,
    cancel: CancelToken | None,
    jobs: list[str],
    tls: tuple[str, str] | None = None,
) -> None:
    """Mirror each disk into the destination's export and wait until all are ready; the job
    ids go into *jobs* as they start (on failure the caller runs :func:`drop_mirrors`);
    *tls*: (credentials object, host name) for the NBD connections."""
    from pyvirt.drivers.qemu.qmp import QmpCommandError  # lazy

    dom = _live_dom(mgr, name)
    try:
        for target, export_name in storage.exports.items():
            disk = next((d for d in dom.devices.disks if d.target_dev == target), None)
            if disk is None:
                raise NotFoundError(f"domain '{name}' has no disk '{target}'")
            root, _ = _root_and_chain(mon, _alias(mgr, dom, disk))
            node = _nbd_node(f"{_PREFIX}{target}")
            props: dict[str, Any] = {
                "driver": "nbd",
                "node-name": node,
                "server": _server(storage.nbd),
                "export": export_name,
            }
            if tls is not None:
                props["tls-creds"], props["tls-hostname"] = tls
            mon.blockdev_add(props)
            jobs.append(f"{_PREFIX}{target}")
            mon.blockdev_mirror(jobs[-1], root, node, shallow=storage.incremental)
    except QmpCommandError as err:
        raise OperationFailedError(
            f"cannot copy the disks of domain '{name}': {err.desc}",
            hint="the guest runs on the source",
        ) from err
    while True:
        done, total, ready = disk_progress(mon, jobs, name)
        if progress is not None and total:
            progress(done, total)
        if ready:
            return
        if cancel is not None and cancel.cancelled:
            raise CancelledError(f"migration of domain '{name}' cancelled; it runs on the source")
        time.sleep(_POLL)


def disk_progress(mon: Monitor, jobs: Sequence[str], name: str) -> tuple[int, int, bool]:
    """(bytes mirrored, bytes to mirror, every mirror ready) of *jobs*.

    :raises OperationFailedError: a mirror failed
    """
    done = total = 0
    ready = True
    for jid in jobs:
        st = mon.block_job(jid)
        if st is None or st.concluded:
            raise OperationFailedError(
                f"copying disk '{jid[len(_PREFIX) :]}' of domain '{name}' failed"
                + (f": {st.error}" if st is not None and st.error else ""),
                hint="the guest runs on the source",
            )
        done += st.done
        total += st.total
        ready = ready and st.ready
    return done, total, ready


def complete_mirrors(mon: Monitor, jobs: Sequence[str], name: str, timeout: float = 60.0) -> None:
    """End the ready mirrors at switch-over (vCPUs stopped): a ready mirror's cancel writes
    what is left to the destination and leaves the source's disk as it is."""
    for jid in jobs:
        mon.block_job_cancel(jid)
    deadline = time.monotonic() + timeout
    for jid in jobs:
        while True:
            st = mon.block_job(jid)
            if st is None or st.concluded:
                break
            if time.monotonic() > deadline:
                raise OperationFailedError(
                    f"copying the disks of domain '{name}' did not end in {timeout:g} s",
                    hint="the guest runs on the source",
                )
            time.sleep(_POLL)
        if st is not None and st.error:
            raise OperationFailedError(
                f"copying disk '{jid[len(_PREFIX) :]}' of domain '{name}' failed: {st.error}",
                hint="the guest runs on the source",
            )
        with contextlib.suppress(MonitorError):
            mon.job_dismiss(jid)
        with contextlib.suppress(MonitorError):
            mon.blockdev_del(_nbd_node(jid))


def drop_mirrors(mon: Monitor, jobs: Sequence[str]) -> None:
    """Cancel the source's mirrors of a failed migration and remove their NBD nodes."""
    for jid in jobs:
        with contextlib.suppress(MonitorError):
            st = mon.block_job(jid)
            if st is not None and not st.concluded:
                mon.block_job_cancel(jid, force=True)
    deadline = time.monotonic() + 10.0
    for jid in jobs:
        with contextlib.suppress(MonitorError):
            while time.monotonic() < deadline:
                st = mon.block_job(jid)
                if st is None or st.concluded:
                    break
                time.sleep(_POLL)
            mon.job_dismiss(jid)
        with contextlib.suppress(MonitorError):
            mon.blockdev_del(_nbd_node(jid))
