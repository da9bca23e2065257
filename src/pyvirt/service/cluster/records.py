"""What a host publishes about itself in etcd: its registration and its liveness record."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyvirt
from pyvirt.host.cpu import read_host_cpu
from pyvirt.host.memory import host_memstats, read_meminfo
from pyvirt.host.numa import node_ids

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection


@dataclass(frozen=True)
class HostRecord:
    """A member's registration (``/pyvirt/hosts/NAME``): who it is and what it can run.

    :ivar name: the host's name in the cluster
    :ivar host_id: identifies the machine and state directory that registered the name, so the
        same host can re-register after an unclean exit and another one cannot take its name
    :ivar address: its pyvirtd's URI for other hosts (``pyvirt+tls://HOST:PORT/``), or empty
    :ivar joined: when it joined (seconds since the epoch)
    :ivar version: pyvirt's version on the host
    :ivar arch: CPU architecture
    :ivar cpu_model: the CPU's model name
    :ivar cpu_flags: the CPU's feature flags (sorted; for CPU model checks before placement)
    :ivar cpus: online CPUs
    :ivar memory_kib: total memory
    :ivar numa_cells: NUMA nodes
    :ivar networks: active virtual networks
    :ivar pools: active storage pools
    :ivar tls_fingerprint: hex SHA-256 of its pyvirtd's TLS certificate (other hosts pin it
        when they call its ``pyvirt+tls`` address), or empty
    :ivar peer_sha256: hex SHA-256 of its peer secret (:mod:`.peers`), or empty
    """

    name: str
    host_id: str
    address: str
    joined: float
    version: str
    arch: str
    cpu_model: str
    cpu_flags: tuple[str, ...]
    cpus: int
    memory_kib: int
    numa_cells: int
    networks: tuple[str, ...] = ()
    pools: tuple[str, ...] = ()
    tls_fingerprint: str = ""
    peer_sha256: str = ""

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = asdict(self)
        for key in ("cpu_flags", "networks", "pools"):
            out[key] = list(out[key])
        return out

    def encode(self) -> str:
        """The value stored in etcd."""
        return json.dumps(self.to_json(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str) -> HostRecord:
        """The record stored in *value* (unknown fields of newer versions are ignored)."""
        data = json.loads(value)
        known = {f for f in cls.__dataclass_fields__}
        data = {k: v for k, v in data.items() if k in known}
        for key in ("cpu_flags", "networks", "pools"):
            data[key] = tuple(data.get(key) or ())
        return cls(**data)


@dataclass(frozen=True)
class Liveness:
    """A live host's ``/pyvirt/alive/NAME`` value, bound to its lease.

    :ivar lease: the etcd lease id
    :ivar since: when this lease was granted (seconds since the epoch)
    :ivar pid: pyvirtd's process id
    :ivar free_kib: free memory (MemAvailable) at the last update
    :ivar load: 1-minute load average at the last update
    :ivar updated: when the figures were taken
    """

    lease: int
    since: float
    pid: int
    free_kib: int = 0
    load: float = 0.0
    updated: float = field(default_factory=time.time)

    def encode(self) -> str:
        """The value stored in etcd."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def decode(cls, value: str) -> Liveness:
        """The record stored in *value*."""
        data = json.loads(value)
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def host_id(conn: Connection) -> str:
    """This machine's id (``/etc/machine-id``) and state directory, as one string."""
    try:
        machine = Path("/etc/machine-id").read_text().strip()
    except OSError:
        machine = os.uname().nodename
    return f"{machine}:{conn.paths.config}"


def describe_host(conn: Connection, name: str, address: str, joined: float) -> HostRecord:
    """This host's registration, from its CPU, memory, NUMA nodes, networks and pools."""
    root = conn.host.host_root
    cpu = read_host_cpu(root)
    networks = tuple(n.name for n in conn.networks.list(active=True))
    pools = tuple(p.name for p in conn.pools.list() if p.state == "running")
    return HostRecord(
        name=name,
        host_id=host_id(conn),
        address=address,
        joined=joined,
        version=pyvirt.__version__,
        arch=cpu.arch,
        cpu_model=cpu.model_name or "",
        cpu_flags=tuple(sorted(cpu.flags)),
        cpus=cpu.count,
        memory_kib=host_memstats(root).total,
        numa_cells=max(1, len(node_ids(root))),
        networks=networks,
        pools=pools,
    )


def current_load(root: Path = Path("/")) -> tuple[int, float]:
    """(MemAvailable in KiB, 1-minute load average) of the host now."""
    info = read_meminfo(root)
    free = info.get("MemAvailable", info.get("MemFree", 0))
    try:
        load = float((root / "proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        load = 0.0
    return free, load
