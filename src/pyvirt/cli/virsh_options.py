"""virsh's options that pyvirt's commands did not have: each accepted, or refused with the
reason (docs/virsh-compat.md is the table; tests/unit/cli/test_virsh_compat.py keeps it).

:func:`attach` is called by the command group for the command it runs (and for ``pyvirt help
COMMAND``): it adds every option of the command's :data:`TABLE` row the command lacks, so that
``pyvirt help`` lists it and a command line that uses it gets pyvirt's one-line error naming
why (not click's "no such option"), and makes the command's own hidden virsh options visible
with the same rule. The reasons:

* ``--xpath``/``--wrap`` (:data:`XPATH`): supported on every ``*-dumpxml``: the command's XML
  output goes through :func:`pyvirt.api.xmlpath.select`;
* ``--validate`` (:data:`VALIDATE`) and texts that start with ``accepted:``: accepted,
  nothing to do (pyvirt checks every document it reads against its model; no RNG schema);
* anything else: refused with that reason (it cannot apply to pyvirt's QEMU guests, or it is
  not in pyvirt yet, or pyvirt takes that value positionally).
"""

from __future__ import annotations

import contextlib
import functools
import io
from typing import Any

import click

from pyvirt.errors import InvalidConfigError, UnsupportedError

__all__ = ["TABLE", "VALUED", "attach"]

#: supported: the XML output filtered by XPath (``--xpath EXPR``, ``--wrap``)
XPATH = "accepted:xpath"
#: accepted: pyvirt checks every document it reads (no RNG schema)
VALIDATE = "accepted: pyvirt always checks the XML against its model"

#: command -> virsh option -> what pyvirt does with it (see the module's docstring)
#: (the next start copies the template again when the file is gone)
RESET_NVRAM = "not in pyvirt yet (delete the NVRAM file: the next start makes it again)"

