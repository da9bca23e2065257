"""Disks of domains: ``attach-disk`` and ``detach-disk``, live (QMP) and in the definition.

Live attach runs under the domain lock:

1. the new disk is checked (target free, source present, options coherent) and its source
   compared with every disk of every running domain (:mod:`pyvirt.service.disk.hooks`):
   a source another domain writes to is refused unless both declare ``<shareable/>``;
2. a ``<disk type='volume'>`` is resolved through its pool, like at start;
3. the disk is lowered by the argv builder's own code
   (:func:`pyvirt.drivers.qemu.argv.devices.disk.device_spec`), so node names, cache mapping
   and device properties are those of a cold start; each node is added to QEMU (bottom
   first), then the device: ``virtio-blk-pci`` on a free PCI slot
   (:func:`pyvirt.service.domain.hotplug.free_pci_slot`), ``scsi-hd`` on ``scsi0`` (a
   ``virtio-scsi-pci`` controller is hot-added first when the guest has none),
   ``usb-storage`` on the USB bus;
4. the live XML (``RUN_DIR/domain.xml``, with the disk's ``<alias>`` and ``<address>``) and
   the disk inventory are replaced atomically, through the run directory's owner.

``--live/--config/--current/--persistent`` follow the one rule of
:mod:`pyvirt.service.domain.affect`.

Live detach asks QEMU to unplug the device, waits until it is deleted (the guest must release
a PCI device through ACPI; SCSI devices go at once), then deletes the block nodes top first.
IDE, SATA and floppy disks cannot be hot-plugged in QEMU: use ``--config``.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

from pyvirt.drivers.qemu.argv.devices.controller import lower_spec
from pyvirt.drivers.qemu.argv.devices.disk import device_spec, disk_bus, fixed_alias
from pyvirt.drivers.qemu.qmp import Monitor, QmpCommandError
from pyvirt.errors import (
    AlreadyExistsError,
    InvalidStateError,
    NotFoundError,
    OperationFailedError,
    UnsupportedError,
)
from pyvirt.host.hostpaths import path_risk, refuse_risks
from pyvirt.model import Address, Controller, Disk
from pyvirt.model.validate import require_valid
from pyvirt.model.xmltree import copy_element
from pyvirt.service.disk import hooks as disk_hooks
from pyvirt.service.disk.options import DiskOptions, build_disk, check_source
from pyvirt.service.domain import dac
from pyvirt.service.domain.hotplug import build_for, free_pci_slot

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build
    from pyvirt.drivers.qemu.argv.opts import JsonValue
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.state.paths import StatePaths

__all__ = ["DiskManager", "DiskOptions"]

#: buses QEMU can hot-plug a disk on
HOTPLUG_BUSES = ("virtio", "scsi", "usb")
#: seconds the guest gets to release a PCI disk (ACPI eject) on detach
UNPLUG_TIMEOUT = 30.0


def find_disk(dom: Domain, ident: str) -> Disk | None:
    """The disk of *dom* whose target (``vdb``), source path or ``POOL/VOLUME`` is *ident*."""
    for d in dom.devices.disks:
        if d.target_dev == ident:
            return d
    real = os.path.realpath(ident) if ident.startswith("/") else None
    for d in dom.devices.disks:
        path = d.source_path
        if path and (path == ident or (real and os.path.realpath(path) == real)):
            return d
        if d.type == "volume" and f"{d.source_pool}/{d.source_volume}" == ident:
            return d
    return None


class DiskManager:
    """Disk operations on domains; created over a connection's :class:`DomainManager`."""

    def __init__(self, domains: DomainManager) -> None:
        self.domains = domains

    # -- attach ------------------------------------------------------------------------
    def attach(
        self,
        ident: str,
        opts: DiskOptions,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
    ) -> Disk:
        """Attach a disk (virsh ``attach-disk``); returns the disk as added.

        :raises AlreadyExistsError: the target is taken
        :raises InvalidStateError: the source is in use by a running domain, or flags do not
            fit the domain's state
        :raises UnsupportedError: live attach on a bus without hotplug
        """
        mgr = self.domains
        name = mgr.resolve(ident)
        with mgr.locked(name):
            scope = mgr.affect(
                name, live=live, config=config, current=current, persistent=persistent
            )
            do_live, do_config = scope.live, scope.config
            disk = build_disk(opts)
            if disk.type != "volume":
                check_source(disk)
                if not opts.force:
                    refuse_risks(f"domain '{name}'", [_risk(disk, mgr.paths)])
            if do_config:
                cfg, revision = mgr.read_config(name)
                self._check_target(name, cfg, disk, "definition")
                cfg.devices.add(_copy(disk, drop_live=True))
                require_valid(cfg)
            if do_live:
                self._attach_live(name, disk)
            if do_config:
                mgr.write_config(name, cfg, revision)
            return disk

    @staticmethod
    def _check_target(name: str, dom: Domain, disk: Disk, where: str) -> None:
        if any(d.target_dev == disk.target_dev for d in dom.devices.disks):
            raise AlreadyExistsError(
                f"domain '{name}' already has a disk with target '{disk.target_dev}' in its "
                f"{where}",
                hint="choose another target name (vdb, vdc, sdb...)",
            )

    def _attach_live(self, name: str, disk: Disk) -> None:
        mgr = self.domains
        dom = self._live_domain(name)
        self._check_target(name, dom, disk, "live configuration")
        bus = disk_bus(disk)
        if bus not in HOTPLUG_BUSES:
            raise UnsupportedError(
                f"disk '{disk.target_dev}': bus '{bus}' does not support hotplug in QEMU",
                hint="attach it with --config and restart the domain, or use "
                "--targetbus virtio or scsi",
            )
        resolved = _copy(disk)
        if disk.type == "volume":
            disk_hooks.apply_source(resolved, disk_hooks.resolve_volume(mgr, disk))
            check_source(resolved)
        entry = disk_hooks.inventory_entry(resolved)
        inventory = disk_hooks.load_inventory(mgr, name)
        if entry is not None:
            disk_hooks.check_conflicts(mgr, name, [entry], check_self=True)
        rec = mgr.record(name)
        assert rec is not None
        with Monitor(rec.qmp_socket, name=name) as mon:
            if bus == "virtio":
                disk.address = free_pci_slot(dom, mon, "disk")
                resolved.address = _copy_address(disk)
            if bus == "scsi":
                self._ensure_scsi_controller(dom, resolved, mon)
            work = dom.copy()
            work.devices.add(resolved)
            b = _build(mgr, work)
            spec = device_spec(resolved, b)
            dac.pass_files(mgr, mon, spec.nodes, spec.alias)  # an unprivileged QEMU
            try:
                _add_nodes(mon, spec.nodes, resolved)
            except BaseException:
                dac.drop_files(mgr, mon, spec.alias)
                raise
            try:
                mon.device_add(spec.device)
            except QmpCommandError as err:
                _del_nodes(mon, [str(n["node-name"]) for n in reversed(spec.nodes)])
                dac.drop_files(mgr, mon, spec.alias)
                raise _explain(err, resolved) from err
        for path in dac.writable_files_of([resolved]):
            dac.grant(mgr, name, path)
        disk.alias = spec.alias
        dom.devices.add(_copy(disk))
        self._save_live(name, dom)
        if entry is not None:
            disk_hooks.save_inventory(mgr, name, [*inventory, entry])

    def _ensure_scsi_controller(self, dom: Domain, disk: Disk, mon: Monitor) -> None:
        """Hot-add ``scsi0`` (virtio-scsi) when the guest has no SCSI controller yet, lowered
        by the argv builder's controller code."""

        if "scsi0" in mon.peripheral_ids():
            return
        ctrl = Controller(type="scsi", index=0, model="virtio-scsi")
        ctrl.address = free_pci_slot(dom, mon, "disk")
        dom.devices.add(ctrl)
        b = _build(self.domains, dom)
        spec = b.controller("scsi", 0)
        assert spec is not None
        _, device = lower_spec(b, spec, ctrl.address)
        mon.device_add(json.loads(device))

    # -- detach ------------------------------------------------------------------------
    def detach(
        self,
        ident: str,
        target: str,
        *,
        live: bool = False,
        config: bool = False,
        current: bool = False,
        persistent: bool = False,
        timeout: float = UNPLUG_TIMEOUT,
    ) -> None:
        """Detach a disk by target name or source (virsh ``detach-disk``).

        :raises NotFoundError: no such disk
        :raises OperationFailedError: the guest did not release the disk in time
        """
        mgr = self.domains
        name = mgr.resolve(ident)
        with mgr.locked(name):
            scope = mgr.affect(
                name, live=live, config=config, current=current, persistent=persistent
            )
            do_live, do_config = scope.live, scope.config
            cfg, revision = mgr.read_config(name) if do_config else (None, "")
            cfg_disk = find_disk(cfg, target) if cfg is not None else None
            if cfg is not None and cfg_disk is None:
                raise NotFoundError(
                    f"domain '{name}' has no disk '{target}' in its definition",
                    hint="list its disks with 'domblklist --inactive'",
                )
            if do_live:
                self._detach_live(name, target, timeout)
            if cfg is not None and cfg_disk is not None:
                cfg.devices.remove(cfg_disk)
                mgr.write_config(name, cfg, revision)

    def _detach_live(self, name: str, target: str, timeout: float) -> None:
        mgr = self.domains
        dom = self._live_domain(name)
        disk = find_disk(dom, target)
        if disk is None:
            raise NotFoundError(
                f"domain '{name}' has no disk '{target}'", hint="list its disks with 'domblklist'"
            )
        bus = disk_bus(disk)
        if bus not in HOTPLUG_BUSES:
            raise UnsupportedError(
                f"disk '{disk.target_dev}': bus '{bus}' does not support hot-unplug in QEMU",
                hint="detach it with --config and restart the domain",
            )
        alias = disk_alias(mgr, dom, disk)
        rec = mgr.record(name)
        assert rec is not None
        with Monitor(rec.qmp_socket, name=name) as mon:
            _unplug(mon, name, disk.target_dev or target, alias, timeout)
            _del_nodes(mon, [f"{alias}-{n}" for n in ("cor", "format", "slice", "storage")])
            dac.drop_files(mgr, mon, alias)
        for path in dac.writable_files_of([disk]):
            dac.release(mgr, name, path)
        tdev = disk.target_dev
        dom.devices.remove(disk)
        self._save_live(name, dom)
        inventory = disk_hooks.load_inventory(mgr, name)
        disk_hooks.save_inventory(mgr, name, [e for e in inventory if e.get("target") != tdev])

    # -- live XML ----------------------------------------------------------------------
    def _live_domain(self, name: str) -> Domain:
        return self.domains.live_definition(name)

    def _save_live(self, name: str, dom: Domain) -> None:
        self.domains.save_live(name, dom)


