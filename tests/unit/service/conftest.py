"""A running guest for service tests without QEMU: a runtime record whose QMP socket is a
fake server, the test process's own pid as QEMU's (so the domain counts as running), and
a small stateful model of QEMU's devices behind the fake server.

Never call ``destroy`` or anything that signals the recorded pid from these tests.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu.runtime import RuntimeRecord
from pyvirt.model.domain import Domain
from pyvirt.service.domain.manager import DomainManager
from pyvirt.state.paths import StatePaths
from tests.fakeqmp import FakeQmp, QmpError

NAME = "hp"
UUID = "8f1c0a6e-1111-4a2b-9c3d-0123456789ab"
GUEST_XML = f"""<domain type='qemu'>
  <name>{NAME}</name>
  <uuid>{UUID}</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static' current='1'>4</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><boot dev='hd'/></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='/var/lib/pyvirt/images/hp.img'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <memballoon model='virtio'/>
  </devices>
</domain>
"""


@dataclass
class FakeMachine:
    """What the fake QEMU holds: PCI slots of the root bus, device ids, block nodes and
    network backends; the QMP handlers below keep it up to date like QEMU would."""

    slots: dict[int, str] = field(
        default_factory=lambda: {0: "", 1: "", 2: "virtio-disk0", 3: "balloon0"}
    )
    devices: set[str] = field(default_factory=lambda: {"virtio-disk0", "balloon0"})
    nodes: list[str] = field(
        default_factory=lambda: ["virtio-disk0-storage", "virtio-disk0-format"]
    )
    netdevs: set[str] = field(default_factory=set)
    balloon: int = 262144 * 1024

    def install(self, qmp: FakeQmp) -> None:
        """Register the handlers on *qmp*."""
        qmp.on_call("query-pci", self.query_pci)
        qmp.on_call("qom-list", self.qom_list)
        qmp.on_call("device_add", self.device_add)
        qmp.on_call("device_del", self.device_del)
        qmp.on_call("netdev_add", self.netdev_add)
        qmp.on_call("netdev_del", self.netdev_del)
        qmp.on_call("blockdev-add", self.blockdev_add)
        qmp.on_call("blockdev-del", self.blockdev_del)
        qmp.on_call("query-named-block-nodes", self.query_nodes)
        qmp.on_call("query-balloon", lambda args: {"actual": self.balloon})
        qmp.on_call("balloon", self.set_balloon)
        self._qmp = qmp

    def query_pci(self, args: dict[str, Any]) -> Any:
        devices = [
            {"bus": 0, "slot": s, "function": 0, "qdev_id": q}
            for s, q in sorted(self.slots.items())
        ]
        return [{"bus": 0, "devices": devices}]

    def qom_list(self, args: dict[str, Any]) -> Any:
        assert args["path"] == "/machine/peripheral"
        kids = [{"name": d, "type": "child<x>"} for d in sorted(self.devices)]
        return [{"name": "type", "type": "string"}, *kids]

    def device_add(self, args: dict[str, Any]) -> Any:
        ident = args["id"]
        if ident in self.devices:
            raise QmpError("GenericError", f"Duplicate device ID '{ident}' for device")
        if "netdev" in args and args["netdev"] not in self.netdevs:
            raise QmpError("GenericError", f"Property 'netdev' can't find value '{args['netdev']}'")
        if "drive" in args and args["drive"] not in self.nodes:
            raise QmpError("GenericError", f"Cannot find device='' nor node-name='{args['drive']}'")
        if args.get("bus") == "pci.0":
            self.slots[int(args["addr"], 16)] = ident
        self.devices.add(ident)
        return {}

    def device_del(self, args: dict[str, Any]) -> Any:
        ident = args["id"]
        if ident not in self.devices:
            raise QmpError("DeviceNotFound", f"Device '{ident}' not found")
        self.devices.discard(ident)
        self.slots = {s: q for s, q in self.slots.items() if q != ident}
        self._qmp.event("DEVICE_DELETED", {"device": ident, "path": f"/machine/peripheral/{ident}"})
        return {}

    def netdev_add(self, args: dict[str, Any]) -> Any:
        if args["id"] in self.netdevs:
            raise QmpError("GenericError", f"Duplicate ID '{args['id']}' for netdev")
        self.netdevs.add(args["id"])
        return {}

    def netdev_del(self, args: dict[str, Any]) -> Any:
        if args["id"] not in self.netdevs:
            raise QmpError("GenericError", f"Netdev '{args['id']}' not found")
        self.netdevs.discard(args["id"])
        return {}

    def blockdev_add(self, args: dict[str, Any]) -> Any:
        name = args["node-name"]
        if name in self.nodes:
            raise QmpError("GenericError", f"Duplicate nodes with node-name='{name}'")
        self.nodes.append(name)
        return {}

    def blockdev_del(self, args: dict[str, Any]) -> Any:
        self.nodes.remove(args["node-name"])
        return {}

    def query_nodes(self, args: dict[str, Any]) -> Any:
        return [
            {"node-name": n, "drv": "raw", "image": {"virtual-size": 1 << 20}} for n in self.nodes
        ]

    def set_balloon(self, args: dict[str, Any]) -> Any:
        self.balloon = int(args["value"])
        return {}


@dataclass
class Guest:
    """A fake running domain: its manager, name, run dir, QMP server and QEMU model."""

    mgr: DomainManager
    name: str
    run_dir: Path
    qmp: FakeQmp
    machine: FakeMachine

    def live(self) -> Domain:
        """The live definition as the service left it."""
        return Domain.from_xml((self.run_dir / "domain.xml").read_bytes())


def _start(sock_dir: Path, xml: str) -> Guest:
    paths = StatePaths.from_root(sock_dir / "s")
    mgr = DomainManager(paths)
    mgr.store.write(NAME, xml)
    run_dir = paths.domain_run_dir(NAME)
    run_dir.mkdir(parents=True)
    (run_dir / "domain.xml").write_text(xml)
    qmp = FakeQmp(run_dir / "qmp.sock").start()
    machine = FakeMachine()
    machine.install(qmp)
    RuntimeRecord(
        name=NAME,
        uuid=UUID,
        pid=os.getpid(),  # alive for as long as the test runs
        starttime=None,
        qmp_socket=str(run_dir / "qmp.sock"),
        events_socket=str(run_dir / "events.sock"),
        log_path=str(sock_dir / "qemu.log"),
        argv=[],
    ).save(run_dir)
    return Guest(mgr, NAME, run_dir, qmp, machine)


@pytest.fixture
def guest(sock_dir: Path) -> Iterator[Guest]:
    """Domain ``hp`` defined and "running" on a fake QMP server."""
    g = _start(sock_dir, GUEST_XML)
    try:
        yield g
    finally:
        g.qmp.stop()


@pytest.fixture
def agent_guest(sock_dir: Path) -> Iterator[tuple[Guest, FakeQmp]]:
    """Domain ``hp`` "running" with a guest agent channel served by a fake agent."""
    path = sock_dir / "s" / "run" / "qemu" / NAME / "ga.sock"
    channel = (
        f"<channel type='unix'><source mode='bind' path='{path}'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
    )
    g = _start(sock_dir, GUEST_XML.replace("<memballoon", channel + "\n    <memballoon"))
    agent = FakeQmp(path, agent=True).start()
    try:
        yield g, agent
    finally:
        agent.stop()
        g.qmp.stop()
