"""The CLI side of ``cpu-stats``, ``cpu-compare``, ``nodedev-detach`` and ``help`` groups (the
QEMU-backed verbs run for real in tests/integration/test_host_facts.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyvirt.api.host import Host
from pyvirt.api.host_cpu import CpuUsage, CpuVerdict
from pyvirt.cli.help import GROUPS, group_of
from pyvirt.cli.main import COMMANDS, main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def usage(monkeypatch: pytest.MonkeyPatch, state_root: Path) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(state_root))
    fixed = CpuUsage(4_500_000_000, 3_000_000_000, 1_500_000_000, (1_250_000_000, 7), (5, 0),
                     "threads")  # fmt: skip
    monkeypatch.setattr(Host, "cpu_stats", lambda self, domain: fixed)


def test_cpu_stats_prints_like_virsh(usage: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "cpu-stats", "vm1")
    assert code == 0
    assert out == (
        "CPU0:\n"
        "\tcpu_time             1.250000000 seconds\n"
        "\tvcpu_time            0.000000005 seconds\n"
        "CPU1:\n"
        "\tcpu_time             0.000000007 seconds\n"
        "\tvcpu_time            0.000000000 seconds\n"
        "Total:\n"
        "\tcpu_time             4.500000000 seconds\n"
        "\tuser_time            3.000000000 seconds\n"
        "\tsystem_time          1.500000000 seconds\n"
    )


def test_cpu_stats_total_start_and_count(usage: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "cpu-stats", "vm1", "--total")[1].startswith("Total:\n")
    out = run(capsys, "cpu-stats", "vm1", "--start", "1", "--count", "1")[1]
    assert out.startswith("CPU1:\n") and "CPU0" not in out and "Total" not in out
    code, _, err = run(capsys, "cpu-stats", "vm1", "--start", "5")
    assert code == 1 and "error: --start 5 is out of range" in err


@pytest.mark.parametrize(
    ("result", "line", "rc"),
    [
        ("identical", "CPU described in c.xml is identical to host CPU", 0),
        ("superset", "Host CPU is a superset of CPU described in c.xml", 0),
        ("incompatible", "CPU described in c.xml is incompatible with host CPU", 1),
    ],
)
def test_cpu_compare_wording_and_status(
    result: str,
    line: str,
    rc: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    state_root: Path,
) -> None:
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(state_root))
    monkeypatch.chdir(tmp_path)
    Path("c.xml").write_text("<cpu/>")
    verdict = CpuVerdict(result, ("avx",) if rc else (), (), "the host lacks avx" if rc else "")
    monkeypatch.setattr(Host, "cpu_compare", lambda self, xml: verdict)
    assert run(capsys, "cpu-compare", "c.xml") == (rc, line + "\n\n", "")
    if rc:
        code, out, err = run(capsys, "cpu-compare", "--error", "c.xml")
        assert (code, out) == (1, "") and "incompatible with host CPU: the host lacks avx" in err
    code, _, err = run(capsys, "cpu-compare", "missing.xml")
    assert code == 1 and err.startswith("error: cannot read 'missing.xml'")


def test_nodedev_detach_refuses_without_vfio(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    state_root: Path,
) -> None:
    dev = tmp_path / "sys/bus/pci/devices/0000:00:04.0"
    dev.mkdir(parents=True)
    (dev / "vendor").write_text("0x1af4\n")
    (dev / "device").write_text("0x1000\n")
    (dev / "class").write_text("0x020000\n")
    monkeypatch.setenv("PYVIRT_HOST_ROOT", str(tmp_path))
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(state_root))
    for verb in ("nodedev-detach", "nodedev-reattach", "nodedev-reset"):
        code, out, err = run(capsys, verb, "pci_0000_00_04_0")
        assert (code, out) == (1, "")
        assert "the kernel has no VFIO" in err.splitlines()[0]
    assert not (dev / "driver_override").exists()
    code, _, err = run(capsys, "nodedev-detach", "pci_0000_00_04_0", "--driver", "xen")
    assert code == 1 and "unknown device driver 'xen'" in err


def test_every_command_is_in_a_virsh_group() -> None:
    keys = {k for _, k in GROUPS}
    for name, target in COMMANDS.items():
        assert group_of(name, target.split(":")[0]) in keys, name
    assert group_of("cpu-models", "cpu") == "host"
    assert group_of("cpu-stats", "cpu") == "domain"
    assert group_of("connect", "shell") == "pyvirt"
    assert group_of("snapshot-list", "snapshot") == "snapshot"
    assert group_of("blockcommit", "blockjob") == "domain"


@pytest.mark.parametrize(
    ("keyword", "titles"),
    [
        ("storage", ["Storage Pool", "Storage Volume"]),
        ("host", ["Host and Hypervisor"]),
        ("virsh", ["Pyvirt itself"]),
        ("nodedev", ["Node Device"]),
    ],
)
def test_help_takes_virshs_group_keywords(
    keyword: str, titles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "help", keyword)
    assert code == 0
    assert re.findall(r"^ (\S.*) \(help keyword", out, re.MULTILINE) == titles
    if keyword == "host":
        for name in ("cpu-models", "domcapabilities", "cpu-baseline", "cpu-compare",
                     "hypervisor-cpu-baseline", "capabilities"):  # fmt: skip
            assert f"    {name} " in out
    if keyword == "nodedev":
        assert "    nodedev-detach " in out and "    nodedev-reset " in out
    if keyword == "virsh":
        assert all(f"    {n} " in out for n in ("connect", "quit", "exit", "echo", "help"))
