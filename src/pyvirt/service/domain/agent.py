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

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, UnsupportedError
from pyvirt.service import hooks
from pyvirt.state.locks import file_lock

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.agent import GuestAgent
    from pyvirt.model.domain import Domain
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.service.network.types import NicAddress

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
    from pyvirt.drivers.qemu.agent import GuestAgent

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
        ga.execute("guest-ping")


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
    args = {
        "username": user,
        "password": base64.b64encode(password.encode()).decode(),
        "crypted": encrypted,
    }
    with session(mgr, ident, timeout=timeout) as ga:
        ga.execute("guest-set-user-password", args)


def fs_freeze(
    mgr: DomainManager,
    ident: str,
    mountpoints: list[str] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> int:
    """Freeze the guest's filesystems (all, or *mountpoints*); returns how many were frozen."""
    with session(mgr, ident, timeout=timeout) as ga:
        if mountpoints:
            result = ga.execute("guest-fsfreeze-freeze-list", {"mountpoints": mountpoints})
        else:
            result = ga.execute("guest-fsfreeze-freeze")
    return int(result)


def fs_thaw(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """Thaw the guest's frozen filesystems; returns how many were thawed."""
    with session(mgr, ident, timeout=timeout) as ga:
        return int(ga.execute("guest-fsfreeze-thaw"))


def fs_freeze_status(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> str:
    """``frozen`` or ``thawed``."""
    with session(mgr, ident, timeout=timeout) as ga:
        return str(ga.execute("guest-fsfreeze-status"))


def get_time(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> int:
    """The guest's clock in nanoseconds since the epoch."""
    with session(mgr, ident, timeout=timeout) as ga:
        return int(ga.execute("guest-get-time"))


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
        ga.execute("guest-set-time", {"time": nanoseconds} if nanoseconds is not None else None)


def shutdown(mgr: DomainManager, ident: str, *, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Ask the guest agent to power the guest off (``guest-shutdown``); returns at once."""
    with session(mgr, ident, timeout=timeout) as ga:
        ga.execute("guest-shutdown", {"mode": "powerdown"}, reply=False)


SHUTDOWN_MODES = ("acpi", "agent")


def shutdown_with_modes(
    mgr: DomainManager, ident: str, modes: list[str], *, timeout: float = DEFAULT_TIMEOUT
) -> str:
    """virsh ``shutdown --mode a,b``: try each mode in order; returns the one that worked.

    :raises UnsupportedError: a mode pyvirt does not implement (initctl, signal, paravirt)
    """
    from pyvirt.errors import PyvirtError
    from pyvirt.service.domain import lifecycle

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
        result = ga.execute("guest-get-fsinfo")
    by_pci = _disks_by_pci(mgr, name)
    out = []
    for fs in result:
        targets = []
        for disk in fs.get("disk", []):
            target = by_pci.get(_pci_key(disk.get("pci-controller")))
            if target is None and str(disk.get("dev", "")).startswith("/dev/"):
                target = str(disk["dev"])[5:]
            if target and target not in targets:
                targets.append(target)
        out.append(
            FsInfo(fs.get("mountpoint", ""), fs.get("name", ""), fs.get("type", ""), targets)
        )
    out.sort(key=lambda f: f.mountpoint)
    return out


def _disks_by_pci(mgr: DomainManager, name: str) -> dict[tuple[int, int, int, int] | None, str]:
    """PCI address (as the guest sees it) -> target of the domain's virtio disks (query-pci)."""
    from pyvirt.drivers.qemu.argv.devices.disk import dev_index
    from pyvirt.drivers.qemu.qmp import Monitor
    from pyvirt.errors import PyvirtError

    aliases = {}
    for disk in mgr.definition(name).devices.disks:
        target = disk.target_dev or ""
        if disk.target_bus == "virtio" or (disk.target_bus is None and target[:2] == "vd"):
            aliases[f"virtio-disk{dev_index(target)}"] = target
    _, rec = mgr.running(name)
    try:
        with Monitor(rec.qmp_socket, name=name) as mon:
            buses = mon.execute("query-pci")
    except PyvirtError:
        return {}
    found: dict[tuple[int, int, int, int] | None, str] = {}

    def walk(devices: list[dict[str, Any]]) -> None:
        for dev in devices:
            target = aliases.get(str(dev.get("qdev_id", "")))
            if target is not None:
                key = (0, int(dev["bus"]), int(dev["slot"]), int(dev["function"]))
                found[key] = target
            walk(dev.get("pci_bridge", {}).get("devices", []))

    for bus in buses or []:
        walk(bus.get("devices", []))
    return found


def _pci_key(pci: Any) -> tuple[int, int, int, int] | None:
    if not isinstance(pci, dict):
        return None
    try:
        return (int(pci["domain"]), int(pci["bus"]), int(pci["slot"]), int(pci["function"]))
    except (KeyError, TypeError, ValueError):
        return None


def interface_addresses(
    mgr: DomainManager,
    ident: str,
    interface: str | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[NicAddress]:
    """Addresses of the guest's interfaces as the agent reports them (``domifaddr --source
    agent``): one row per address, the interface's guest name as ``target``."""
    from pyvirt.service.network.types import NicAddress

    with session(mgr, ident, timeout=timeout) as ga:
        result = ga.execute("guest-network-get-interfaces")
    rows = []
    for nic in result:
        nic_name = str(nic.get("name", ""))
        if interface and nic_name != interface:
            continue
        mac = str(nic.get("hardware-address", "00:00:00:00:00:00"))
        for ip in nic.get("ip-addresses", []):
            family = "ipv6" if ip.get("ip-address-type") == "ipv6" else "ipv4"
            address = f"{ip.get('ip-address')}/{ip.get('prefix')}"
            rows.append(NicAddress(nic_name, mac, family, address))
    return rows


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
            users = ga.execute("guest-get-users")
            out.append(("user.count", str(len(users))))
            for i, u in enumerate(users):
                out.append((f"user.{i}.name", str(u.get("user", ""))))
                if u.get("domain"):
                    out.append((f"user.{i}.domain", str(u["domain"])))
                out.append((f"user.{i}.login-time", str(int(float(u.get("login-time", 0)) * 1000))))
        if "os" in wanted:
            osinfo = ga.execute("guest-get-osinfo")
            for key in ("id", "name", "pretty-name", "version", "version-id", "machine",
                        "variant", "variant-id", "kernel-release", "kernel-version"):  # fmt: skip
                if key in osinfo:
                    out.append((f"os.{key}", str(osinfo[key])))
        if "timezone" in wanted:
            tz = ga.execute("guest-get-timezone")
            if tz.get("zone"):
                out.append(("timezone.name", str(tz["zone"])))
            out.append(("timezone.offset", str(tz.get("offset", 0))))
        if "hostname" in wanted:
            out.append(("hostname", str(ga.execute("guest-get-host-name")["host-name"])))
        fsinfo = ga.execute("guest-get-fsinfo") if "filesystem" in wanted else None
    if fsinfo is not None:
        out.extend(_fs_pairs(mgr, name, fsinfo))
    return out


def _fs_pairs(mgr: DomainManager, name: str, fsinfo: list[dict[str, Any]]) -> list[tuple[str, str]]:
    by_pci = _disks_by_pci(mgr, name)
    out = [("fs.count", str(len(fsinfo)))]
    for i, fs in enumerate(fsinfo):
        p = f"fs.{i}"
        out += [
            (f"{p}.name", str(fs.get("name", ""))),
            (f"{p}.mountpoint", str(fs.get("mountpoint"))),
        ]
        out.append((f"{p}.fstype", str(fs.get("type", ""))))
        for key in ("total-bytes", "used-bytes"):
            if key in fs:
                out.append((f"{p}.{key}", str(fs[key])))
        disks = fs.get("disk", [])
        out.append((f"{p}.disk.count", str(len(disks))))
        for j, disk in enumerate(disks):
            alias = by_pci.get(_pci_key(disk.get("pci-controller")))
            if alias:
                out.append((f"{p}.disk.{j}.alias", alias))
            if disk.get("serial"):
                out.append((f"{p}.disk.{j}.serial", str(disk["serial"])))
            if disk.get("dev"):
                out.append((f"{p}.disk.{j}.device", str(disk["dev"])))
    return out
