"""Installed QEMU system emulators: where they are, their version, machine types, accelerators.

* :func:`find_qemu_binaries` scans a search path (``$PATH`` plus ``/usr/libexec`` by default)
  for ``qemu-system-ARCH`` executables; :func:`find_qemu_img` finds ``qemu-img``.
* :func:`probe_binary` runs ``--version``, ``-machine help`` and ``-accel help`` once per
  binary and caches the answer by the binary's (path, mtime, size, inode), in memory and, when
  a ``cache_dir`` is given, on disk; a QEMU upgrade changes the mtime and invalidates it.
* The ``parse_*`` functions are pure and are what the unit tests exercise with captured output
  (``tests/data/host/qemu-7.2/``).

Commands run with an explicit argv, ``LC_ALL=C``, no stdin and a timeout. Nothing runs at
import time. Richer facts (CPU models, device lists) belong to QMP probing in
``drivers/qemu/probe.py``; this module only needs the command line.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from pyvirt.errors import HostCommandError, NotFoundError, UnsupportedError

#: Extra directories searched after ``$PATH`` (RHEL's ``qemu-kvm`` lives in /usr/libexec).
EXTRA_DIRS = (Path("/usr/libexec"),)
COMMAND_TIMEOUT = 10.0
_BINARY_RE = re.compile(r"qemu-system-([a-z0-9_]+)")
_CACHE_VERSION = 1

#: QEMU target name -> libvirt ``<arch name>``.
LIBVIRT_ARCH = {"i386": "i686", "arm": "armv7l", "ppc": "ppc", "mips": "mips"}
_WORDSIZE_32 = frozenset({"i386", "arm", "ppc", "mips", "mipsel", "sparc", "riscv32", "or1k"})


def libvirt_arch(qemu_arch: str) -> str:
    """libvirt's name for a QEMU target (``i386`` -> ``i686``, ``x86_64`` unchanged)."""
    return LIBVIRT_ARCH.get(qemu_arch, qemu_arch)


def wordsize(qemu_arch: str) -> int:
    """Guest word size in bits for a QEMU target."""
    return 32 if qemu_arch in _WORDSIZE_32 else 64


@dataclass(frozen=True, order=True)
class QemuVersion:
    """A QEMU version; compares as ``(major, minor, micro)``.

    :ivar package: the distribution suffix in parentheses, e.g. ``Debian 1:7.2+dfsg-7``
    """

    major: int
    minor: int
    micro: int = 0
    package: str | None = None

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.micro}"

    @property
    def major_minor(self) -> tuple[int, int]:
        """``(major, minor)``, the form ``ArgvContext.qemu_version`` takes."""
        return (self.major, self.minor)


@dataclass(frozen=True)
class MachineType:
    """One line of ``-machine help``.

    :ivar alias_of: the canonical machine this name stands for (``pc`` -> ``pc-i440fx-7.2``)
    :ivar default: QEMU picks this machine when none is given
    """

    name: str
    description: str
    alias_of: str | None = None
    default: bool = False
    deprecated: bool = False


@dataclass(frozen=True)
class QemuBinary:
    """What one QEMU system emulator offers.

    :ivar arch: the QEMU target (``x86_64``, ``i386``, ``aarch64``, ...)
    """

    path: str
    arch: str
    version: QemuVersion
    machines: tuple[MachineType, ...]
    accelerators: tuple[str, ...]

    @property
    def default_machine(self) -> str | None:
        """The machine QEMU uses without ``-machine`` (canonical name)."""
        for m in self.machines:
            if m.default:
                return self.canonical(m.name)
        return None

    def canonical(self, name: str) -> str:
        """Resolve an alias (``pc``, ``q35``) to its versioned machine; other names unchanged."""
        for m in self.machines:
            if m.name == name and m.alias_of:
                return m.alias_of
        return name

    def has_machine(self, name: str) -> bool:
        """Whether ``name`` (canonical or alias) is a machine type of this binary."""
        return any(m.name == name for m in self.machines)


