"""Virtual networks (``net-*``) and domain NICs (``attach-interface``, ``domif*``).

:class:`NetworkManager` is what :attr:`pyvirt.service.connection.Connection.networks` returns.
Preconditions and user-facing messages live here; the host pieces (bridge, dnsmasq, nftables)
are built by the backends in :mod:`pyvirt.network.backends`; domain NIC operations are in
:mod:`pyvirt.service.nic.ops`.

State: ``CONFIG/network/NAME.xml`` (persistent definitions), ``CONFIG/network/autostart/NAME``,
``RUN/network/NAME.xml`` (live definition), ``RUN/network/NAME.json`` (what the network made on
the host, written before each piece is made) and ``RUN/network/NAME/`` (dnsmasq files).

Locking: ``RUN/locks/networks.lock`` guards the namespace (names, UUIDs, subnets, bridge
names) and is held for start/stop as well, which keep the bridge and subnet checks honest.
"""

from __future__ import annotations

import builtins
import contextlib
import ipaddress
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pyvirt.errors import (
    AlreadyExistsError,
    InvalidConfigError,
    InvalidStateError,
    NotFoundError,
)
from pyvirt.model.network import Network
from pyvirt.network import mac as macs
from pyvirt.network.runtime import NetRecord
from pyvirt.service.network.types import DhcpLease, NetworkInfo
from pyvirt.state.atomic import atomic_write
from pyvirt.state.locks import file_lock
from pyvirt.state.names import check_new_name
from pyvirt.state.paths import StatePaths
from pyvirt.state.revisions import check_revision, revision_of

# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: backends, their registry,
# dnsmasq, netlink, ``net-update`` code and the domain manager (for a network's users) load only
# for the verbs that use them (``net-list`` does without, ~5-10 ms each).

__all__ = ["DhcpLease", "NetworkInfo", "NetworkManager"]

DEFAULT_NAME = "default"
DEFAULT_XML = """<network>
  <name>default</name>
  <forward mode='nat'/>
  <bridge name='virbr0' stp='on' delay='0'/>
  <ip address='192.168.{n}.1' netmask='255.255.255.0'>
    <dhcp>
      <range start='192.168.{n}.2' end='192.168.{n}.254'/>
    </dhcp>
  </ip>
</network>
"""
BRIDGE_MODES = ("nat", "route", "isolated", "open")


