"""The seed's network scenarios 1 and 3 through ``pyvirt bench net`` (real guests, namespaces)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pyvirt.images import net as net_image
from pyvirt.images.tiny import TinyImage
from pyvirt.netbench.scenarios import parse_mbits, run_output
from tests.integration.conftest import _test_cache_dir

pytestmark = [pytest.mark.qemu, pytest.mark.root]


@pytest.fixture(scope="module")
def tiny_net(tiny_image: TinyImage) -> TinyImage:
    if os.geteuid() != 0 or shutil.which("iperf3") is None:
        pytest.skip("needs root (network namespaces) and iperf3 (Debian package iperf3)")
    return net_image.default_image(_test_cache_dir(), base=tiny_image)


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.startswith("pvnb")}


def test_tiny_net_keeps_tiny_recipe(tiny_net: TinyImage, tiny_image: TinyImage) -> None:
    from pyvirt.images import tiny

    base = tiny_image.initrd.read_bytes()
    assert tiny_net.initrd.read_bytes()[: len(base)] == base  # the overlay is appended
    assert tiny_net.initrd.stat().st_size > len(base) + 100_000
    assert tiny_image.directory.name.endswith(tiny.recipe_hash())
    assert tiny_net.directory.name.startswith(tiny_image.directory.name)


def test_scenarios_1_and_3(tiny_net: TinyImage) -> None:
    before = _namespaces()
    tmp_before = {p.name for p in Path("/tmp").glob("pvnb*")}
    proc = subprocess.run(
        [sys.executable, "-m", "pyvirt.cli", "bench", "net", "-t", "1", "--scenario", "1",
         "--scenario", "3", "--json", "--cache-dir", str(_test_cache_dir())],
        capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    rows = {r["scenario"]: r for r in report["scenarios"]}
    assert set(rows) == {1, 3}
    # the client pings the server before iperf3 (rc 0 needs both), so a rate means both worked
    assert rows[1]["mbits"] > 1 and rows[3]["mbits"] > 1
    assert report["baseline_mbits"] > rows[1]["mbits"]
    assert 0 < rows[3]["vs_host_link"] < 1
    assert _namespaces() == before  # everything torn down
    assert {p.name for p in Path("/tmp").glob("pvnb*")} == tmp_before


def test_parse_helpers(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("boot\nPYVIRT-RUN-BEGIN\n[  5]   0.00-1.00  sec  60.0 MBytes   503 Mbits/sec"
                   "                  receiver\nPYVIRT-RUN-END rc=0\n")  # fmt: skip
    done = run_output(log)
    assert done is not None and done[0] == 0 and parse_mbits(done[1]) == 503.0
    log.write_text("PYVIRT-RUN-BEGIN\n")
    assert run_output(log) is None
