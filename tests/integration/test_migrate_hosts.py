"""Live migration between two "hosts": network namespaces joined by a veth pair, each with
its own pyvirtd and state directory. The CLI runs on host A and talks to A's daemon over its
unix socket and to B's over TLS with B's token; the migration stream goes from A's QEMU to
the port B's QEMU listens on (B's veth address). The guest continues on B (its shell state
survives, no second boot), A has no QEMU left, the definition moved."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Pyvirt, kill_leftovers
from tests.daemonhelp import RunningDaemon, free_port, pyvirtd
from tests.integration.nethelp import NsPyvirt, netns
from tests.integration.test_daemon_events import event_cli
from tests.integration.test_disks import guest
from tests.integration.test_lifecycle import MARKER, console_log, define, state, wait_marker
from tests.integration.test_save_restore import _disk

pytestmark = pytest.mark.qemu

ADDR_A, ADDR_B = "10.231.7.1", "10.231.7.2"


@pytest.fixture
def hosts() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair (A: 10.231.7.1, B: 10.231.7.2)."""
    with netns() as a, netns() as b:
        veth_a, veth_b = f"{a}a", f"{b}b"
        subprocess.run(["ip", "link", "add", veth_a, "type", "veth", "peer", "name", veth_b],
                       check=True)  # fmt: skip
        for ns, dev, addr in ((a, veth_a, ADDR_A), (b, veth_b, ADDR_B)):
            subprocess.run(["ip", "link", "set", dev, "netns", ns], check=True)
            ip = ["ip", "netns", "exec", ns, "ip"]
            subprocess.run([*ip, "addr", "add", f"{addr}/24", "dev", dev], check=True)
            subprocess.run([*ip, "link", "set", dev, "up"], check=True)
        yield a, b


@pytest.fixture
def roots() -> Iterator[tuple[Path, Path]]:
    made = [Path(tempfile.mkdtemp(prefix=p, dir="/tmp")) for p in ("pvA", "pvB")]
    yield made[0], made[1]
    for root in made:
        kill_leftovers(root)
        shutil.rmtree(root, ignore_errors=True)


def _token(d: RunningDaemon) -> str:
    env = {**os.environ, "PYVIRT_STATE_DIR": str(d.root)}
    out = subprocess.run([*_pyvirt(), "token-create", "migrator"], env=env, capture_output=True,
                         text=True, timeout=60, check=True)  # fmt: skip
    return out.stdout.strip()


def _pyvirt() -> list[str]:
    from tests.conftest import PYVIRT

    return list(PYVIRT)


def test_live_migration_between_daemons_in_namespaces(
    hosts: tuple[str, str], roots: tuple[Path, Path], tiny_image: Any
) -> None:
    ns_a, ns_b = hosts
    root_a, root_b = roots
    port = free_port()
    with (
        pyvirtd(root_a, netns=ns_a) as da,
        pyvirtd(root_b, netns=ns_b, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
    ):
        a = NsPyvirt(root_a, ns_a)
        b = Pyvirt(root_b)  # B's own CLI (its daemon, over the unix socket)
        assert a("uri").out.strip() == "pyvirt:///system"  # its local daemon
        disk = root_a / "d.img"
        disk.write_bytes(b"\0" * (1 << 20))
        define(a, tiny_image, extra_devices=_disk(disk))
        a("start", "t1")
        wait_marker(a, "t1")
        guest(a, "t1", "export KEEP=hosts-$((6*7))")
        a.env["PYVIRT_TOKEN"] = _token(db)
        dest = f"pyvirt+tls://{ADDR_B}:{port}/?ca={db.cert}"
        # each daemon's events, in libvirt's words for a migration
        listeners = [event_cli(pv, "--all", "--loop", "--timeout", "300")
                     for pv in (Pyvirt(root_a), b)]  # fmt: skip
        try:
            # (--migrateuri: B's QEMU listens on the address given, QEMU picking the port)
            out = a("migrate", "--live", "--persistent", "--undefinesource", "--verbose",
                    "--migrateuri", f"tcp://{ADDR_B}", "t1", dest)  # fmt: skip
            assert out.err.endswith("Migration: [100 %]\n")
            (_, events_a), (_, events_b) = listeners
            events_a.wait_for("event 'lifecycle' for domain 't1': Stopped Migrated")
            events_b.wait_for("event 'lifecycle' for domain 't1': Resumed Migrated")
            seen_b = [line.rsplit(": ", 1)[1] for line in events_b.lines if "'t1'" in line]
            assert seen_b.index("Started Migrated") < seen_b.index("Resumed Migrated"), seen_b
            assert not {"Started Booted", "Suspended Paused", "Resumed Unpaused"} & set(seen_b)
            seen_a = [line.rsplit(": ", 1)[1] for line in events_a.lines if "'t1'" in line]
            # the source's switch-over stop, then its end (libvirt's words)
            assert seen_a.index("Suspended Migrated") < seen_a.index("Stopped Migrated"), seen_a
        finally:
            for proc, lines in listeners:
                proc.send_signal(signal.SIGINT)
                lines.finish(20)
        assert state(b, "t1") == "running (migrated)"
        assert guest(b, "t1", "echo $KEEP").strip() == "hosts-42"
        assert MARKER not in console_log(b, "t1").read_text(errors="replace")
        qemu = _pid(root_b)
        assert os.stat(f"/proc/{qemu}/ns/net").st_ino == os.stat(f"/run/netns/{ns_b}").st_ino
        assert a("list", "--all", "--name").out.strip() == ""
        assert not (root_a / "run" / "qemu" / "t1").exists()
        # the job ran in A's daemon and is on record there
        jobs = da.get("/api/v1/jobs")
        assert any(j["kind"] == "domain-migrate" and j["state"] == "completed" for j in jobs)
        # back to A, driven from B (B's daemon over its unix socket, A's by its socket path)
        NsPyvirt(root_b, ns_b)("migrate", "--live", "t1", f"pyvirt+unix://{da.sock}")
        assert state(a, "t1") == "running (migrated)"
        assert state(b, "t1") == "shut off (migrated)"
        assert guest(a, "t1", "echo $KEEP").strip() == "hosts-42"
        # what it measured, through B's daemon
        info = b("domjobinfo", "--completed", "t1").out
        assert "Job type:         Completed" in info and "Outgoing migration" in info
        assert re.search(r"Data processed:\s+\d", info) and "Total downtime:" in info
        # a wrong token for B: refused before anything moves
        a.env["PYVIRT_TOKEN"] = "pyvirt_wrong"
        res = a("migrate", "--live", "t1", dest, check=False)
        assert res.rc == 1
        assert res.err.splitlines()[0] == "error: invalid or revoked API token"
        assert state(a, "t1") == "running (migrated)"
        assert not (root_b / "run" / "qemu" / "t1").exists()


def _pid(root: Path) -> int:
    import json

    return int(json.loads((root / "run" / "qemu" / "t1" / "runtime.json").read_text())["pid"])