class NetworkManager:
    """All network operations of one connection."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    # -- locks and files ----------------------------------------------------------------
    @contextmanager
    def _namespace(self) -> Iterator[None]:
        with file_lock(self.paths.lock_dir / "networks.lock", what="the network namespace"):
            yield

    def _record_path(self, name: str) -> str:
        return str(self.paths.network_run_root / f"{name}.json")

    def record(self, name: str) -> NetRecord | None:
        """The runtime record of ``name`` (also for a half-started network)."""
        return NetRecord.load(Path(self._record_path(name)))

    def _save_record(self, rec: NetRecord) -> None:
        rec.save(Path(self._record_path(rec.name)))

    def _persistent_names(self) -> builtins.list[str]:
        try:
            return sorted(
                p.stem for p in self.paths.network_config_dir.iterdir() if p.suffix == ".xml"
            )
        except FileNotFoundError:
            return []

    def _active_names(self) -> builtins.list[str]:
        try:
            entries = self.paths.network_run_root.iterdir()
            return sorted(p.stem for p in entries if p.suffix == ".xml")
        except FileNotFoundError:
            return []

    def is_active(self, name: str) -> bool:
        """True when the network is started."""
        rec = self.record(name)
        return rec is not None and rec.started

    def _read(self, name: str, *, inactive: bool = False) -> Network | None:
        live = self.paths.network_run_root / f"{name}.xml"
        if not inactive and live.exists() and self.is_active(name):
            return Network.from_xml(live.read_bytes())
        path = self.paths.network_xml(name)
        if path.exists():
            return Network.from_xml(path.read_bytes())
        if live.exists() and self.is_active(name):
            return Network.from_xml(live.read_bytes())
        return None

    def _all(self) -> dict[str, Network]:
        out: dict[str, Network] = {}
        for name in sorted(set(self._persistent_names()) | set(self._active_names())):
            net = self._read(name)
            if net is not None:
                out[name] = net
        return out

    # -- lookups ------------------------------------------------------------------------
    def resolve(self, ident: str) -> str:
        """The name of the network known by name or UUID.

        :raises NotFoundError: no such network
        """
        if ident == DEFAULT_NAME:
            self.ensure_default()
        plain = ident and "/" not in ident and ident not in (".", "..")
        if plain and (self.paths.network_xml(ident).exists() or self.is_active(ident)):
            return ident
        for name, net in self._all().items():
            if net.uuid.lower() == ident.lower():
                return name
        raise NotFoundError(
            f"network '{ident}' not found", hint="list the networks with 'net-list --all'"
        )

    def definition(self, ident: str, *, inactive: bool = False) -> Network:
        """The live definition while active unless ``inactive``."""
        name = self.resolve(ident)
        net = self._read(name, inactive=inactive)
        if net is None:
            raise NotFoundError(f"network '{name}' not found")
        return net

    def dumpxml(self, ident: str, *, inactive: bool = False) -> str:
        """The definition as XML."""
        return self.definition(ident, inactive=inactive).to_xml()

    def _info(self, name: str, net: Network) -> NetworkInfo:
        persistent = self.paths.network_xml(name).exists()
        return NetworkInfo(
            name=name,
            uuid=net.uuid,
            active=self.is_active(name),
            persistent=persistent,
            autostart=(self.paths.network_autostart_dir / name).exists(),
            bridge=net.bridge_name,
            forward_mode=net.mode,
        )

    def info(self, ident: str) -> NetworkInfo:
        """One network by name or UUID."""
        name = self.resolve(ident)
        return self._info(name, self.definition(name))

    def list(self, *, active: bool | None = None) -> builtins.list[NetworkInfo]:
        """Networks sorted by name, filtered by state when ``active`` is given."""
        self.ensure_default()
        infos = [self._info(n, net) for n, net in self._all().items()]
        return [i for i in infos if active is None or i.active == active]

    # -- definitions ----------------------------------------------------------------------
    def _complete(self, net: Network, others: dict[str, Network]) -> None:
        """Give a new definition what libvirt fills in: a bridge name and a MAC."""
        if net.mode in BRIDGE_MODES and not net.bridge_name:
            used = {o.bridge_name for o in others.values()}
            n = 0
            while f"virbr{n}" in used:
                n += 1
            net.bridge_name = f"virbr{n}"
            if net.stp is None:
                net.stp = "on"
            if net.delay is None:
                net.delay = 0
        if net.mode in BRIDGE_MODES and net.mac is None:
            net.mac = macs.generate([o.mac for o in others.values() if o.mac])

    def _check_conflicts(self, net: Network, others: dict[str, Network]) -> None:
        """Refuse a UUID, bridge name or subnet another network holds."""
        problems = []
        for name, other in others.items():
            if name == net.name:
                continue
            if other.uuid.lower() == net.uuid.lower():
                raise AlreadyExistsError(
                    f"network '{name}' already exists with uuid {net.uuid}",
                    hint="remove the <uuid> element to get a new one",
                )
            if net.bridge_name and other.bridge_name == net.bridge_name and net.mode != "bridge":
                problems.append(f"bridge '{net.bridge_name}' is used by network '{name}'")
            for ip in net.ips:
                for oip in other.ips:
                    with contextlib.suppress(ValueError):
                        if ip.subnet.overlaps(oip.subnet):
                            problems.append(
                                f"subnet {ip.subnet} overlaps {oip.subnet} of network '{name}'"
                            )
        if problems:
            raise InvalidConfigError(
                f"network '{net.name}' conflicts with other networks: " + "; ".join(problems),
                hint="choose another <ip address> or <bridge name>",
            )

    def _parse(self, xml: str | bytes) -> Network:
        net = Network.from_xml(xml)
        check_new_name(net.name, kind="network")
        return net

    def revision(self, ident: str) -> str:
        """The revision of the persistent definition (a content hash; an ETag).

        :raises InvalidStateError: the network is transient
        """
        name = self.resolve(ident)
        try:
            data = self.paths.network_xml(name).read_bytes()
        except FileNotFoundError:
            raise InvalidStateError(f"network '{name}' is transient") from None
        return revision_of(data)

    def define_xml(
        self, xml: str | bytes, *, expect_revision: str | None = None
    ) -> tuple[Network, builtins.list[str]]:
        """Define (or redefine) a persistent network; returns it and warnings.

        :param expect_revision: refuse unless the stored definition is at this
            :meth:`revision` (checked under the namespace lock)
        """
        net = self._parse(xml)
        with self._namespace():
            if expect_revision is not None:
                check_revision(
                    "network", net.name, self.paths.network_xml(net.name), expect_revision
                )
            others = self._all()
            existing = others.get(net.name)
            if existing is not None and existing.uuid.lower() != net.uuid.lower():
                if "<uuid>" in (xml if isinstance(xml, str) else xml.decode(errors="replace")):
                    raise AlreadyExistsError(
                        f"network '{net.name}' already exists with uuid {existing.uuid}",
                        hint="keep the existing <uuid> or choose another name",
                    )
                net.uuid = existing.uuid
            self._complete(net, {k: v for k, v in others.items() if k != net.name})
            self._check_conflicts(net, others)
            self.paths.network_config_dir.mkdir(parents=True, exist_ok=True)
            atomic_write(self.paths.network_xml(net.name), net.to_xml().encode())
        return net, list(net.warnings)

    def create(self, xml: str | bytes) -> Network:
        """Create and start a transient network."""
        net = self._parse(xml)
        with self._namespace():
            others = self._all()
            if net.name in others:
                raise AlreadyExistsError(f"network '{net.name}' already exists")
            self._complete(net, others)
            self._check_conflicts(net, others)
            self._start(net)
        return net

    def undefine(self, ident: str) -> None:
        """Remove a persistent definition; an active network becomes transient."""
        name = self.resolve(ident)
        with self._namespace():
            if not self.paths.network_xml(name).exists():
                raise InvalidStateError(
                    f"network '{name}' is transient; it cannot be undefined",
                    hint="use 'net-destroy' to stop it; it disappears then",
                )
            users = self.users(name)
            if users:
                raise InvalidStateError(
                    f"network '{name}' is used by running domains: {', '.join(users)}",
                    hint="shut the domains down or detach their interfaces first",
                )
            self.paths.network_xml(name).unlink()
            (self.paths.network_autostart_dir / name).unlink(missing_ok=True)

    def autostart(self, ident: str, enabled: bool) -> None:
        """Mark a persistent network to start on first use by a domain."""
        name = self.resolve(ident)
        if not self.paths.network_xml(name).exists():
            raise InvalidStateError(f"network '{name}' is transient; autostart needs a definition")
        marker = self.paths.network_autostart_dir / name
        if enabled:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.touch()
        else:
            marker.unlink(missing_ok=True)

    def ensure_default(self) -> None:
        """Define the ``default`` NAT network once, like libvirt's first start does.

        The subnet is 192.168.122.0/24 unless another network or a host route holds it; then
        the next free 192.168.N.0/24. Undefining it later is respected (a marker remembers).
        """
        marker = self.paths.network_config_dir / ".default-defined"
        if marker.exists():
            return
        from pyvirt.network import netlink  # lazy

        with self._namespace():
            if marker.exists():
                return
            taken = [r.dst for r in netlink.routes()]
            for net in self._all().values():
                taken += [ip.subnet for ip in net.ips if ip.address]
            n = next(
                i
                for i in range(122, 255)
                if not any(ipaddress.ip_network(f"192.168.{i}.0/24").overlaps(t) for t in taken)
            )
            if not self.paths.network_xml(DEFAULT_NAME).exists():
                net = self._parse(DEFAULT_XML.format(n=n))
                others = self._all()
                if any(o.bridge_name == "virbr0" for o in others.values()):
                    net.bridge_name = None
                self._complete(net, others)
                self.paths.network_config_dir.mkdir(parents=True, exist_ok=True)
                atomic_write(self.paths.network_xml(DEFAULT_NAME), net.to_xml().encode())
                self.paths.network_autostart_dir.mkdir(parents=True, exist_ok=True)
                (self.paths.network_autostart_dir / DEFAULT_NAME).touch()
            marker.touch()

    # -- start and stop -------------------------------------------------------------------
    def _check_routes(self, net: Network) -> None:
        from pyvirt.network import netlink  # lazy

        own = net.bridge_name
        for ip in net.ips:
            for route in netlink.routes():
                if route.dev == own or route.dst.version != ip.subnet.version:
                    continue
                if route.dst.overlaps(ip.subnet):
                    raise InvalidConfigError(
                        f"network '{net.name}' subnet {ip.subnet} overlaps the host route "
                        f"{route.dst} on '{route.dev}'",
                        hint="choose another <ip address> for the network",
                    )

    def _cleanup_stale(self, name: str) -> bool:
        """Remove host pieces a crashed start or stop left; True when there was a record."""
        from pyvirt.network.registry import backend_for  # lazy

        rec = self.record(name)
        if rec is None:
            return False
        backend_for(rec.mode).stop(rec)
        self._forget(name)
        return True

    def _forget(self, name: str) -> None:
        (self.paths.network_run_root / f"{name}.json").unlink(missing_ok=True)
        (self.paths.network_run_root / f"{name}.xml").unlink(missing_ok=True)
        shutil.rmtree(self.paths.network_run_dir(name), ignore_errors=True)

    def _start(self, net: Network) -> None:
        """Build the network on the host (caller holds the namespace lock)."""
        from pyvirt.network.base import StartContext  # lazy
        from pyvirt.network.registry import backend_for  # lazy

        if self.is_active(net.name):
            raise InvalidStateError(f"network '{net.name}' is already active")
        backend = backend_for(net.mode)
        self._cleanup_stale(net.name)
        if backend.info.addresses:
            self._check_routes(net)
        run_dir = self.paths.network_run_dir(net.name)
        run_dir.mkdir(parents=True, exist_ok=True)
        rec = NetRecord(name=net.name, mode=net.mode)
        self._save_record(rec)
        try:
            backend.start(net, rec, StartContext(run_dir, self._save_record))
            atomic_write(self.paths.network_run_root / f"{net.name}.xml", net.to_xml().encode())
            rec.started = True
            self._save_record(rec)
        except BaseException:
            backend.stop(rec)
            self._forget(net.name)
            raise

    def start(self, ident: str) -> NetworkInfo:
        """Start a defined network (bridge, addresses, firewall, dnsmasq)."""
        name = self.resolve(ident)
        with self._namespace():
            net = self._read(name, inactive=True)
            if net is None:
                raise NotFoundError(f"network '{name}' not found")
            others = {k: v for k, v in self._all().items() if k != name}
            self._check_conflicts(net, others)
            self._start(net)
        return self.info(name)

    def destroy(self, ident: str) -> None:
        """Stop a network and remove every host piece it made (also after a crash)."""
        name = self.resolve(ident)
        with self._namespace():
            rec = self.record(name)
            if rec is None:
                raise InvalidStateError(f"network '{name}' is not active")
            users = self.users(name)
            if users:
                raise InvalidStateError(
                    f"network '{name}' is used by running domains: {', '.join(users)}",
                    hint="shut the domains down or detach their interfaces first",
                )
            self._cleanup_stale(name)

    def ensure_active(self, name: str) -> Network:
        """The live definition, starting an autostart network on first use."""
        name = self.resolve(name)
        if self.is_active(name):
            return self.definition(name)
        if not (self.paths.network_autostart_dir / name).exists():
            raise InvalidStateError(
                f"network '{name}' is not active", hint=f"start it with 'net-start {name}'"
            )
        with self._namespace():
            if not self.is_active(name):
                net = self._read(name, inactive=True)
                assert net is not None
                self._start(net)
        return self.definition(name)

    def users(self, name: str) -> builtins.list[str]:
        """Running domains with an interface on network ``name``."""
        from pyvirt.service.domain.manager import DomainManager  # lazy

        return [
            dom_name
            for dom_name, dom in DomainManager(self.paths).running_definitions()
            if any(i.type == "network" and i.source_network == name for i in dom.devices.interfaces)
        ]

    def add_tap(self, name: str, tap: str, *, remove: bool = False) -> None:
        """Note (or forget) a tap on the network's record so net-destroy can clean it."""
        rec = self.record(name)
        if rec is None:
            return
        if remove and tap in rec.taps:
            rec.taps.remove(tap)
        elif not remove and tap not in rec.taps:
            rec.taps.append(tap)
        self._save_record(rec)

    # -- leases and updates ---------------------------------------------------------------
    def dhcp_leases(self, ident: str, *, mac: str | None = None) -> builtins.list[DhcpLease]:
        """Current leases from the network's dnsmasq lease file."""
        from pyvirt.network import dnsmasq  # lazy

        name = self.resolve(ident)
        if not self.is_active(name):
            raise InvalidStateError(f"network '{name}' is not active")
        net = self.definition(name)
        files = dnsmasq.Files(self.paths.network_run_dir(name))
        out = []
        now = time.time()
        for lease in dnsmasq.leases(files):
            if mac and lease.mac != mac.lower():
                continue
            if lease.expiry and lease.expiry < now:
                continue
            prefix = 24
            for ip in net.ips:
                with contextlib.suppress(ValueError):
                    if ipaddress.ip_address(lease.ip) in ip.subnet:
                        prefix = ip.prefix
            out.append(
                DhcpLease(
                    lease.expiry,
                    lease.mac,
                    lease.ip,
                    prefix,
                    lease.hostname,
                    lease.client_id,
                    net.bridge_name or "",
                )
            )
        return out

    def update(
        self,
        ident: str,
        command: str,
        section: str,
        xml: str,
        *,
        live: bool = False,
        config: bool = False,
    ) -> None:
        """``net-update``: add/delete/modify an ``ip-dhcp-host`` (live and/or config)."""
        from pyvirt.service.network.update import apply_update  # lazy

        name = self.resolve(ident)
        with self._namespace():
            apply_update(self, name, command, section, xml, live=live, config=config)