TABLE: dict[str, dict[str, str]] = {
    "attach-disk": {
        "--address": "not in pyvirt yet: pyvirt places devices itself",
        "--alias": "not in pyvirt yet: pyvirt names devices itself",
        "--iothread": "not in pyvirt yet (iothreads for virtio disks)",
        "--multifunction": "not in pyvirt yet: pyvirt places devices itself",
        "--rawio": "pyvirt does not pass SCSI LUNs through (no rawio)",
        "--source-host-socket": "not in pyvirt yet: network disks take TCP hosts only",
        "--source-host-transport": "not in pyvirt yet: network disks take TCP hosts only",
        "--wwn": "not in pyvirt yet",
    },
    "attach-interface": {
        "--alias": "not in pyvirt yet: pyvirt names devices itself",
        "--inbound": "not in pyvirt yet (QoS: use domiftune)",
        "--managed": "pyvirt has no hostdev interfaces (use nodedev-detach and attach-device)",
        "--outbound": "not in pyvirt yet (QoS: use domiftune)",
        "--print-xml": "not in pyvirt yet (use attach-device with XML)",
        "--script": "pyvirt runs no interface scripts (a security hole in libvirt's own docs)",
        "--source-mode": "pyvirt has no macvtap (direct) interfaces",
    },
    "backup-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "blockcopy": {
        "--print-xml": "not in pyvirt yet",
        "--synchronous-writes": "not in pyvirt yet (QEMU's write-blocking mirror)",
    },
    "blockpull": {
        "--keep-relative": "not in pyvirt yet (blockcommit has it)",
    },
    "change-media": {
        "--block": "not in pyvirt yet: pyvirt's media are files",
        "--source": "pyvirt takes this value as a positional argument (SOURCE)",
    },
    "checkpoint-create": {
        "--quiesce": "bitmaps start at one instant of QEMU: no guest freeze is needed",
        "--redefine-validate": "accepted: pyvirt always checks a redefined checkpoint's XML",
        "--xmlfile": "pyvirt takes this value as a positional argument (XMLFILE)",
    },
    "checkpoint-create-as": {
        "--quiesce": "bitmaps start at one instant of QEMU: no guest freeze is needed",
    },
    "checkpoint-delete": {
        "--checkpointname": "pyvirt takes this value as a positional argument (CHECKPOINT)",
    },
    "checkpoint-dumpxml": {
        "--checkpointname": "pyvirt takes this value as a positional argument (CHECKPOINT)",
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "checkpoint-edit": {
        "--checkpointname": "pyvirt takes this value as a positional argument (CHECKPOINT)",
    },
    "checkpoint-info": {
        "--checkpointname": "pyvirt takes this value as a positional argument (CHECKPOINT)",
    },
    "checkpoint-parent": {
        "--checkpointname": "pyvirt takes this value as a positional argument (CHECKPOINT)",
    },
    "connect": {
        "--name": "pyvirt takes this value as a positional argument (URI)",
    },
    "console": {
        "--devname": "not in pyvirt yet: pyvirt attaches the first serial console",
        "--safe": "not in pyvirt yet",
    },
    "cpu-compare": {
        "--validate": VALIDATE,
    },
    "create": {
        "--autodestroy": "a pyvirt command holds no connection whose end could destroy the guest",
        "--pass-fds": "passing file descriptors is for LXC guests in libvirt; pyvirt runs QEMU",
        "--reset-nvram": RESET_NVRAM,
        "--validate": VALIDATE,
    },
    "define": {
        "--validate": VALIDATE,
    },
    "destroy": {
        "--remove-logs": "not in pyvirt yet",
    },
    "detach-disk": {
        "--print-xml": "not in pyvirt yet",
    },
    "detach-interface": {
        "--print-xml": "not in pyvirt yet",
    },
    "domblkinfo": {
        "--device": "pyvirt takes this value as a positional argument (TARGET)",
    },
    "domblkstat": {
        "--device": "pyvirt takes this value as a positional argument (TARGET)",
    },
    "domdisplay": {
        "--all": "not in pyvirt yet",
        "--include-password": "not in pyvirt yet",
    },
    "domif-setlink": {
        "--print-xml": "not in pyvirt yet",
    },
    "domjobinfo": {
        "--anystats": "not in pyvirt yet",
        "--keep-completed": "not in pyvirt yet",
        "--rawstats": "not in pyvirt yet",
    },
    "domstats": {
        "--backing": "accepted: backing chains are reported anyway",
        "--enforce": "accepted: every group pyvirt lists is supported",
        "--nowait": "accepted: pyvirt's statistics never wait for a job",
        "--vm": "not in pyvirt yet",
    },
    "dumpxml": {
        "--migratable": "migration's option (issue #15 adds it)",
        "--update-cpu": "not in pyvirt yet (host-model CPU expansion)",
        "--wrap": XPATH,
    },
    "echo": {
        "--err": "not in pyvirt yet",
        "--shell": "not in pyvirt yet",
        "--split": "not in pyvirt yet",
        "--xml": "not in pyvirt yet",
    },
    "edit": {
        "--skip-validate": "pyvirt checks every definition it stores; it keeps no unchecked one",
    },
    "emulatorpin": {
        "--cpulist": "pyvirt takes this value as a positional argument (CPULIST)",
    },
    "find-storage-pool-sources": {
        "--src": "not in pyvirt yet",
    },
    "guestinfo": {
        "--disk": "not in pyvirt yet",
        "--interface": "not in pyvirt yet",
    },
    "help": {
        "--command": "pyvirt takes this value as a positional argument (COMMAND)",
    },
    "hypervisor-cpu-baseline": {
        "--file": "pyvirt takes this value as a positional argument (FILE)",
        "--model": "not in pyvirt yet",
    },
    "iothreadinfo": {
        "--config": "not in pyvirt yet",
        "--current": "not in pyvirt yet",
        "--live": "not in pyvirt yet",
    },
    "list": {
        "--id": "not in pyvirt yet",
        "--state-other": "not in pyvirt yet",
        "--table": "not in pyvirt yet: the table is the default",
        "--with-checkpoint": "not in pyvirt yet",
        "--with-snapshot": "not in pyvirt yet",
        "--without-checkpoint": "not in pyvirt yet",
        "--without-snapshot": "not in pyvirt yet",
    },
    "managedsave-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "memtune": {
        "--min-guarantee": "QEMU has no guaranteed minimum of memory (libvirt: VMware only)",
    },
    "migrate": {
        "--change-protection": "not in pyvirt (the source's definition is not locked while "
        "it moves)",
        "--comp-methods": "not in pyvirt: --compressed is XBZRLE (QEMU 7.2's multi-thread "
        "compression is deprecated)",
        "--comp-mt-dthreads": "not in pyvirt: --compressed is XBZRLE only",
        "--comp-mt-level": "not in pyvirt: --compressed is XBZRLE only",
        "--comp-mt-threads": "not in pyvirt: --compressed is XBZRLE only",
        "--comp-xbzrle-cache": "not an option of pyvirt's migrate: set the cache with "
        "'migrate-compcache DOM --size BYTES' before or while it runs",
        "--copy-storage-synchronous-writes": "not in pyvirt (the disks' mirror copies in "
        "the background)",
        "--disks-port": "not in pyvirt: the disks' NBD export listens on a port it picks "
        "on the migration's address",
        "--disks-uri": "not in pyvirt: the disks' NBD export listens on the migration's "
        "address (--migrateuri, --listen-address)",
        "--graphicsuri": "not in pyvirt (graphics clients are not moved along)",
        "--rdma-pin-all": "pyvirt migrates over TCP or unix sockets, no RDMA",
        "--tls-destination": "not in pyvirt: the certificate must name the destination URI's host",
        "--unsafe": "not in pyvirt (it does not refuse migrations for disk cache modes, so "
        "there is nothing to force)",
        "--zerocopy": "not in pyvirt (QEMU's zero-copy send needs locked guest memory)",
    },
    "net-create": {
        "--validate": VALIDATE,
    },
    "net-define": {
        "--validate": VALIDATE,
    },
    "net-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "net-list": {
        "--autostart": "not in pyvirt yet",
        "--no-autostart": "not in pyvirt yet",
        "--persistent": "not in pyvirt yet",
        "--table": "not in pyvirt yet: the table is the default",
        "--transient": "not in pyvirt yet",
    },
    "net-update": {
        "--parent-index": "not in pyvirt yet",
    },
    "nodedev-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "nodedev-list": {
        "--all": "pyvirt defines no persistent (mediated) node devices: all are active",
        "--inactive": "pyvirt defines no persistent (mediated) node devices: all are active",
    },
    "pool-create-as": {
        "--adapter-name": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent-fabric-wwn": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent-wwnn": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent-wwpn": "pyvirt has no SCSI host adapter pools",
        "--adapter-wwnn": "pyvirt has no SCSI host adapter pools",
        "--adapter-wwpn": "pyvirt has no SCSI host adapter pools",
        "--secret-uuid": "pyvirt has no pools with authenticated sources (iSCSI CHAP, Ceph)",
        "--source-protocol-ver": "pyvirt has no NFS pools with a protocol version",
    },
    "pool-define": {
        "--validate": VALIDATE,
    },
    "pool-define-as": {
        "--adapter-name": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent-fabric-wwn": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent-wwnn": "pyvirt has no SCSI host adapter pools",
        "--adapter-parent-wwpn": "pyvirt has no SCSI host adapter pools",
        "--adapter-wwnn": "pyvirt has no SCSI host adapter pools",
        "--adapter-wwpn": "pyvirt has no SCSI host adapter pools",
        "--secret-uuid": "pyvirt has no pools with authenticated sources (iSCSI CHAP, Ceph)",
        "--source-protocol-ver": "pyvirt has no NFS pools with a protocol version",
    },
    "pool-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "qemu-agent-command": {
        "--async": "not in pyvirt yet",
        "--block": "not in pyvirt yet",
    },
    "reboot": {
        "--mode": "not in pyvirt yet (pyvirt reboots through ACPI)",
    },
    "restore": {
        "--reset-nvram": RESET_NVRAM,
    },
    "save-image-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "schedinfo": {
        "--cap": "Xen's credit scheduler parameter; QEMU guests have none",
        "--weight": "Xen's credit scheduler parameter; QEMU guests have none",
    },
    "screenshot": {
        "--file": "pyvirt takes this value as a positional argument (FILE)",
    },
    "setvcpus": {
        "--guest": "not in pyvirt yet (vCPUs on/offline through the guest agent)",
        "--hotpluggable": "not in pyvirt yet",
    },
    "snapshot-create": {
        "--reuse-external": "pyvirt creates the overlays itself (a reused file may hold anything)",
        "--validate": VALIDATE,
        "--xmlfile": "pyvirt takes this value as a positional argument (XMLFILE)",
    },
    "snapshot-create-as": {
        "--reuse-external": "pyvirt creates the overlays itself (a reused file may hold anything)",
        "--validate": VALIDATE,
    },
    "snapshot-current": {
        "--snapshotname": "pyvirt takes this value as a positional argument (SNAPSHOT)",
    },
    "snapshot-delete": {
        "--snapshotname": "pyvirt takes this value as a positional argument (SNAPSHOT)",
    },
    "snapshot-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "snapshot-edit": {
        "--snapshotname": "pyvirt takes this value as a positional argument (SNAPSHOT)",
    },
    "snapshot-revert": {
        "--reset-nvram": RESET_NVRAM,
        "--snapshotname": "pyvirt takes this value as a positional argument (SNAPSHOT)",
    },
    "start": {
        "--autodestroy": "a pyvirt command holds no connection whose end could destroy the guest",
        "--bypass-cache": "not in pyvirt yet",
        "--pass-fds": "passing file descriptors is for LXC guests in libvirt; pyvirt runs QEMU",
        "--reset-nvram": RESET_NVRAM,
    },
    "undefine": {
        "--delete-storage-volume-snapshots": "not in pyvirt yet",
        "--wipe-storage": "not in pyvirt yet (use vol-wipe first)",
    },
    "update-device": {
        "--force": "not in pyvirt yet (change-media --force ejects a locked tray)",
    },
    "vcpucount": {
        "--active": "not in pyvirt yet: vcpucount prints every count",
        "--config": "not in pyvirt yet: vcpucount prints every count",
        "--current": "not in pyvirt yet: vcpucount prints every count",
        "--guest": "not in pyvirt yet (through the guest agent)",
        "--live": "not in pyvirt yet: vcpucount prints every count",
        "--maximum": "not in pyvirt yet: vcpucount prints every count",
    },
    "vcpuinfo": {
        "--pretty": "not in pyvirt yet",
    },
    "vcpupin": {
        "--cpulist": "pyvirt takes this value as a positional argument (CPULIST)",
        "--vcpu": "pyvirt takes this value as a positional argument (VCPU)",
    },
    "version": {
        "--daemon": "not in pyvirt yet",
    },
    "vol-clone": {
        "--print-xml": "not in pyvirt yet",
        "--reflink": "not in pyvirt yet",
    },
    "vol-create": {
        "--validate": VALIDATE,
    },
    "vol-create-from": {
        "--reflink": "not in pyvirt yet",
        "--validate": VALIDATE,
    },
    "vol-delete": {
        "--delete-snapshots": "not in pyvirt yet",
    },
    "vol-dumpxml": {
        "--wrap": XPATH,
        "--xpath": XPATH,
    },
    "vol-info": {
        "--physical": "not in pyvirt yet",
    },
}

