"""Guest agent use cases: guestinfo, domfsinfo, set-user-password, domfsfreeze/thaw, domtime,
``shutdown --mode agent``, ``domifaddr --source agent`` and raw ``qemu-agent-command``.

The guest agent (``qemu-guest-agent`` in the guest) is reached over the domain's
``<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>``.
When such a channel has no ``<source path=...>``, the ``agent-channel`` lifecycle hook
registered here gives it ``RUN_DIR/<target name>`` (``/run/pyvirt/qemu/NAME/
org.qemu.guest_agent.0``) before the argv is built, so the live definition (``dumpxml``)
shows where QEMU listens, as libvirt does. Sessions with one domain's agent are serialized
by a lock (QEMU serves one client per channel at a time).

Precondition messages live here; the wire protocol is :mod:`pyvirt.drivers.qemu.agent`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, PyvirtError, UnsupportedError
from pyvirt.service import hooks
from pyvirt.service.domain import lifecycle
from pyvirt.state.locks import file_lock

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.agent import GuestAgent
    from pyvirt.drivers.qemu.agent_types import GuestDiskAddress, GuestFilesystem
    from pyvirt.drivers.qemu.monitor import PciDevice
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the agent-channel hook
# loads this module at every start; the agent client, QMP and the argv builder load only for agent
# verbs.

#: The channel name qemu-ga listens on (same as ``pyvirt.drivers.qemu.agent.CHANNEL_NAME``).
CHANNEL_NAME = "org.qemu.guest_agent.0"
#: Seconds allowed for each agent command unless the caller says otherwise.
DEFAULT_TIMEOUT = 10.0
_SAFE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
CHANNEL_XML = "<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"


# -- the lifecycle hook: a socket path for unix channels without one --------------------------
class AgentChannelHook:
    """Gives every ``<channel type='unix'>`` without a source path one in the run directory."""

    name = "agent-channel"

    def compile(self, mgr: DomainManager, dom: Domain) -> hooks.HookResult | None:
        """Fill in ``<source mode='bind' path='RUN_DIR/<target name>'/>`` where missing."""
        run_dir = mgr.paths.domain_run_dir(dom.name)
        changed = False
        for index, ch in enumerate(dom.devices.channels):
            if ch.type != "unix" or ch.source_path:
                continue
            name = ch.target_name if ch.target_name and _SAFE_NAME.match(ch.target_name) else None
            ch.source_mode = "bind"
            ch.source_path = str(run_dir / (name or f"channel{index}"))
            changed = True
        return hooks.HookResult() if changed else None

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Nothing to prepare: QEMU creates the socket in the run directory."""

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        """Nothing to do once QEMU runs."""

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        """Nothing to undo: the socket goes away with the run directory."""


hooks.register_hook(AgentChannelHook())


# -- sessions --------------------------------------------------------------------------------
def agent_socket(mgr: DomainManager, ident: str) -> tuple[str, Path]:
    """Name of the running domain and the host socket of its guest agent channel.

    :raises InvalidStateError: the domain is not running
    :raises UnsupportedError: the domain has no guest agent channel
    """
    name, _ = mgr.running(ident)
    dom = mgr.definition(name)
    for ch in dom.devices.channels:
        if ch.target_type == "virtio" and ch.target_name == CHANNEL_NAME:
            if ch.type == "unix" and ch.source_path:
                return name, Path(ch.source_path)
            if ch.type == "unix":
                raise UnsupportedError(
                    f"domain '{name}': the guest agent channel has no socket path",
                    hint="restart the domain: pyvirt gives the channel a socket when it starts",
                )
            raise UnsupportedError(
                f"domain '{name}': the guest agent channel is of type '{ch.type}'; "
                "pyvirt talks to the agent over a unix channel",
                hint=f"use {CHANNEL_XML} and restart the domain",
            )
    raise UnsupportedError(
        f"domain '{name}' has no guest agent channel",
        hint=f"add {CHANNEL_XML} to its <devices> (edit), then restart it",
    )


@contextmanager
def session(
    mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT
) -> Iterator[GuestAgent]:
    """A synchronized session with the domain's guest agent (one at a time per domain)."""
    from pyvirt.drivers.qemu.agent import GuestAgent  # lazy

    name, path = agent_socket(mgr, ident)
    lock = mgr.paths.lock_dir / f"agent-{name}.lock"
    with (
        file_lock(lock, timeout=timeout + 5, what=f"the guest agent of domain '{name}'"),
        GuestAgent(path, timeout=timeout, name=name) as ga,
    ):
        yield ga


