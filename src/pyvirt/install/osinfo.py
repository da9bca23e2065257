"""A table of common OS variants and the device defaults each one works best with.

``--os-variant NAME`` (or ``--osinfo NAME``) picks the disk bus, NIC model, machine type,
firmware and a minimum memory. Names follow libosinfo's short ids (``debian12``,
``ubuntu22.04``, ``rhel9.0``, ``win11``); a few shorthands (``rhel6`` for ``rhel6.10``) are
accepted like virt-install accepts them. The table is data: add a row to support a variant.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvirt.errors import InvalidConfigError


@dataclass(frozen=True)
class OsVariant:
    """Defaults for one guest OS."""

    name: str
    family: str  # linux | windows | generic
    distro: str  # debian | ubuntu | fedora | centos | rhel | win | generic
    disk_bus: str = "virtio"
    nic_model: str = "virtio"
    machine: str = "q35"
    firmware: str = "bios"  # bios | efi
    secure_boot: bool = False
    min_memory_mib: int = 512
    clock_offset: str = "utc"
    video: str = "vga"
    description: str = ""


def _linux(name: str, distro: str, desc: str, **kw: object) -> OsVariant:
    return OsVariant(name, "linux", distro, description=desc, **kw)  # type: ignore[arg-type]


_ROWS: tuple[OsVariant, ...] = (
    _linux("debian10", "debian", "Debian 10 (buster)"),
    _linux("debian11", "debian", "Debian 11 (bullseye)"),
    _linux("debian12", "debian", "Debian 12 (bookworm)"),
    _linux("ubuntu20.04", "ubuntu", "Ubuntu 20.04 LTS", min_memory_mib=1024),
    _linux("ubuntu22.04", "ubuntu", "Ubuntu 22.04 LTS", min_memory_mib=1024),
    _linux("ubuntu24.04", "ubuntu", "Ubuntu 24.04 LTS", min_memory_mib=1024),
    _linux("fedora38", "fedora", "Fedora 38", min_memory_mib=1024),
    _linux("fedora39", "fedora", "Fedora 39", min_memory_mib=1024),
    _linux("fedora40", "fedora", "Fedora 40", min_memory_mib=1024),
    _linux("centos7.0", "centos", "CentOS 7", machine="pc", min_memory_mib=1024),
    _linux("centos8", "centos", "CentOS 8", min_memory_mib=1024),
    _linux("centos-stream9", "centos", "CentOS Stream 9", min_memory_mib=1024),
    _linux("rhel6.10", "rhel", "Red Hat Enterprise Linux 6.10", machine="pc"),
    _linux("rhel7.9", "rhel", "Red Hat Enterprise Linux 7.9", machine="pc", min_memory_mib=1024),
    _linux("rhel8.10", "rhel", "Red Hat Enterprise Linux 8.10", min_memory_mib=1024),
    _linux("rhel9.4", "rhel", "Red Hat Enterprise Linux 9.4", min_memory_mib=1536),
    OsVariant(
        "win10", "windows", "win", disk_bus="sata", nic_model="e1000e", min_memory_mib=2048,
        clock_offset="localtime", description="Microsoft Windows 10",
    ),
    OsVariant(
        "win11", "windows", "win", disk_bus="sata", nic_model="e1000e", firmware="efi",
        secure_boot=True, min_memory_mib=4096, clock_offset="localtime",
        description="Microsoft Windows 11",
    ),
    _linux("linux2022", "generic", "Generic Linux (2022 or later)"),
    OsVariant(
        "generic", "generic", "generic", disk_bus="ide", nic_model="e1000", machine="pc",
        min_memory_mib=256, description="Generic OS: emulated devices only",
    ),
)  # fmt: skip

VARIANTS: dict[str, OsVariant] = {row.name: row for row in _ROWS}
ALIASES: dict[str, str] = {
    "rhel6": "rhel6.10", "rhel7": "rhel7.9", "rhel8": "rhel8.10", "rhel9": "rhel9.4",
    "rhel6.0": "rhel6.10", "rhel7.0": "rhel7.9", "rhel8.0": "rhel8.10", "rhel9.0": "rhel9.4",
    "centos7": "centos7.0", "centos8.0": "centos8", "centos-stream-9": "centos-stream9",
    "centosstream9": "centos-stream9", "linux": "linux2022", "unknown": "generic",
    "debianbookworm": "debian12", "debianbullseye": "debian11", "debianbuster": "debian10",
    "ubuntujammy": "ubuntu22.04", "ubuntunoble": "ubuntu24.04", "ubuntufocal": "ubuntu20.04",
    "win2k22": "win11",
}  # fmt: skip


def lookup(name: str) -> OsVariant:
    """The variant called ``name`` (short id or alias, case-insensitive).

    :raises InvalidConfigError: unknown name, with the list of known ones
    """
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    row = VARIANTS.get(key)
    if row is None:
        raise InvalidConfigError(
            f"OS variant '{name}' is not known",
            hint="one of: " + ", ".join(sorted(VARIANTS)) + " (or detect=on)",
        )
    return row


def default() -> OsVariant:
    """The variant used when none is given and none is detected."""
    return VARIANTS["linux2022"]


def from_release(distro: str, version: str) -> OsVariant | None:
    """The variant for a detected ``distro`` and ``version`` (``"debian"``, ``"12.5"``)."""
    major = version.split(".")[0]
    candidates = {
        "debian": f"debian{major}",
        "ubuntu": f"ubuntu{'.'.join(version.split('.')[:2])}",
        "fedora": f"fedora{major}",
        "centos": "centos-stream9" if major == "9" else f"centos{major}",
        "rhel": {"6": "rhel6.10", "7": "rhel7.9", "8": "rhel8.10", "9": "rhel9.4"}.get(major, ""),
    }
    name = candidates.get(distro)
    if not name:
        return None
    name = ALIASES.get(name, name)
    return VARIANTS.get(name)