#: the options of :data:`TABLE` that take a value (``COMMAND --OPTION``); the others are flags
VALUED: frozenset[str] = frozenset(
    {
        "attach-disk --address",
        "attach-disk --alias",
        "attach-disk --iothread",
        "attach-disk --source-host-socket",
        "attach-disk --source-host-transport",
        "attach-disk --wwn",
        "attach-interface --alias",
        "attach-interface --inbound",
        "attach-interface --outbound",
        "attach-interface --script",
        "attach-interface --source-mode",
        "backup-dumpxml --xpath",
        "change-media --source",
        "checkpoint-create --xmlfile",
        "checkpoint-delete --checkpointname",
        "checkpoint-dumpxml --checkpointname",
        "checkpoint-dumpxml --xpath",
        "checkpoint-edit --checkpointname",
        "checkpoint-info --checkpointname",
        "checkpoint-parent --checkpointname",
        "connect --name",
        "console --devname",
        "create --pass-fds",
        "domblkinfo --device",
        "domblkstat --device",
        "emulatorpin --cpulist",
        "help --command",
        "hypervisor-cpu-baseline --file",
        "hypervisor-cpu-baseline --model",
        "managedsave-dumpxml --xpath",
        "memtune --min-guarantee",
        "migrate --comp-methods",
        "migrate --comp-mt-dthreads",
        "migrate --comp-mt-level",
        "migrate --comp-mt-threads",
        "migrate --comp-xbzrle-cache",
        "migrate --disks-port",
        "migrate --disks-uri",
        "migrate --graphicsuri",
        "migrate --tls-destination",
        "net-dumpxml --xpath",
        "net-update --parent-index",
        "nodedev-dumpxml --xpath",
        "pool-create-as --adapter-name",
        "pool-create-as --adapter-parent",
        "pool-create-as --adapter-parent-fabric-wwn",
        "pool-create-as --adapter-parent-wwnn",
        "pool-create-as --adapter-parent-wwpn",
        "pool-create-as --adapter-wwnn",
        "pool-create-as --adapter-wwpn",
        "pool-create-as --secret-uuid",
        "pool-create-as --source-protocol-ver",
        "pool-define-as --adapter-name",
        "pool-define-as --adapter-parent",
        "pool-define-as --adapter-parent-fabric-wwn",
        "pool-define-as --adapter-parent-wwnn",
        "pool-define-as --adapter-parent-wwpn",
        "pool-define-as --adapter-wwnn",
        "pool-define-as --adapter-wwpn",
        "pool-define-as --secret-uuid",
        "pool-define-as --source-protocol-ver",
        "pool-dumpxml --xpath",
        "reboot --mode",
        "save-image-dumpxml --xpath",
        "schedinfo --cap",
        "schedinfo --weight",
        "screenshot --file",
        "snapshot-create --xmlfile",
        "snapshot-current --snapshotname",
        "snapshot-delete --snapshotname",
        "snapshot-dumpxml --xpath",
        "snapshot-edit --snapshotname",
        "snapshot-revert --snapshotname",
        "start --pass-fds",
        "vcpupin --cpulist",
        "vcpupin --vcpu",
        "vol-dumpxml --xpath",
    }
)


