"""The seed's four traffic scenarios, built with pyvirt networks inside network namespaces.

====  =========================================  ==============================================
 #    scenario                                   how it is built
====  =========================================  ==============================================
 1    same host, same subnet                     host A: one isolated network, both guests on it
 2    same host, different subnets               host A: two ``route`` networks; A routes
 3    different hosts, same subnet               A and B: a host bridge with a VXLAN port over
                                                 the A-B veth (an L2 stretch) and a
                                                 ``<forward mode='bridge'>`` network on it
 4    different hosts, different subnets         A and B: a ``route`` network each, routed
                                                 over the A-B veth
====  =========================================  ==============================================

Guests are the ``tiny-net`` image with static addresses; the server guest runs ``iperf3 -s -1``,
the client guest ``iperf3 -c`` (both via ``pyvirt.run``). The physical baseline is iperf3
between the two namespaces over the same veth.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.errors import OperationFailedError
from pyvirt.images.tiny import RUN_BEGIN, RUN_END, TinyImage, run_argument
from pyvirt.netbench.hosts import SimHost, host_bridge, run, veth_link, vxlan_port

#: the seed's measured figures (GB/s in its table, 10 GbE hosts), for the comparison column
SEED_GBPS = {1: 7.6, 2: 5.6, 3: 6.5, 4: 4.6}
TITLES = {
    1: "same host, same subnet",
    2: "same host, different subnets",
    3: "different hosts, same subnet",
    4: "different hosts, different subnets",
}
TRANSIT_A, TRANSIT_B = "10.255.0.1", "10.255.0.2"
_RATE_RE = re.compile(r"([\d.]+)\s+([KMG])bits/sec\s.*receiver")


@dataclass
class Guest:
    """A guest of a scenario: where it runs, its network, address and gateway."""

    name: str
    host: str  # "a" or "b"
    network: str
    address: str  # 10.10.1.11/24
    gateway: str | None = None

    @property
    def ip(self) -> str:
        """The address without prefix."""
        return self.address.split("/")[0]


@dataclass
class Scenario:
    """One scenario: its networks per host and its two guests (server first)."""

    number: int
    networks: dict[str, list[str]]  # host -> network XML documents
    server: Guest
    client: Guest
    needs_b: bool = False
    prepare: Callable[[SimHost, SimHost | None], None] | None = None
    names: dict[str, list[str]] = field(default_factory=dict)


def _net(name: str, bridge: str, ip: str | None = None, mode: str | None = None) -> str:
    forward = f"<forward mode='{mode}'/>" if mode else ""
    addr = f"<ip address='{ip}' prefix='24'/>" if ip else ""
    return f"<network><name>{name}</name>{forward}<bridge name='{bridge}'/>{addr}</network>"


def _stretch(a: SimHost, b: SimHost | None) -> None:
    assert b is not None
    for host, local, remote in ((a, TRANSIT_A, TRANSIT_B), (b, TRANSIT_B, TRANSIT_A)):
        host_bridge(host, "pvbr0")
        vxlan_port(
            host, "pvvx0", vni=42, local=local, remote=remote, dev=_veth(host), bridge="pvbr0"
        )


def _routes(a: SimHost, b: SimHost | None) -> None:
    assert b is not None
    a.ip("route", "add", "10.10.5.0/24", "via", TRANSIT_B)
    b.ip("route", "add", "10.10.4.0/24", "via", TRANSIT_A)
    for host in (a, b):
        host.exec("sysctl", "-qw", "net.ipv4.ip_forward=1")


def _veth(host: SimHost) -> str:
    return "pvlinka" if host.ns.endswith("a") else "pvlinkb"


def scenarios() -> dict[int, Scenario]:
    """The four scenarios."""
    return {
        1: Scenario(1, {"a": [_net("s1", "pvb1", "10.10.1.1")]},
                    Guest("s1srv", "a", "s1", "10.10.1.11/24"),
                    Guest("s1cli", "a", "s1", "10.10.1.12/24")),
        2: Scenario(2, {"a": [_net("s2a", "pvb2a", "10.10.2.1", "route"),
                              _net("s2b", "pvb2b", "10.10.3.1", "route")]},
                    Guest("s2srv", "a", "s2a", "10.10.2.11/24", "10.10.2.1"),
                    Guest("s2cli", "a", "s2b", "10.10.3.12/24", "10.10.3.1")),
        3: Scenario(3, {"a": [_net("s3", "pvbr0", mode="bridge")],
                        "b": [_net("s3", "pvbr0", mode="bridge")]},
                    Guest("s3srv", "a", "s3", "10.10.6.11/24"),
                    Guest("s3cli", "b", "s3", "10.10.6.12/24"), needs_b=True, prepare=_stretch),
        4: Scenario(4, {"a": [_net("s4", "pvb4", "10.10.4.1", "route")],
                        "b": [_net("s4", "pvb4", "10.10.5.1", "route")]},
                    Guest("s4srv", "a", "s4", "10.10.4.11/24", "10.10.4.1"),
                    Guest("s4cli", "b", "s4", "10.10.5.12/24", "10.10.5.1"), needs_b=True,
                    prepare=_routes),
    }  # fmt: skip


def _net_setup(g: Guest) -> str:
    lines = ["ip link set eth0 up", f"ip addr add {g.address} dev eth0"]
    if g.gateway:
        lines.append(f"ip route add default via {g.gateway}")
    return "; ".join(lines)


def server_script(g: Guest) -> str:
    """Shell run in the server guest."""
    return f"{_net_setup(g)}; iperf3 -s -1 >/dev/null 2>&1; echo served"


def client_script(g: Guest, server: str, seconds: int) -> str:
    """Shell run in the client guest: wait for the server, then measure."""
    return (
        f"{_net_setup(g)}; n=0; until ping -c1 -W1 {server} >/dev/null 2>&1; do "
        "n=$((n+1)); [ $n -gt 90 ] && exit 2; done; "
        f"for t in 1 2 3 4 5 6 7 8 9 10; do iperf3 -c {server} -t {seconds} -f m && exit 0; "
        "sleep 1; done; exit 1"
    )


def domain_xml(name: str, image: TinyImage, network: str, mac: str, script: str) -> str:
    """A tiny-net guest with one virtio NIC on ``network`` running ``script``."""
    return f"""<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{image.kernel}</kernel>
    <initrd>{image.initrd}</initrd>
    <cmdline>console=ttyS0 quiet panic=-1 {run_argument(script)}</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <interface type='network'>
      <mac address='{mac}'/>
      <source network='{network}'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
