"""The host CPU: vendor, model, flags and topology, read from ``/proc`` and ``/sys``.

Every reader takes a ``root`` path so unit tests point it at a fake tree (``tests/data/host/``).
Topology comes from ``/sys/devices/system/cpu/cpuN/topology`` (package, die and core ids of
each online CPU); when that is missing (containers, old kernels) it falls back to the
``physical id``/``core id`` lines of ``/proc/cpuinfo``.

:func:`guess_model` names the newest QEMU CPU model whose characteristic flags the host has.
It is a coarse guide for ``<capabilities>`` (libvirt uses a full CPU map for this); domains
that want the host CPU should use ``<cpu mode='host-passthrough'/>``.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.errors import InvalidConfigError
from pyvirt.model.cpuset import parse_cpuset

_VENDORS = {"GenuineIntel": "Intel", "AuthenticAMD": "AMD", "HygonGenuine": "Hygon"}

# /proc/cpuinfo spells a few flags differently from QEMU and libvirt.
_FLAG_NAMES = {"sse4_1": "sse4.1", "sse4_2": "sse4.2"}

# (model, flags it adds over the previous rows); a model matches when the host has its
# flags and those of every earlier row of the same table.
_INTEL_MODELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Nehalem", frozenset({"sse4_1", "sse4_2", "popcnt", "ssse3", "cx16"})),
    ("Westmere", frozenset({"aes", "pclmulqdq"})),
    ("SandyBridge", frozenset({"avx", "xsave", "tsc_deadline_timer"})),
    ("IvyBridge", frozenset({"f16c", "rdrand", "fsgsbase", "erms", "smep"})),
    ("Haswell-noTSX", frozenset({"avx2", "bmi1", "bmi2", "fma", "movbe", "invpcid", "abm"})),
    ("Broadwell-noTSX", frozenset({"adx", "rdseed", "smap", "3dnowprefetch"})),
    ("Skylake-Client", frozenset({"clflushopt", "xsavec", "xgetbv1"})),
    ("Skylake-Server", frozenset({"avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl"})),
    ("Cascadelake-Server", frozenset({"avx512_vnni"})),
    (
        "Icelake-Server",
        frozenset({"avx512vbmi", "avx512_vbmi2", "gfni", "vaes", "vpclmulqdq", "avx512_bitalg"}),
    ),
    ("SapphireRapids", frozenset({"amx_tile", "amx_int8", "amx_bf16", "avx512_fp16"})),
)
_AMD_MODELS: tuple[tuple[str, frozenset[str]], ...] = (
    ("Opteron_G3", frozenset({"popcnt", "cx16", "abm", "sse4a"})),
    ("Opteron_G4", frozenset({"avx", "aes", "pclmulqdq", "xsave", "sse4_1", "sse4_2"})),
    ("EPYC", frozenset({"avx2", "bmi1", "bmi2", "fma", "movbe", "adx", "rdseed", "sha_ni"})),
    ("EPYC-Rome", frozenset({"clwb", "wbnoinvd", "rdpid"})),
    ("EPYC-Milan", frozenset({"pku", "invpcid", "fsrm"})),
    ("EPYC-Genoa", frozenset({"avx512f", "avx512_bf16", "avx512vbmi", "gfni", "vaes"})),
)


@dataclass(frozen=True)
class Topology:
    """Sockets x dies x cores x threads, as in libvirt's ``<topology>``."""

    sockets: int = 1
    dies: int = 1
    cores: int = 1
    threads: int = 1

    @property
    def cpus(self) -> int:
        """Logical CPUs implied by the topology."""
        return self.sockets * self.dies * self.cores * self.threads


