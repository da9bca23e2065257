"""pyvirt.host.qemu_binaries: parsing captured QEMU output, discovery, probing and its cache."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from host_fakes import write

from pyvirt.errors import HostCommandError, NotFoundError
from pyvirt.host import qemu_binaries as qb
from pyvirt.host.qemu_binaries import QemuVersion


@pytest.mark.parametrize(
    ("text", "version"),
    [
        (
            "QEMU emulator version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)\nCopyright ...",
            QemuVersion(7, 2, 22, "Debian 1:7.2+dfsg-7+deb12u18+b3"),
        ),
        ("QEMU emulator version 9.0.0\n", QemuVersion(9, 0, 0)),
        ("qemu-img version 8.2.2 (qemu-8.2.2-1.fc40)\n", QemuVersion(8, 2, 2, "qemu-8.2.2-1.fc40")),
        ("QEMU emulator version 6.2\n", QemuVersion(6, 2, 0)),
    ],
)
def test_parse_version(text: str, version: QemuVersion) -> None:
    parsed = qb.parse_version(text)
    assert parsed == version
    assert parsed.major_minor == (version.major, version.minor)


def test_versions_compare_numerically() -> None:
    assert QemuVersion(7, 10, 0) > QemuVersion(7, 2, 22)
    assert str(QemuVersion(7, 2, 22, "x")) == "7.2.22"


def test_parse_version_garbage() -> None:
    with pytest.raises(HostCommandError, match="cannot parse QEMU version"):
        qb.parse_version("bash: qemu: command not found")


def test_parse_machine_help(data_dir: Path) -> None:
    machines = qb.parse_machine_help((data_dir / "qemu-7.2/machine-help.txt").read_text())
    by_name = {m.name: m for m in machines}
    assert by_name["pc"].alias_of == "pc-i440fx-7.2"
    assert by_name["pc"].description == "Standard PC (i440FX + PIIX, 1996)"
    assert by_name["q35"].alias_of == "pc-q35-7.2"
    assert by_name["pc-i440fx-7.2"].default and not by_name["pc"].default
    assert [m.name for m in machines if m.deprecated] == [f"pc-i440fx-1.{n}" for n in (7, 6, 5, 4)]
    assert by_name["microvm"].description == "microvm (i386)"
    assert "none" in by_name and len(machines) == 61


def test_parse_accel_help(data_dir: Path) -> None:
    text = (data_dir / "qemu-7.2/accel-help.txt").read_text()
    assert qb.parse_accel_help(text) == ("tcg", "kvm")


def _exe(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_find_binaries(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _exe(first / "qemu-system-x86_64")
    _exe(first / "qemu-system-x86_64-microvm")  # variant build: skipped
    write(first, "qemu-system-aarch64")  # not executable: skipped
    _exe(second / "qemu-system-x86_64")  # shadowed by the first directory
    _exe(second / "qemu-system-i386")
    _exe(second / "qemu-img")
    found = qb.find_qemu_binaries([first, second, tmp_path / "missing"])
    assert found == {
        "i386": second / "qemu-system-i386",
        "x86_64": first / "qemu-system-x86_64",
    }
    assert qb.find_qemu_img([first, second]) == second / "qemu-img"
    assert qb.find_qemu_img([first]) is None


def test_a_binary_installed_or_removed_later_is_seen(tmp_path: Path) -> None:
    """The scan is kept between calls, but not past a change to one of its directories."""
    bindir = tmp_path / "bin"
    _exe(bindir / "qemu-system-x86_64")
    assert set(qb.find_qemu_binaries([bindir])) == {"x86_64"}
    found = qb.find_qemu_binaries([bindir])
    found.clear()  # the caller's copy
    assert set(qb.find_qemu_binaries([bindir])) == {"x86_64"}
    _exe(bindir / "qemu-system-aarch64")
    assert set(qb.find_qemu_binaries([bindir])) == {"aarch64", "x86_64"}
    (bindir / "qemu-system-x86_64").unlink()
    assert set(qb.find_qemu_binaries([bindir])) == {"aarch64"}


def test_default_search_path_includes_libexec(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/x:/y:/x")
    assert qb.default_search_path() == [Path("/x"), Path("/y"), Path("/usr/libexec")]


def test_arch_names() -> None:
    assert qb.libvirt_arch("i386") == "i686" and qb.libvirt_arch("x86_64") == "x86_64"
    assert qb.wordsize("i386") == 32 and qb.wordsize("aarch64") == 64


def _calls(script: Path) -> list[str]:
    log = script.parent / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def test_probe_binary_and_caches(fake_qemu: Callable[..., Path], tmp_path: Path) -> None:
    script = fake_qemu()
    cache = tmp_path / "cache"
    info = qb.probe_binary(script, cache_dir=cache)
    assert info.arch == "x86_64" and info.path == str(script)
    assert info.version == QemuVersion(7, 2, 22, "Debian 1:7.2+dfsg-7+deb12u18+b3")
    assert info.accelerators == ("tcg", "kvm")
    assert info.default_machine == "pc-i440fx-7.2"
    assert info.canonical("q35") == "pc-q35-7.2" and info.canonical("isapc") == "isapc"
    assert info.has_machine("q35") and not info.has_machine("virt")
    assert _calls(script) == ["--version", "-machine help", "-accel help"]

    assert qb.probe_binary(script, cache_dir=cache) is info  # memory cache
    qb.clear_memory_cache()
    assert qb.probe_binary(script, cache_dir=cache) == info  # disk cache
    assert len(_calls(script)) == 3

    st = script.stat()
    os.utime(script, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # "upgrade"
    qb.probe_binary(script, cache_dir=cache)
    assert len(_calls(script)) == 6


def test_probe_binary_ignores_corrupt_cache(fake_qemu: Callable[..., Path], tmp_path: Path) -> None:
    script = fake_qemu()
    cache = tmp_path / "cache"
    qb.probe_binary(script, cache_dir=cache)
    for f in cache.iterdir():
        f.write_text('{"version": 1, "key": "nonsense"}')
    qb.clear_memory_cache()
    assert qb.probe_binary(script, cache_dir=cache).version.major == 7
    assert len(_calls(script)) == 6


def test_probe_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        qb.probe_binary(tmp_path / "qemu-system-x86_64")


def test_failing_binary_reports_argv_and_stderr(fake_qemu: Callable[..., Path]) -> None:
    script = fake_qemu(body='echo "could not load libfoo.so" >&2; exit 127')
    with pytest.raises(HostCommandError) as info:
        qb.qemu_version(script)
    err = info.value
    assert err.argv == [str(script), "--version"] and err.returncode == 127
    assert "libfoo" in str(err)


def test_hanging_binary_times_out(fake_qemu: Callable[..., Path]) -> None:
    script = fake_qemu(body="exec sleep 30")
    with pytest.raises(HostCommandError, match="did not finish within"):
        qb.accelerators(script, timeout=0.3)


def test_run_command_missing_program(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        qb.run_command([str(tmp_path / "nothing"), "--version"])


def test_the_scan_of_settled_directories_is_kept(tmp_path: Path) -> None:
    """No listing while the directories' times stay (the second binary, put in with the
    directory's time set back, is not seen: the kept scan answered)."""
    bindir = tmp_path / "bin"
    _exe(bindir / "qemu-system-x86_64")
    past = (1_000_000_000, 1_000_000_000)
    os.utime(bindir, past)
    assert set(qb.find_qemu_binaries([bindir])) == {"x86_64"}
    _exe(bindir / "qemu-system-aarch64")
    os.utime(bindir, past)
    assert set(qb.find_qemu_binaries([bindir])) == {"x86_64"}