def parse_version(text: str) -> QemuVersion:
    """Parse ``qemu-system-* --version`` (or ``qemu-img --version``) output.

    :raises HostCommandError: no version number in the text
    """
    match = re.search(r"version (\d+)\.(\d+)(?:\.(\d+))?(?:\s*\(([^)]*)\))?", text)
    if not match:
        raise HostCommandError(f"cannot parse QEMU version from {text.strip()[:80]!r}")
    major, minor, micro, package = match.groups()
    return QemuVersion(int(major), int(minor), int(micro or 0), package)


def parse_machine_help(text: str) -> tuple[MachineType, ...]:
    """Parse ``-machine help`` output into machine types, in QEMU's order."""
    machines: list[MachineType] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("Supported machines"):
            continue
        name, _, rest = line.strip().partition(" ")
        rest = rest.strip()
        alias = re.search(r"\s*\(alias of ([^)]+)\)", rest)
        default = bool(re.search(r"\s*\(default\)", rest))
        deprecated = bool(re.search(r"\s*\(deprecated\)", rest))
        description = re.sub(r"\s*\((alias of [^)]+|default|deprecated)\)", "", rest).strip()
        machines.append(
            MachineType(
                name=name,
                description=description,
                alias_of=alias.group(1) if alias else None,
                default=default,
                deprecated=deprecated,
            )
        )
    return tuple(machines)


def parse_accel_help(text: str) -> tuple[str, ...]:
    """Parse ``-accel help`` output (``tcg``, ``kvm``, ...)."""
    return tuple(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith("Accelerators") and " " not in line.strip()
    )


def default_search_path() -> list[Path]:
    """``$PATH`` directories followed by :data:`EXTRA_DIRS`, without duplicates."""
    dirs = [Path(p) for p in os.environ.get("PATH", os.defpath).split(os.pathsep) if p]
    out: list[Path] = []
    for d in [*dirs, *EXTRA_DIRS]:
        if d not in out:
            out.append(d)
    return out


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


#: {directories: (their modification times, what :func:`find_qemu_binaries` found)}
_FOUND: dict[tuple[Path, ...], tuple[tuple[int, ...], dict[str, Path]]] = {}
#: how long ago (ns) the last change to a directory must be for its scan to be kept
_SETTLED_NS = 1_000_000_000


def _mtimes(dirs: Sequence[Path]) -> tuple[int, ...]:
    out = []
    for d in dirs:
        try:
            out.append(os.stat(d).st_mtime_ns)
        except OSError:
            out.append(-1)
    return tuple(out)


def find_qemu_binaries(search_path: Sequence[Path] | None = None) -> dict[str, Path]:
    """Installed ``qemu-system-ARCH`` binaries by QEMU arch; the first in the path wins.

    Variant builds such as ``qemu-system-x86_64-microvm`` are skipped. The scan (a listing
    of ``/usr/bin`` among others, ~6 ms) is kept while no directory's modification time
    changed (a package installed or removed changes it).

    :param search_path: directories to scan; :func:`default_search_path` when ``None``
    """
    dirs = tuple(default_search_path() if search_path is None else search_path)
    stamp = _mtimes(dirs)
    cached = _FOUND.get(dirs)
    if cached is not None and cached[0] == stamp:
        return dict(cached[1])
    found: dict[str, Path] = {}
    for directory in dirs:
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            match = _BINARY_RE.fullmatch(name)
            if match and match.group(1) not in found and _is_executable(directory / name):
                found[match.group(1)] = directory / name
    result = dict(sorted(found.items()))
    # a directory changed within the file system's timestamp granularity (a clock tick) may
    # change again without its time moving: such a scan is not kept
    if max(stamp, default=0) < time.time_ns() - _SETTLED_NS:
        _FOUND[dirs] = (stamp, result)
    return dict(result)


def find_qemu_img(search_path: Sequence[Path] | None = None) -> Path | None:
    """The first executable ``qemu-img`` in the search path, or ``None``."""
    for directory in default_search_path() if search_path is None else search_path:
        candidate = directory / "qemu-img"
        if _is_executable(candidate):
            return candidate
    return None