@dataclass(frozen=True)
class HostCpu:
    """The host CPU as pyvirt reports it.

    :ivar arch: machine architecture (``x86_64``, ``aarch64``, ...)
    :ivar vendor: ``Intel``, ``AMD`` or the raw vendor id (``None`` when unknown)
    :ivar model_name: the ``model name`` line of ``/proc/cpuinfo``
    :ivar flags: feature flags as ``/proc/cpuinfo`` spells them
    :ivar online: online logical CPU ids
    """

    arch: str
    vendor: str | None
    model_name: str | None
    family: int | None
    model: int | None
    stepping: int | None
    microcode: str | None
    flags: frozenset[str]
    topology: Topology
    online: tuple[int, ...] = field(default=())
    #: the ``vmx flags`` line of ``/proc/cpuinfo`` (Linux >= 5.8 lists ``ept`` there)
    vmx_flags: frozenset[str] = field(default=frozenset())

    @property
    def count(self) -> int:
        """Online logical CPUs."""
        return len(self.online) or self.topology.cpus

    @property
    def virt_extension(self) -> str | None:
        """``vmx`` (Intel VT-x) or ``svm`` (AMD-V) when the CPU exposes one, else ``None``."""
        for flag in ("vmx", "svm"):
            if flag in self.flags:
                return flag
        return None

    @property
    def mmu_virt(self) -> str | None:
        """Second-level address translation: ``ept`` (Intel), ``npt`` (AMD) or ``None``."""
        if "ept" in self.flags or "ept" in self.vmx_flags:
            return "ept"
        if "npt" in self.flags:
            return "npt"
        return None

    def feature_names(self) -> list[str]:
        """Flags in libvirt/QEMU spelling, sorted (for ``<feature name=...>``)."""
        return sorted(_FLAG_NAMES.get(f, f) for f in self.flags)


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """Split ``/proc/cpuinfo`` into one ``{key: value}`` dict per processor block."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    return blocks


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """A kernel CPU list (``0-3,8,10-11``) as a sorted tuple; empty text gives ``()``.

    The syntax is libvirt's; this only sorts :func:`~pyvirt.model.cpuset.parse_cpuset`.

    :raises ValueError: malformed text (a host file, not user input)
    """
    try:
        return tuple(sorted(parse_cpuset(text, what="CPU list", allow_empty=True)))
    except InvalidConfigError as err:
        raise ValueError(str(err)) from None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _online_cpus(root: Path, blocks: list[dict[str, str]]) -> tuple[int, ...]:
    text = _read(root / "sys/devices/system/cpu/online")
    if text:
        try:
            return parse_cpu_list(text)
        except ValueError:
            pass
    ids = (_int(b.get("processor")) for b in blocks)
    return tuple(sorted(i for i in ids if i is not None))


def _topology(root: Path, online: Iterable[int], blocks: list[dict[str, str]]) -> Topology:
    cpu_dir = root / "sys/devices/system/cpu"
    # (package, die, core) per online CPU from sysfs; cpuinfo when sysfs lacks it.
    ids: list[tuple[int, int, int]] = []
    for cpu in online:
        topo = cpu_dir / f"cpu{cpu}" / "topology"
        package = _int(_read(topo / "physical_package_id"))
        core = _int(_read(topo / "core_id"))
        if package is None or core is None:
            ids = []
            break
        ids.append((package, _int(_read(topo / "die_id")) or 0, core))
    if not ids:
        for block in blocks:
            package = _int(block.get("physical id"))
            core = _int(block.get("core id"))
            if package is None or core is None:
                return Topology(cores=max(len(blocks), 1))
            ids.append((package, 0, core))
    if not ids:
        return Topology()
    sockets = len({p for p, _, _ in ids})
    dies = len({(p, d) for p, d, _ in ids})
    cores = len({(p, d, c) for p, d, c in ids})
    threads = max(1, len(ids) // cores)
    return Topology(
        sockets=sockets,
        dies=max(1, dies // sockets),
        cores=max(1, cores // dies),
        threads=threads,
    )


def read_host_cpu(root: Path = Path("/"), *, arch: str | None = None) -> HostCpu:
    """Read the host CPU description.

    :param root: filesystem root holding ``proc/cpuinfo`` and ``sys/devices/system/cpu``
    :param arch: machine architecture; defaults to this machine's (``platform.machine()``)
    """
    text = _read(root / "proc/cpuinfo") or ""
    blocks = parse_cpuinfo(text)
    first = blocks[0] if blocks else {}
    vendor_id = first.get("vendor_id") or first.get("CPU implementer")
    flags = first.get("flags") or first.get("Features") or ""
    online = _online_cpus(root, blocks)
    return HostCpu(
        arch=arch or platform.machine(),
        vendor=_VENDORS.get(vendor_id, vendor_id) if vendor_id else None,
        model_name=first.get("model name"),
        family=_int(first.get("cpu family")),
        model=_int(first.get("model")),
        stepping=_int(first.get("stepping")),
        microcode=first.get("microcode"),
        flags=frozenset(flags.split()),
        topology=_topology(root, online, blocks),
        online=online,
        vmx_flags=frozenset((first.get("vmx flags") or "").split()),
    )


def guess_model(cpu: HostCpu) -> str | None:
    """The newest QEMU CPU model name the host's flags cover, for x86 hosts.

    ``qemu64`` when no table row matches; ``None`` for non-x86 architectures.
    """
    if not re.fullmatch(r"x86_64|i[3-6]86", cpu.arch):
        return None
    table = _AMD_MODELS if cpu.vendor in ("AMD", "Hygon") else _INTEL_MODELS
    best = "qemu64"
    needed: set[str] = set()
    for name, adds in table:
        needed |= adds
        if not needed <= cpu.flags:
            break
        best = name
    return best