def command(mgr: DomainManager, ident: str, cmd: Any, *, timeout: float = DEFAULT_TIMEOUT) -> Any:
    """Run a raw agent command (``{"execute": ..., "arguments": {...}}``), virsh's
    ``qemu-agent-command``; returns its ``return`` value.

    :raises InvalidConfigError: *cmd* is not an object with an ``execute`` string
    """
    if not isinstance(cmd, dict) or not isinstance(cmd.get("execute"), str):
        raise InvalidConfigError(
            "an agent command must be a JSON object with an 'execute' member",
            hint='for example: \'{"execute": "guest-info"}\'',
        )
    with session(mgr, ident, timeout=timeout) as ga:
        return ga.execute(cmd["execute"], cmd.get("arguments"))


def ping(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Check that the agent answers (``guest-ping``)."""
    with session(mgr, ident, timeout=timeout) as ga:
        ga.ping()


# -- passwords, freeze, time, shutdown ----------------------------------------------------------
def set_user_password(
    mgr: DomainManager,
    ident: str,
    user: str,
    password: str,
    *,
    encrypted: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Set *user*'s password in the guest; *encrypted* means *password* is already a crypt hash."""
    if not user:
        raise InvalidConfigError("the user name is empty")
    with session(mgr, ident, timeout=timeout) as ga:
        ga.set_user_password(user, password, crypted=encrypted)


def fs_freeze(
    mgr: DomainManager,
    ident: str,
    mountpoints: list[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Freeze the guest's filesystems (all, or *mountpoints*); returns how many were frozen."""
    with session(mgr, ident, timeout=timeout) as ga:
        return ga.fsfreeze_freeze(mountpoints)


def fs_thaw(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Thaw the guest's frozen filesystems; returns how many were thawed."""
    with session(mgr, ident, timeout=timeout) as ga:
        return ga.fsfreeze_thaw()


def fs_freeze_status(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """``frozen`` or ``thawed``."""
    with session(mgr, ident, timeout=timeout) as ga:
        return ga.fsfreeze_status()


def get_time(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """The guest's clock in nanoseconds since the epoch."""
    with session(mgr, ident, timeout=timeout) as ga:
        return ga.get_time()


def set_time(
    mgr: DomainManager,
    ident: str,
    nanoseconds: int | None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> None:
    """Set the guest's clock to *nanoseconds* since the epoch, or from its RTC when ``None``."""
    if nanoseconds is not None and nanoseconds < 0:
        raise InvalidConfigError("the time must not be negative")
    with session(mgr, ident, timeout=timeout) as ga:
        ga.set_time(nanoseconds)


def shutdown(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Ask the guest agent to power the guest off; returns at once."""
    with session(mgr, ident, timeout=timeout) as ga:
        ga.shutdown("powerdown")


SHUTDOWN_MODES = ("acpi", "agent")


def shutdown_with_modes(
    mgr: DomainManager, ident: str, modes: list[str], *, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """virsh ``shutdown --mode a,b``: try each mode in order; returns the one that worked.

    :raises UnsupportedError: a mode pyvirt does not implement (initctl, signal, paravirt)
    """

    for mode in modes:
        if mode not in SHUTDOWN_MODES:
            raise UnsupportedError(
                f"shutdown mode '{mode}' is not supported",
                hint="use --mode acpi or --mode agent",
            )
    last: PyvirtError | None = None
    for mode in modes:
        try:
            if mode == "agent":
                shutdown(mgr, ident, timeout=timeout)
            else:
                lifecycle.shutdown(mgr, ident)
            return mode
        except PyvirtError as err:
            last = err
    assert last is not None, "no shutdown mode given"
    raise last


# -- information -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FsInfo:
    """One mounted filesystem in the guest (virsh ``domfsinfo``)."""

    mountpoint: str
    name: str
    type: str
    targets: list[str]

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def fs_info(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> list[FsInfo]:
    """The guest's mounted filesystems, with the domain disks (targets) they live on."""
    with session(mgr, ident, timeout=timeout) as ga:
        name = ga.name
        result = ga.get_fsinfo()
    by_pci = _disks_by_pci(mgr, name)
    out = []
    for fs in result:
        targets = []
        for disk in fs.disks:
            target = by_pci.get(_pci_key(disk))
            if target is None and disk.dev and disk.dev.startswith("/dev/"):
                target = disk.dev[5:]
            if target and target not in targets:
                targets.append(target)
        out.append(FsInfo(fs.mountpoint, fs.name, fs.type, targets))
    out.sort(key=lambda f: f.mountpoint)
    return out


def _disks_by_pci(mgr: DomainManager, name: str) -> dict[tuple[int, int, int, int] | None, str]:
    """PCI address (as the guest sees it) -> target of the domain's virtio disks."""
    from pyvirt.drivers.qemu.argv.devices.disk import dev_index  # lazy
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy

    aliases = {}
    for disk in mgr.definition(name).devices.disks:
        target = disk.target_dev or ""
        if disk.target_bus == "virtio" or (disk.target_bus is None and target[:2] == "vd"):
            aliases[f"virtio-disk{dev_index(target)}"] = target
    _, rec = mgr.running(name)
    try:
        with Monitor(rec.qmp_socket, name=name) as mon:
            buses = mon.query_pci()
    except PyvirtError:
        return {}
    found: dict[tuple[int, int, int, int] | None, str] = {}

    def walk(devices: list[PciDevice]) -> None:
        for dev in devices:
            target = aliases.get(dev.qdev_id)
            if target is not None:
                found[(0, dev.bus, dev.slot, dev.function)] = target
            walk(dev.bridge_devices or [])

    for bus in buses:
        walk(bus.devices)
    return found


def _pci_key(disk: GuestDiskAddress) -> tuple[int, int, int, int] | None:
    pci = disk.pci_controller
    return pci.key() if pci is not None else None


#: guestinfo's groups in virsh's order, with the agent command each needs.
INFO_GROUPS = ("user", "os", "timezone", "hostname", "filesystem")


def guest_info(
    mgr: DomainManager,
    ident: str,
    groups: list[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[tuple[str, str]]:
    """virsh ``guestinfo``: typed key/value pairs about the guest, group by group.

    :param groups: some of :data:`INFO_GROUPS` (all when empty or ``None``)
    """
    wanted = [g for g in INFO_GROUPS if not groups or g in groups]
    out: list[tuple[str, str]] = []
    with session(mgr, ident, timeout=timeout) as ga:
        name = ga.name
        if "user" in wanted:
            users = ga.get_users()
            out.append(("user.count", str(len(users))))
            for i, u in enumerate(users):
                out.append((f"user.{i}.name", u.user))
                if u.domain:
                    out.append((f"user.{i}.domain", u.domain))
                out.append((f"user.{i}.login-time", str(int(u.login_time * 1000))))
        if "os" in wanted:
            out.extend((f"os.{key}", value) for key, value in ga.get_osinfo().items())
        if "timezone" in wanted:
            tz = ga.get_timezone()
            if tz.zone:
                out.append(("timezone.name", tz.zone))
            out.append(("timezone.offset", str(tz.offset)))
        if "hostname" in wanted:
            out.append(("hostname", ga.get_host_name()))
        fsinfo = ga.get_fsinfo() if "filesystem" in wanted else None
    if fsinfo is not None:
        out.extend(_fs_pairs(mgr, name, fsinfo))
    return out


def _fs_pairs(
    mgr: DomainManager, name: str, fsinfo: list[GuestFilesystem]
) -> list[tuple[str, str]]:
    by_pci = _disks_by_pci(mgr, name)
    out = [("fs.count", str(len(fsinfo)))]
    for i, fs in enumerate(fsinfo):
        p = f"fs.{i}"
        out += [(f"{p}.name", fs.name), (f"{p}.mountpoint", fs.mountpoint)]
        out.append((f"{p}.fstype", fs.type))
        for key, size in (("total-bytes", fs.total_bytes), ("used-bytes", fs.used_bytes)):
            if size is not None:
                out.append((f"{p}.{key}", str(size)))
        out.append((f"{p}.disk.count", str(len(fs.disks))))
        for j, disk in enumerate(fs.disks):
            alias = by_pci.get(_pci_key(disk))
            if alias:
                out.append((f"{p}.disk.{j}.alias", alias))
            if disk.serial:
                out.append((f"{p}.disk.{j}.serial", disk.serial))
            if disk.dev:
                out.append((f"{p}.disk.{j}.device", disk.dev))
    return out
