"""pyvirt.host.kvm: detection readers, verdict rules, probe process handling, the cache."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from host_fakes import probe_result, write

from pyvirt.errors import HostCommandError
from pyvirt.host import _kvm_probe, kvm
from pyvirt.host.kvm import KvmDevice, ProbeResult


def test_count_virt_flags(data_dir: Path, tmp_path: Path) -> None:
    assert kvm.count_virt_flags(data_dir / "intel-hw") == 8
    assert kvm.count_virt_flags(data_dir / "emulated-kvm") == 0
    assert kvm.count_virt_flags(tmp_path) == 0  # no cpuinfo at all


def test_count_virt_flags_matches_whole_words(tmp_path: Path) -> None:
    write(
        tmp_path, "proc/cpuinfo", "processor : 0\nflags : fpu svm\n\nprocessor : 1\nflags : vmxx\n"
    )
    assert kvm.count_virt_flags(tmp_path) == 1


def test_loaded_modules(data_dir: Path, tmp_path: Path) -> None:
    assert kvm.loaded_kvm_modules(data_dir / "intel-hw") == ("kvm", "kvm_intel")
    assert kvm.loaded_kvm_modules(data_dir / "emulated-kvm") == ("kvm", "kvm_pvm")
    assert kvm.loaded_kvm_modules(tmp_path) == ()


def test_inspect_missing_device(tmp_path: Path) -> None:
    dev = kvm.inspect_device(tmp_path / "kvm")
    assert not dev.exists and not dev.accessible
    assert dev.error and "does not exist" in dev.error


def test_inspect_device_that_is_not_kvm(tmp_path: Path) -> None:
    dev = kvm.inspect_device(write(tmp_path, "kvm"))
    assert dev.exists and dev.accessible and dev.api_version is None
    assert dev.error and "does not answer KVM ioctls" in dev.error


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens anything")
def test_inspect_inaccessible_device(tmp_path: Path) -> None:
    path = write(tmp_path, "kvm")
    path.chmod(0)
    dev = kvm.inspect_device(path)
    assert dev.exists and not dev.accessible
    assert dev.error and "cannot open" in dev.error


# --- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "verdict", "usable", "words"),
    [
        (probe_result(), "fast", True, "hardware-fast"),
        (probe_result(loop_iterations=10_000, loop_seconds=0.0125), "slow", True, "times slower"),
        (probe_result(exits=10, exit_seconds=0.03), "slow", True, "VM exits/s"),
        (probe_result(loop_iterations=0, loop_seconds=0, timed_out=True), "slow", True, "under"),
        (probe_result(exits=0, timed_out=True), "absent", False, "first VM exit"),
        (probe_result(error="unexpected KVM exit reason 9", stage="exits"), "absent", False, "9"),
    ],
)
def test_classify(result: ProbeResult, verdict: str, usable: bool, words: str) -> None:
    got_verdict, got_usable, reason, _ = kvm.classify(result)
    assert (got_verdict, got_usable) == (verdict, usable)
    assert words in reason


def test_classify_slowdown_factor() -> None:
    # 800k iterations/s against the 1e9 reference: 1250 times slower.
    _, _, reason, slowdown = kvm.classify(probe_result(loop_iterations=8000, loop_seconds=0.01))
    assert slowdown == pytest.approx(1250)
    assert "~1,250 times slower" in reason


def test_probe_result_rates() -> None:
    r = probe_result(exits=100, exit_seconds=0.01, loop_iterations=1000, loop_seconds=0.001)
    assert r.exits_per_sec == pytest.approx(10_000)
    assert r.loop_rate == pytest.approx(1e6)
    assert probe_result(exits=0, loop_iterations=0).exits_per_sec is None
    assert ProbeResult.from_json({"exits": 3, "extra": 1}).exits == 3


# --- the probe child process ---------------------------------------------------------------


def _fake_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str) -> None:
    script = write(tmp_path, "child.py", body)
    monkeypatch.setattr(kvm, "_PROBE_SCRIPT", script)


def test_run_probe_parses_child_output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    data = {"stage": "done", "exits": 5, "exit_seconds": 0.001, "loop_iterations": 7}
    _fake_child(monkeypatch, tmp_path, f"print('noise')\nprint({json.dumps(data)!r})\n")
    result = kvm.run_probe(tmp_path / "kvm")
    assert (result.stage, result.exits, result.loop_iterations) == ("done", 5, 7)
    assert result.elapsed > 0


def test_run_probe_kills_a_hung_child(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _fake_child(monkeypatch, tmp_path, "import time\ntime.sleep(30)\n")
    start = time.monotonic()
    result = kvm.run_probe(tmp_path / "kvm", budget=0.05, grace=0.3)
    assert time.monotonic() - start < 3
    assert result.timed_out and result.stage == "killed"
    assert kvm.classify(result)[0] == "absent"


@pytest.mark.parametrize("body", ["import sys\nsys.exit(3)\n", "print('not json')\n"])
def test_run_probe_reports_broken_child(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, body: str
) -> None:
    _fake_child(monkeypatch, tmp_path, body)
    with pytest.raises(HostCommandError) as info:
        kvm.run_probe(tmp_path / "kvm")
    assert info.value.argv[-4:] == ["--device", str(tmp_path / "kvm"), "--budget", "0.150"]


def test_child_reports_open_and_ioctl_failures(tmp_path: Path) -> None:
    missing = _kvm_probe.probe(str(tmp_path / "nope"), 0.1)
    assert missing["stage"] == "open" and missing["error"]
    not_kvm = _kvm_probe.probe("/dev/null", 0.1)
    assert not_kvm["stage"] == "api" and not_kvm["error"]


def test_guest_programs_jump_back_to_their_start() -> None:
    # jmp rel8 at the end of each program must land on its first byte.
    for program in (_kvm_probe.EXIT_PROGRAM, _kvm_probe.LOOP_PROGRAM):
        assert program[-2] == 0xEB
        (rel,) = struct.unpack("b", program[-1:])
        assert len(program) + rel == 0
    loop = _kvm_probe.LOOP_PROGRAM
    assert loop[3] | loop[4] << 8 == _kvm_probe.LOOP_COUNT_ADDR
    # jnz (0x75) goes back to dec ecx (66 49)
    jnz = loop.index(bytes([0x75]))
    (rel,) = struct.unpack("b", loop[jnz + 1 : jnz + 2])
    assert loop[jnz + 2 + rel : jnz + 2 + rel + 2] == bytes([0x66, 0x49])


# --- kvm_status and its cache --------------------------------------------------------------


@pytest.fixture
def working_kvm(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Pretend /dev/kvm opens; record each probe run (returns a fast result)."""
    calls: list[float] = []

    def fake_inspect(device: Path = kvm.KVM_DEVICE) -> KvmDevice:
        return KvmDevice(str(device), True, True, 12, {"KVM_CAP_USER_MEMORY": 1})

    def fake_probe(device: Path = kvm.KVM_DEVICE, **kwargs: float) -> ProbeResult:
        calls.append(time.time())
        return probe_result()

    monkeypatch.setattr(kvm, "inspect_device", fake_inspect)
    monkeypatch.setattr(kvm, "run_probe", fake_probe)
    return calls