# -- helpers -------------------------------------------------------------------------------
def _copy(disk: Disk, *, drop_live: bool = False) -> Disk:

    new = Disk(copy_element(disk.element))
    if drop_live:
        new.alias = None
        new.address = None
    return new


def _copy_address(disk: Disk) -> Any:

    assert disk.address is not None
    return Address(copy_element(disk.address.element))


def _build(mgr: DomainManager, dom: Domain) -> Build:
    return build_for(mgr, dom)


def disk_alias(mgr: DomainManager, dom: Domain, disk: Disk) -> str:
    """The QEMU id of a disk of a running domain: its ``<alias>``, else the one the argv
    builder gave it at start."""
    if disk.alias:
        return disk.alias
    return fixed_alias(disk, _build(mgr, dom))


def _add_nodes(mon: Monitor, nodes: list[dict[str, JsonValue]], disk: Disk) -> None:
    """Add each block node to QEMU; on failure remove the ones added and explain."""
    added: list[str] = []
    for node in nodes:
        try:
            mon.blockdev_add(node)  # None values pruned, as on the command line
        except QmpCommandError as err:
            _del_nodes(mon, list(reversed(added)))
            raise _explain(err, disk) from err
        added.append(str(node["node-name"]))


def _explain(err: Exception, disk: Disk) -> Exception:
    """Turn QEMU's refusal to open an image into a readable error."""
    text = str(err).split(" failed: ", 1)[-1]
    src = disk.source_path or disk.source_name or disk.target_dev
    if "lock" in text:
        return InvalidStateError(
            f"disk source '{src}' is locked by another process: {text}",
            hint="another QEMU (or tool) has the image open; stop it, or declare both disks "
            "shareable",
        )
    return OperationFailedError(f"QEMU cannot open disk source '{src}': {text}")


