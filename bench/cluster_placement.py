"""Placement with 100 hosts in etcd (issue 16: a decision in ≤ 50 ms).

Starts one etcd member on loopback, writes a cluster of ``--hosts`` simulated hosts
(registrations and leased liveness records with random free memory and load) and a cluster
domain, then times the placement decision as pyvirt makes it — the domain's record, the host
list (two range reads) and the scoring — against the floor: the same two range reads with
nothing decoded. Then the same for a domain that brings every rule into play (a network, a
pool volume, guest NUMA cells, an anti-affinity group): each host also publishes an inventory
(networks, pools, two NUMA nodes) and ``--domains`` more cluster domains (half of them owned,
in ten anti-affinity groups) exist — three more range reads (the group's members, the
owners, the inventories) and the domain's XML parsed.
Medians of ``--runs``.

    .venv/bin/python bench/cluster_placement.py [--hosts 100] [--runs 51]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from pyvirt.drivers.etcd import Etcd
from pyvirt.service.cluster import keys
from pyvirt.service.cluster.domains import ClusterDomain, get
from pyvirt.service.cluster.membership import ClusterRecord, list_hosts
from pyvirt.service.cluster.placement import place, place_domain
from pyvirt.service.cluster.records import HostRecord, Liveness
from pyvirt.service.cluster.rules import Inventory
from pyvirt.service.tuning.advisor import HostShape


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_etcd(data: Path) -> tuple[subprocess.Popen[bytes], str]:
    client, peer = free_port(), free_port()
    url = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        ["etcd", "--name", "b0", "--data-dir", str(data), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"b0=http://127.0.0.1:{peer}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as r:
                if b"true" in r.read():
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("etcd did not start")


def populate(etcd: Etcd, hosts: int) -> None:
    rng = random.Random(16)
    etcd.put(keys.CLUSTER, ClusterRecord("bench", time.time()).encode())
    lease = etcd.lease_grant(300)
    flags = tuple(f"flag{i}" for i in range(120))  # a real host lists ~120 CPU flags
    for i in range(hosts):
        name = f"host{i:03d}"
        memory = rng.choice((64, 128, 256)) * 1024 * 1024
        record = HostRecord(name, name, f"pyvirt+tls://{name}/", 0.0, "1", "x86_64",
                            "cpu", flags, rng.choice((16, 32, 64)), memory, 2)  # fmt: skip
        etcd.put(keys.host(name), record.encode())
        live = Liveness(lease, time.time(), 1, free_kib=int(memory * rng.random()),
                        load=rng.random() * 8)  # fmt: skip
        etcd.put(keys.alive(name), live.encode(), lease=lease)
    dom = ClusterDomain("vm1", "6f1b7c1e-3a1d-4c55-9d2e-0c1c0c1c0c11", "<domain/>", True,
                        4 * 1024 * 1024, 2, time.time())  # fmt: skip
    etcd.put(keys.domain("vm1"), dom.encode())


RULED = """<domain type='kvm'><name>vm2</name><memory unit='GiB'>4</memory><vcpu>4</vcpu>
<cpu><numa><cell id='0' cpus='0-1' memory='2' unit='GiB'/>
<cell id='1' cpus='2-3' memory='2' unit='GiB'/></numa></cpu>
<os><type arch='x86_64' machine='pc'>hvm</type></os><devices>
<disk type='volume' device='disk'><source pool='shared' volume='vm2.qcow2'/>
<target dev='vda'/></disk>
<interface type='network'><source network='cnet'/></interface></devices></domain>"""


def populate_rules(etcd: Etcd, hosts: int, domains: int) -> None:
    """Inventories for every host and *domains* cluster domains, half of them owned."""
    rng = random.Random(17)
    lease = etcd.lease_grant(300)
    for i in range(hosts):
        name = f"host{i:03d}"
        nets = ("default", "cnet") if i % 10 else ("default",)  # every 10th lacks cnet
        shape = HostShape.uniform(2, rng.choice((8, 16)), rng.choice((64, 128)) * 1024 * 1024)
        inv = Inventory(nets, ("shared", "images"), shape, {"network:cnet": ("web1", "web2")})
        etcd.put(keys.inventory(name), json.dumps(inv.to_json()), lease=lease)
    for i in range(domains):
        name = f"d{i:04d}"
        dom = ClusterDomain(name, f"00000000-0000-4000-8000-{i:012d}", RULED.replace("vm2", name),
                            False, 1024 * 1024, 1, time.time(),
                            anti_affinity=f"g{i % 10}")  # fmt: skip
        etcd.put(keys.domain(name), dom.encode())
        etcd.put(keys.group_member("anti-affinity", f"g{i % 10}", name), "")
        if i % 2:
            owner = json.dumps({"host": f"host{rng.randrange(hosts):03d}", "since": 0.0})
            etcd.put(keys.owner(name), owner, lease=lease)
    dom = ClusterDomain("vm2", "6f1b7c1e-3a1d-4c55-9d2e-0c1c0c1c0c12", RULED, True,
                        4 * 1024 * 1024, 4, time.time(), anti_affinity="g3")  # fmt: skip
    etcd.put(keys.domain("vm2"), dom.encode())
    etcd.put(keys.group_member("anti-affinity", "g3", "vm2"), "")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hosts", type=int, default=100)
    ap.add_argument("--runs", type=int, default=51)
    ap.add_argument("--domains", type=int, default=200)
    args = ap.parse_args()
    if shutil.which("etcd") is None:
        raise SystemExit("etcd is not installed (Debian's etcd-server)")
    tmp = Path(tempfile.mkdtemp(prefix="pvbc", dir="/tmp"))
    proc, url = start_etcd(tmp / "data")
    try:
        etcd = Etcd([url])
        populate(etcd, args.hosts)
        populate_rules(etcd, args.hosts, args.domains)
        decide, floor, ruled, ruled_floor = [], [], [], []
        for _ in range(args.runs):  # interleaved: plain, its floor, with rules, its floor
            t0 = time.perf_counter()
            record = get(etcd, "vm1")
            chosen = place(list_hosts(etcd), record.memory_kib)
            t1 = time.perf_counter()
            etcd.get(keys.domain("vm1"))
            etcd.get_prefix(keys.HOSTS)
            etcd.get_prefix(keys.ALIVE)
            t2 = time.perf_counter()
            decide.append((t1 - t0) * 1000)
            floor.append((t2 - t1) * 1000)
            t0 = time.perf_counter()
            ruled_choice = place_domain(etcd, get(etcd, "vm2"))
            t1 = time.perf_counter()
            etcd.get(keys.domain("vm2"))
            group = keys.group("anti-affinity", "g3")
            for prefix in (group, keys.OWNERS, keys.INVENTORY, keys.HOSTS, keys.ALIVE):
                etcd.get_prefix(prefix)
            t2 = time.perf_counter()
            ruled.append((t1 - t0) * 1000)
            ruled_floor.append((t2 - t1) * 1000)
        d, f = statistics.median(decide), statistics.median(floor)
        print(f"hosts: {args.hosts}, runs: {args.runs}, chosen: {chosen.host}")
        print(f"placement decision (reads + decode + score): median {d:.1f} ms, "
              f"max {max(decide):.1f} ms (target <= 50 ms)")  # fmt: skip
        print(f"floor (the same three range reads, raw):    median {f:.1f} ms")
        print(f"ratio decision / floor: {d / f:.2f}x")
        r, rf = statistics.median(ruled), statistics.median(ruled_floor)
        refused = sum(1 for c in ruled_choice.candidates if not c.fits)
        print(f"with every rule ({args.domains} domains, inventories): chosen "
              f"{ruled_choice.host}, {refused} hosts refused")  # fmt: skip
        print(f"placement decision with rules: median {r:.1f} ms, max {max(ruled):.1f} ms "
              "(target <= 50 ms)")  # fmt: skip
        print(f"floor (the same six range reads, raw): median {rf:.1f} ms")
        print(f"ratio decision / floor: {r / rf:.2f}x")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
