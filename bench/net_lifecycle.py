"""Network lifecycle benchmark: net-start / net-destroy of a NAT network, and net-start to a DHCP
lease in a tiny guest. Baseline: the same bridge + address + nft + dnsmasq steps done by a shell
script with ip/nft/dnsmasq, measured in the same run.

Everything runs inside a network namespace this script creates (and deletes).

    python bench/net_lifecycle.py [--rounds N] [--no-guest]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

BASELINE_UP = """set -e
ip link add bvirbr0 type bridge stp_state 1 forward_delay 0
ip addr add 192.168.150.1/24 broadcast 192.168.150.255 dev bvirbr0
ip link set bvirbr0 up
echo 1 > /proc/sys/net/ipv4/ip_forward
nft -f - <<'EOF'
table inet bpyvirt {
  chain forward { type filter hook forward priority 0; policy accept;
    iifname "bvirbr0" oifname "bvirbr0" accept
    iifname "bvirbr0" ip saddr 192.168.150.0/24 accept
    oifname "bvirbr0" ip daddr 192.168.150.0/24 ct state established,related accept
    iifname "bvirbr0" reject
    oifname "bvirbr0" reject
  }
  chain postrouting { type nat hook postrouting priority 100; policy accept;
    ip saddr 192.168.150.0/24 ip daddr != 192.168.150.0/24 masquerade
  }
}
EOF
dnsmasq --conf-file=/dev/null --pid-file=$D/pid --bind-dynamic --interface=bvirbr0 \
  --except-interface=lo --dhcp-range=192.168.150.2,192.168.150.254,255.255.255.0 \
  --dhcp-leasefile=$D/leases --user=root --group=root
"""
BASELINE_DOWN = """kill $(cat $D/pid); nft delete table inet bpyvirt; ip link del bvirbr0"""


def _in_netns() -> None:
    """Re-run this script inside a fresh network namespace."""
    ns = f"pvb{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        env = {**os.environ, "PYVIRT_BENCH_NS": ns}
        rc = subprocess.run(["ip", "netns", "exec", ns, sys.executable, *sys.argv], env=env)
        sys.exit(rc.returncode)
    finally:
        for pid in subprocess.run(
            ["ip", "netns", "pids", ns], capture_output=True, text=True
        ).stdout.split():
            subprocess.run(["kill", "-9", pid], check=False)
        subprocess.run(["ip", "netns", "del", ns], check=False)


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.1f} ms"


def _shell(script: str, d: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(["sh", "-c", script], check=True, env={**os.environ, "D": d})
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-guest", action="store_true")
    args = parser.parse_args()
    if "PYVIRT_BENCH_NS" not in os.environ:
        _in_netns()
    root = Path(tempfile.mkdtemp(prefix="pvb", dir="/tmp"))
    os.environ["PYVIRT_STATE_DIR"] = str(root)
    from pyvirt.service.connection import open_connection

    nets = open_connection().networks
    nets.ensure_default()
    api_up, api_down, cli_up, cli_down, base_up, base_down = [], [], [], [], [], []
    cli = [sys.executable, "-m", "pyvirt.cli"]
    d = tempfile.mkdtemp(prefix="pvbd", dir="/tmp")
    for _ in range(args.rounds):
        t0 = time.perf_counter()
        nets.start("default")
        api_up.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        nets.destroy("default")
        api_down.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([*cli, "net-start", "default"], check=True, capture_output=True)
        cli_up.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        subprocess.run([*cli, "net-destroy", "default"], check=True, capture_output=True)
        cli_down.append(time.perf_counter() - t0)
        base_up.append(_shell(BASELINE_UP, d))
        base_down.append(_shell(BASELINE_DOWN, d))
    print(f"NAT network lifecycle, median of {args.rounds} rounds (in a netns)")
    print(
        f"  net-start   API {_ms(api_up)}   CLI {_ms(cli_up)}   shell baseline {_ms(base_up)}"
        f"   API/baseline {statistics.median(api_up) / statistics.median(base_up):.2f}x"
    )
    print(
        f"  net-destroy API {_ms(api_down)}   CLI {_ms(cli_down)}   shell baseline "
        f"{_ms(base_down)}   API/baseline "
        f"{statistics.median(api_down) / statistics.median(base_down):.2f}x"
    )
    if not args.no_guest:
        _guest_lease(nets, root)


def _guest_lease(nets: object, root: Path) -> None:
    """net-start, then a tiny guest with DHCP: time until its lease is in dnsmasq's file."""
    from pyvirt.images.tiny import default_image
    from pyvirt.service.connection import open_connection

    image = default_image(Path(os.environ.get("PYVIRT_CACHE_DIR",
                                              "/var/cache/pyvirt-test/images/tiny")))  # fmt: skip
    conn = open_connection()
    xml = f"""<domain type='qemu'><name>b1</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<os><type arch='x86_64' machine='pc'>hvm</type><kernel>{image.kernel}</kernel>
<initrd>{image.initrd}</initrd><cmdline>console=ttyS0 quiet pyvirt.dhcp=1</cmdline></os>
<devices><serial type='pty'/><interface type='network'><source network='default'/>
<model type='virtio'/></interface></devices></domain>"""
    conn.domains.define(xml)
    leases = root / "run" / "network" / "default" / "leases"
    t0 = time.perf_counter()
    conn.networks.start("default")
    t_net = time.perf_counter() - t0
    conn.domains.start("b1")
    t_dom = time.perf_counter() - t0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (leases.exists() and leases.read_text().strip()):
        time.sleep(0.02)
    t_lease = time.perf_counter() - t0
    from pyvirt.service.domain import lifecycle

    lifecycle.destroy(conn.domains, "b1")
    conn.domains.status("b1")
    conn.networks.destroy("default")
    print("net-start to DHCP lease in a tiny guest (TCG)")
    print(
        f"  network up {t_net * 1000:.0f} ms, guest launched {t_dom * 1000:.0f} ms, "
        f"lease {t_lease * 1000:.0f} ms after net-start"
    )


if __name__ == "__main__":
    main()