def _refuse(command: str, option: str, reason: str) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if value not in (None, False, ()):
            raise UnsupportedError(f"{command} {option}: {reason}", hint="see docs/virsh-compat.md")
        return value

    return callback


def _store(key: str) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        ctx.meta[key] = value
        return value

    return callback


def attach(name: str, command: click.Command) -> None:
    """Add *command*'s (named *name*) missing virsh options of :data:`TABLE` (once)."""
    row = TABLE.get(name)
    if not row or getattr(command, "_pyvirt_virsh_options", False):
        return
    command._pyvirt_virsh_options = True  # type: ignore[attr-defined]
    existing = {opt: p for p in command.params for opt in p.opts}
    for option, reason in row.items():
        if reason == XPATH:
            continue
        accepted = reason.startswith("accepted:")
        text = f"({reason})" if accepted else f"(refused) {reason}"
        param = existing.get(option)
        if isinstance(param, click.Option):
            param.hidden = False
            param.help = text
            if not accepted:
                param.callback = _refuse(name, option, reason)
            continue
        valued = f"{name} {option}" in VALUED
        unique = "virsh_" + option[2:].replace("-", "_")  # not the name of an argument's
        command.params.append(click.Option(
            [unique, option], is_flag=not valued, expose_value=False, help=text,
            metavar="VALUE" if valued else None,
            callback=None if accepted else _refuse(name, option, reason),
        ))  # fmt: skip
    if XPATH in row.values():
        _add_xpath(command, own_xpath="--xpath" in existing)