def run_command(argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT) -> str:
    """Run a query command (``--version``, ``help``) and return its stdout.

    :raises NotFoundError: the program does not exist
    :raises HostCommandError: it failed, timed out or could not be executed
    """
    from pyvirt import hostcmd  # subprocess: not for a cached probe (define's fast path)

    try:
        return hostcmd.run(argv, what=f"'{' '.join(argv)}'", timeout=timeout).stdout
    except UnsupportedError as err:  # hostcmd's answer to a missing program
        raise NotFoundError(f"program '{argv[0]}' not found") from err


def qemu_version(binary: Path, *, timeout: float = COMMAND_TIMEOUT) -> QemuVersion:
    """Version of a QEMU binary (``BINARY --version``)."""
    return parse_version(run_command([str(binary), "--version"], timeout=timeout))


def machine_types(binary: Path, *, timeout: float = COMMAND_TIMEOUT) -> tuple[MachineType, ...]:
    """Machine types of a QEMU system emulator (``BINARY -machine help``)."""
    return parse_machine_help(run_command([str(binary), "-machine", "help"], timeout=timeout))


def accelerators(binary: Path, *, timeout: float = COMMAND_TIMEOUT) -> tuple[str, ...]:
    """Accelerators compiled into a QEMU system emulator (``BINARY -accel help``)."""
    return parse_accel_help(run_command([str(binary), "-accel", "help"], timeout=timeout))


_memory_cache: dict[tuple[str, int, int, int], QemuBinary] = {}


def _to_json(info: QemuBinary) -> dict[str, object]:
    return asdict(info)


def _from_json(data: dict[str, object]) -> QemuBinary:
    version = data["version"]
    machines = data["machines"]
    accels = data["accelerators"]
    assert isinstance(version, dict) and isinstance(machines, list)
    assert isinstance(accels, list)
    return QemuBinary(
        path=str(data["path"]),
        arch=str(data["arch"]),
        version=QemuVersion(**version),
        machines=tuple(MachineType(**m) for m in machines),
        accelerators=tuple(str(a) for a in accels),
    )


def probe_binary(
    binary: Path,
    *,
    arch: str | None = None,
    cache_dir: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
    cached_only: bool = False,
) -> QemuBinary:
    """Version, machines and accelerators of a QEMU binary, cached by its mtime.

    :param binary: path of ``qemu-system-ARCH``
    :param arch: QEMU target; taken from the file name when ``None``
    :param cache_dir: directory for an on-disk JSON cache (one file per binary path)
    :param timeout: seconds each query command may take
    :param cached_only: answer from the caches only (``NotFoundError`` when they have nothing)
    :raises NotFoundError: the binary does not exist
    :raises HostCommandError: a query command failed
    """
    try:
        st = binary.stat()
    except OSError as err:
        raise NotFoundError(f"QEMU binary '{binary}' not found") from err
    key = (str(binary), st.st_mtime_ns, st.st_size, st.st_ino)
    if key in _memory_cache:
        return _memory_cache[key]
    cache_file = None
    if cache_dir is not None:
        digest = hashlib.sha256(str(binary).encode()).hexdigest()[:16]
        cache_file = cache_dir / f"qemu-{binary.name}-{digest}.json"
        try:
            record = json.loads(cache_file.read_text())
            if record.get("version") == _CACHE_VERSION and record.get("key") == list(key):
                info = _from_json(record["binary"])
                _memory_cache[key] = info
                return info
        except (OSError, ValueError, KeyError, TypeError, AssertionError):
            pass
    if cached_only:
        raise NotFoundError(f"QEMU binary '{binary}' has not been probed yet")
    if arch is None:
        match = _BINARY_RE.fullmatch(binary.name)
        arch = match.group(1) if match else "x86_64"
    info = QemuBinary(
        path=str(binary),
        arch=arch,
        version=qemu_version(binary, timeout=timeout),
        machines=machine_types(binary, timeout=timeout),
        accelerators=accelerators(binary, timeout=timeout),
    )
    _memory_cache[key] = info
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
            payload = {"version": _CACHE_VERSION, "key": list(key), "binary": _to_json(info)}
            tmp.write_text(json.dumps(payload, indent=1) + "\n")
            os.replace(tmp, cache_file)
        except OSError:
            pass  # the cache is only an optimisation
    return info


def clear_memory_cache() -> None:
    """Forget in-process probe results (tests)."""
    _memory_cache.clear()
