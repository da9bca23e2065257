"""What a migration's destination checks before anything moves, and the tuning it re-applies.

- Two pyvirtd in two network namespaces (the fixtures of ``test_migrate_hosts``): B's daemon
  plays a host with an older CPU (``PYVIRT_TEST_CPU_LACKS``, the documented test knob) and
  has no network of the guest's, then has it inactive: each migration is refused with the
  reason (the missing CPU features named), the guest runs on at A, B has no QEMU.
- Two state directories on this machine: a guest with pinned vCPU and emulator threads and
  a custom CPU model moves, and the destination's QEMU threads have the pinning; a pinning to
  a CPU the destination lacks, and more memory than it has, are refused before transfer.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

import pyvirt.api as pyvirt_api
from pyvirt.errors import PyvirtError
from tests.conftest import Pyvirt
from tests.daemonhelp import free_port, pyvirtd
from tests.integration.nethelp import NsPyvirt
from tests.integration.test_lifecycle import domain_xml, state, wait_marker
from tests.integration.test_migrate import _qemu_dirs, _uri, other  # noqa: F401  (fixture)
from tests.integration.test_migrate_hosts import ADDR_B, _token, hosts, roots  # noqa: F401
from tests.integration.test_tuning import allowed

pytestmark = pytest.mark.qemu

CPU = "<cpu mode='custom' match='exact'><model fallback='forbid'>qemu64</model></cpu>"
NET = "<interface type='network'><source network='lan'/><model type='virtio'/></interface>"


def _net(pv: Pyvirt, *, start: bool) -> None:
    """An isolated network 'lan' (a bridge, no DHCP)."""
    path = pv.root / "lan.xml"
    path.write_text("<network><name>lan</name><bridge name='pvlan0'/></network>")
    pv("net-define", str(path))
    if start:
        pv("net-start", "lan")


def _pid(root: Path, name: str = "t1") -> int:
    return int(json.loads((root / "run" / "qemu" / name / "runtime.json").read_text())["pid"])


def test_destination_refuses_cpu_and_network_before_transfer(
    hosts: tuple[str, str],  # noqa: F811
    roots: tuple[Path, Path],  # noqa: F811
    tiny_image: Any,
) -> None:
    ns_a, ns_b = hosts
    root_a, root_b = roots
    port = free_port()
    lacks = {"PYVIRT_TEST_CPU_LACKS": "sse2,cx16"}
    with (
        pyvirtd(root_a, netns=ns_a),
        pyvirtd(root_b, netns=ns_b, env=lacks, args=("--listen-tcp", f"{ADDR_B}:{port}")) as db,
    ):
        a = NsPyvirt(root_a, ns_a)
        b = Pyvirt(root_b)
        _net(a, start=True)
        xml = domain_xml(tiny_image, extra_devices=NET).replace("</domain>", f"{CPU}</domain>")
        (root_a / "t1.xml").write_text(xml)
        a("define", str(root_a / "t1.xml"))
        a("start", "t1")
        wait_marker(a, "t1")
        a.env["PYVIRT_TOKEN"] = _token(db)
        dest = f"pyvirt+tls://{ADDR_B}:{port}/?ca={db.cert}"
        # B's CPU (as the knob plays it) lacks features of qemu64: refused, naming them
        res = a("migrate", "--live", "t1", dest, check=False)
        assert res.rc == 1
        first = res.err.splitlines()[0]
        assert first.startswith("error: the CPU QEMU emulates on the destination cannot run"), first
        assert "(model qemu64); missing features: cx16, sse2" in first
        assert "cpu-baseline" in res.err
        assert state(a, "t1") == "running (booted)"
        assert not (root_b / "run" / "qemu" / "t1").exists()
        # B lacks the network (the XML for B without the CPU model): refused, nothing moved
        plain = root_a / "plain.xml"
        plain.write_text(re.sub(r"<cpu .*?</cpu>", "", a("dumpxml", "t1").out, flags=re.S))
        res = a("migrate", "--live", "--xml", str(plain), "t1", dest, check=False)
        assert res.rc == 1
        assert "network 'lan'" in res.err.splitlines()[0], res.err
        assert state(a, "t1") == "running (booted)"
        assert not (root_b / "run" / "qemu" / "t1").exists()
        # B has it but inactive: refused too
        _net(b, start=False)
        res = a("migrate", "--live", "--xml", str(plain), "t1", dest, check=False)
        assert res.rc == 1
        assert "network 'lan'" in res.err.splitlines()[0] and "active" in res.err, res.err
        assert state(a, "t1") == "running (booted)"
        assert not (root_b / "run" / "qemu" / "t1").exists()
        assert "t1" not in b("list", "--all", "--name").out.split()


TUNED = "<cputune><vcpupin vcpu='0' cpuset='1'/><emulatorpin cpuset='0'/></cputune>" + CPU


def test_pinning_survives_the_move_or_is_refused(
    pyvirt: Pyvirt,
    other: Pyvirt,  # noqa: F811
    tiny_image: Any,
) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("pinning to CPU 1 needs two CPUs")
    path = pyvirt.root / "t1.xml"
    path.write_text(domain_xml(tiny_image).replace("</domain>", f"{TUNED}</domain>"))
    pyvirt("define", str(path))
    pyvirt("start", "t1")
    wait_marker(pyvirt, "t1")
    src = pyvirt_api.open(_uri(pyvirt)).domains.get("t1")
    dest = pyvirt_api.open(_uri(other))
    live = src.xml_desc()
    # a pinning to a CPU the destination does not have: refused, the reason given
    with pytest.raises(PyvirtError) as err:
        src.migrate(dest, xml=live.replace("cpuset='1'", "cpuset='63'"))
    assert "63" in str(err.value)
    # more memory than the destination has
    big = re.sub(r"<memory[^>]*>\d+</memory>", "<memory unit='TiB'>1</memory>", live)
    big = re.sub(r"<currentMemory[^>]*>\d+</currentMemory>", "", big)
    assert big != live
    with pytest.raises(PyvirtError) as err:
        src.migrate(dest, xml=big)
    assert "the destination has" in str(err.value) and "needs 1048576 MiB" in str(err.value)
    assert _qemu_dirs(other) == [] and state(pyvirt, "t1") == "running (booted)"
    # the move: the destination's QEMU threads are pinned as the XML says
    warned: list[str] = []
    src.migrate(dest, on_warning=warned.append)
    assert warned == []  # a custom CPU model the destination can run: nothing to say
    assert state(other, "t1") == "running (migrated)"
    pid = _pid(other.root)
    info = json.loads(other("vcpuinfo", "t1", "--json").out)
    assert allowed(pid, info[0]["thread"]) == "1"
    assert allowed(pid, pid) == "0"  # the emulator (main) thread