def _del_nodes(mon: Monitor, names: list[str]) -> None:
    """Delete each block node that exists, retrying briefly while QEMU still holds it."""
    existing = {n.node_name for n in mon.query_named_block_nodes()}
    for node in names:
        if node not in existing:
            continue
        for attempt in range(40):
            try:
                mon.blockdev_del(node)
                break
            except QmpCommandError as err:
                if "in use" not in str(err) or attempt == 39:
                    raise
                time.sleep(0.05)


def _unplug(mon: Monitor, name: str, target: str, alias: str, timeout: float) -> None:
    """Unplug device *alias* and wait until QEMU reports it gone."""
    if alias not in mon.peripheral_ids():
        return  # an earlier detach that timed out has completed since
    try:
        deleted = mon.device_del_wait(alias, timeout)
    except QmpCommandError as err:
        if "in the process of unplug" not in str(err):
            raise
        deleted = False
    if deleted:
        return
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        if alias not in mon.peripheral_ids():
            return
        time.sleep(0.1)
    raise OperationFailedError(
        f"the guest of domain '{name}' did not release disk '{target}' within {timeout:g} s",
        hint="the guest may still be booting or lack PCI hot-unplug support; the request "
        "stays pending: run detach-disk again later",
    )


def _risk(disk: Disk, paths: StatePaths) -> str:
    """What attaching ``disk`` would risk on the host ("" if nothing is known)."""
    if not disk.source_path or disk.type not in ("file", "block"):
        return ""
    why = path_risk(disk.source_path, (paths.config, paths.run, paths.log, paths.cache))
    return f"disk {disk.target_dev}: {why}" if why else ""
