"""Host facts for front ends: versions, capabilities, host-validate, the KVM verdict.

Probe results are cached under the connection's cache dir (``CACHE/host/``), so only the
first call after a host boot pays for the KVM speed probe (~80 ms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.state.paths import StatePaths

if TYPE_CHECKING:
    from pyvirt.host.validate import Check


@dataclass(frozen=True)
class Versions:
    """What ``version`` prints."""

    pyvirt: str
    qemu: str | None
    qemu_binary: str | None


class HostManager:
    """Read-only host information of one connection."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    @property
    def _kvm_cache(self) -> Path:
        return self.paths.cache / "host" / "kvm-probe.json"

    @property
    def _binary_cache(self) -> Path:
        return self.paths.cache / "host" / "qemu"

    def versions(self) -> Versions:
        import pyvirt
        from pyvirt.host import qemu_binaries

        binary = qemu_binaries.find_qemu_binaries().get("x86_64")
        if binary is None:
            return Versions(pyvirt.__version__, None, None)
        v = qemu_binaries.qemu_version(binary)
        return Versions(pyvirt.__version__, f"{v.major}.{v.minor}.{v.micro}", str(binary))

    def capabilities(self) -> str:
        from pyvirt.host.capabilities import capabilities

        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return capabilities(cache_dir=self._binary_cache, kvm_cache_path=self._kvm_cache)

    def validate(self) -> list[Check]:
        from pyvirt.host.validate import host_validate

        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return host_validate(kvm_cache_path=self._kvm_cache)

    @staticmethod
    def format_checks(checks: list[Check]) -> str:
        """The checks laid out like virt-host-validate's output."""
        from pyvirt.host.validate import format_checks

        return format_checks(checks)

    def default_domain_type(self) -> str:
        """'kvm' only when /dev/kvm works and the probe measured it hardware-fast."""
        from pyvirt.host.kvm import default_domain_type

        self._kvm_cache.parent.mkdir(parents=True, exist_ok=True)
        return default_domain_type(cache_path=self._kvm_cache)