def _add_xpath(command: click.Command, *, own_xpath: bool) -> None:
    """``--xpath EXPR`` and ``--wrap`` on a command that prints one XML document."""
    if not own_xpath:
        command.params.append(click.Option(
            ["virsh_xpath", "--xpath"], metavar="EXPR", expose_value=False,
            callback=_store("pyvirt.xpath"), help="print only the nodes matching EXPR",
        ))  # fmt: skip
    command.params.append(click.Option(
        ["virsh_wrap", "--wrap"], is_flag=True, expose_value=False, callback=_store("pyvirt.wrap"),
        help="with --xpath: wrap the nodes in one <nodes> element",
    ))  # fmt: skip
    inner = command.callback
    assert inner is not None

    @functools.wraps(inner)
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        expr = kwargs.get("xpath") if own_xpath else ctx.meta.get("pyvirt.xpath")
        wrap = bool(ctx.meta.get("pyvirt.wrap"))
        if not expr:
            if wrap:
                raise InvalidConfigError("--wrap needs --xpath")
            return inner(*args, **kwargs)
        from pyvirt.api.xmlpath import select  # lazy

        if own_xpath:
            kwargs["xpath"] = None  # the whole document: filtered here
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = inner(*args, **kwargs)
        click.echo(select(out.getvalue(), str(expr), wrap=wrap), nl=False)
        return result

    command.callback = run