"""


def run_output(log: Path) -> tuple[int, str] | None:
    """``(rc, output)`` of the ``pyvirt.run`` command once it finished, else ``None``."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        return None
    end = re.search(RUN_END + r" rc=(\d+)", text)
    if end is None or RUN_BEGIN not in text:
        return None
    body = text[text.index(RUN_BEGIN) + len(RUN_BEGIN) : end.start()]
    return int(end.group(1)), body


def parse_mbits(output: str) -> float:
    """The receiver throughput of an ``iperf3 -f m`` run in Mbit/s.

    :raises OperationFailedError: no receiver line
    """
    found = _RATE_RE.findall(output)
    if not found:
        raise OperationFailedError(f"no iperf3 receiver summary in: {output.strip()[-300:]}")
    value, unit = found[-1]
    return float(value) * {"K": 0.001, "M": 1.0, "G": 1000.0}[unit]


@dataclass
class Result:
    """Throughput of one scenario (Mbit/s) and the ping round trip between the guests."""

    number: int
    mbits: float
    seconds: float


class Bench:
    """Runs scenarios in fresh namespaces; ``tag`` keeps names unique per run."""

    def __init__(self, image: TinyImage, *, seconds: int = 3, timeout: float = 150.0) -> None:
        self.image = image
        self.seconds = seconds
        self.timeout = timeout
        self.tag = f"{os.getpid() % 100000}"
        self.workdir = Path(tempfile.mkdtemp(prefix="pvnb", dir="/tmp"))

    def _hosts(self, with_b: bool) -> tuple[SimHost, SimHost | None]:
        a = SimHost(f"pvnb{self.tag}a", self.workdir / "a")
        b = SimHost(f"pvnb{self.tag}b", self.workdir / "b") if with_b else None
        a.create()
        if b is not None:
            b.create()
            veth_link(a, b, "pvlink")
            a.ip("addr", "add", f"{TRANSIT_A}/24", "dev", "pvlinka")
            b.ip("addr", "add", f"{TRANSIT_B}/24", "dev", "pvlinkb")
        return a, b

    def baseline(self) -> float:
        """iperf3 between the two namespaces over the veth (the physical link)."""
        a, b = self._hosts(True)
        assert b is not None
        try:
            server = a.popen("iperf3", "-s", "-1", "-B", TRANSIT_A)
            out = ""
            for _ in range(20):
                out = b.exec("iperf3", "-c", TRANSIT_A, "-t", str(self.seconds), "-f", "m",
                             check=False, timeout=self.seconds + 30)  # fmt: skip
                if "receiver" in out:
                    break
                time.sleep(0.1)
            server.wait(timeout=10)
            return parse_mbits(out)
        finally:
            b.destroy([], [])
            a.destroy([], [])

    def run(self, sc: Scenario) -> Result:
        """Build scenario ``sc``, measure, tear it all down."""
        a, b = self._hosts(sc.needs_b)
        hosts = {"a": a, "b": b}
        started: dict[str, list[str]] = {"a": [], "b": []}
        nets: dict[str, list[str]] = {"a": [], "b": []}
        t0 = time.monotonic()
        try:
            if sc.prepare is not None:
                sc.prepare(a, b)
            for key, docs in sc.networks.items():
                host = hosts[key]
                assert host is not None
                for i, doc in enumerate(docs):
                    path = host.root / f"net{i}.xml"
                    path.write_text(doc)
                    name = re.search(r"<name>(.*?)</name>", doc).group(1)  # type: ignore[union-attr]
                    host.pyvirt("net-define", str(path))
                    host.pyvirt("net-start", name)
                    nets[key].append(name)
            for n, (g, script) in enumerate(
                (
                    (sc.server, server_script(sc.server)),
                    (sc.client, client_script(sc.client, sc.server.ip, self.seconds)),
                )
            ):
                host = hosts[g.host]
                assert host is not None
                path = host.root / f"{g.name}.xml"
                mac = f"52:54:00:be:{sc.number:02x}:{n + 1:02x}"
                path.write_text(domain_xml(g.name, self.image, g.network, mac, script))
                host.pyvirt("create", str(path))
                started[g.host].append(g.name)
            client_host = hosts[sc.client.host]
            assert client_host is not None
            done = _wait(client_host.console_log(sc.client.name), self.timeout)
            rc, output = done
            if rc != 0:
                raise OperationFailedError(
                    f"scenario {sc.number}: the client guest failed (rc={rc}): "
                    f"{output.strip()[-400:]}"
                )
            return Result(sc.number, parse_mbits(output), time.monotonic() - t0)
        finally:
            for key in ("b", "a"):
                host = hosts[key]
                if host is not None:
                    host.destroy(started[key], nets[key])


def _wait(log: Path, timeout: float) -> tuple[int, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = run_output(log)
        if done is not None:
            return done
        time.sleep(0.2)
    raise OperationFailedError(f"timed out after {timeout:.0f} s waiting for {log}")


def leftovers(tag: str) -> list[str]:
    """Namespaces of a bench run that still exist (should be none after teardown)."""
    out = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in out.splitlines() if line.startswith(f"pvnb{tag}")]