def test_status_absent_device(data_dir: Path, tmp_path: Path) -> None:
    status = kvm.kvm_status(root=data_dir / "intel-hw", device=tmp_path / "kvm")
    assert status.verdict == "absent" and not status.usable
    assert status.modules == ("kvm", "kvm_intel") and status.virt_flags == 8
    assert kvm.default_domain_type(status) == "qemu"


def test_status_without_probe_is_not_trusted(working_kvm: list[float], data_dir: Path) -> None:
    status = kvm.kvm_status(root=data_dir / "intel-hw", probe=False)
    assert status.verdict == "slow" and "not measured" in status.reason
    assert working_kvm == []


def test_status_fast_and_cached_per_boot(
    working_kvm: list[float], data_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache" / "kvm-probe.json"
    root = data_dir / "intel-hw"
    first = kvm.kvm_status(root=root, cache_path=cache)
    assert first.verdict == "fast" and first.usable and not first.cached
    assert kvm.default_domain_type(first) == "kvm"
    assert json.loads(cache.read_text())["boot_id"] == "0b5e8c3c-1111-4222-8333-444455556666"
    second = kvm.kvm_status(root=root, cache_path=cache)
    assert second.cached and second.verdict == "fast"
    assert second.loop_rate == first.loop_rate
    assert len(working_kvm) == 1


def test_cache_invalidated_by_reboot_age_and_garbage(
    working_kvm: list[float], data_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "kvm-probe.json"
    root = tmp_path / "root"
    write(root, "proc/sys/kernel/random/boot_id", "boot-1\n")
    kvm.kvm_status(root=root, cache_path=cache)
    write(root, "proc/sys/kernel/random/boot_id", "boot-2\n")
    kvm.kvm_status(root=root, cache_path=cache)
    assert len(working_kvm) == 2
    record = json.loads(cache.read_text())
    record["time"] -= 2 * 24 * 3600
    cache.write_text(json.dumps(record))
    kvm.kvm_status(root=root, cache_path=cache)
    assert len(working_kvm) == 3
    cache.write_text("{not json")
    assert not kvm.kvm_status(root=root, cache_path=cache).cached
    assert len(working_kvm) == 4


def test_no_boot_id_means_no_cache(working_kvm: list[float], tmp_path: Path) -> None:
    cache = tmp_path / "kvm-probe.json"
    kvm.kvm_status(root=tmp_path, cache_path=cache)
    kvm.kvm_status(root=tmp_path, cache_path=cache)
    assert len(working_kvm) == 2 and not cache.exists()


def test_unwritable_cache_is_ignored(
    working_kvm: list[float], data_dir: Path, tmp_path: Path
) -> None:
    blocker = write(tmp_path, "file")
    status = kvm.kvm_status(root=data_dir / "intel-hw", cache_path=blocker / "sub" / "c.json")
    assert status.verdict == "fast"


def test_probe_failure_is_absent(
    monkeypatch: pytest.MonkeyPatch, working_kvm: list[float], data_dir: Path
) -> None:
    def broken(device: Path = kvm.KVM_DEVICE, **kwargs: float) -> ProbeResult:
        raise HostCommandError("the KVM probe failed", argv=["x"], returncode=1)

    monkeypatch.setattr(kvm, "run_probe", broken)
    status = kvm.kvm_status(root=data_dir / "intel-hw")
    assert status.verdict == "absent" and "probe failed" in status.reason


def test_importing_host_modules_runs_no_command() -> None:
    code = (
        "import subprocess\n"
        "def refuse(*a, **k):\n"
        "    raise AssertionError('subprocess at import time')\n"
        "subprocess.Popen = refuse\n"
        "import pyvirt.host.kvm, pyvirt.host.cpu, pyvirt.host.qemu_binaries\n"
        "import pyvirt.host.capabilities, pyvirt.host.validate\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=30)


def _status(verdict: str, reason: str) -> kvm.KvmStatus:
    device = KvmDevice("/dev/kvm", True, True, 12, {})
    return kvm.KvmStatus(verdict, verdict != "absent", reason, device)  # type: ignore[arg-type]


def test_require_kvm_passes_a_fast_kvm() -> None:
    kvm.require_kvm("--virt-type kvm", "use --virt-type qemu", status=_status("fast", "ok"))


@pytest.mark.parametrize(
    ("verdict", "reason", "why"),
    [
        ("slow", "KVM runs guest code at 1,167 loop iterations/s", "it is emulated: KVM runs"),
        ("absent", "/dev/kvm does not exist (no device node)", "/dev/kvm does not exist"),
    ],
)
def test_require_kvm_refuses_in_one_line(verdict: str, reason: str, why: str) -> None:
    from pyvirt.errors import UnsupportedError

    with pytest.raises(UnsupportedError) as exc:
        kvm.require_kvm("--virt-type kvm", "use --virt-type qemu", status=_status(verdict, reason))
    msg = exc.value.message
    assert msg.startswith(f"--virt-type kvm but KVM cannot run guests on this host ({why}")
    assert msg.endswith("; use --virt-type qemu") and "\n" not in msg
    assert exc.value.hint is None


def test_require_kvm_reads_the_cache_not_a_new_probe(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Path | None] = []

    def fake_status(*, cache_path: Path | None = None, **_: object) -> kvm.KvmStatus:
        calls.append(cache_path)
        return _status("slow", "emulated")

    monkeypatch.setattr(kvm, "kvm_status", fake_status)
    cache = kvm.probe_cache(tmp_path / "cache")
    assert cache == tmp_path / "cache" / "host" / "kvm-probe.json"
    with pytest.raises(Exception, match="cannot run guests"):
        kvm.require_kvm("x", "y", cache_path=cache)
    assert calls == [cache] and cache.parent.is_dir()
