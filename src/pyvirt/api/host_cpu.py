"""CPU models and CPU facts on ``conn.host``: ``cpu-models``, ``domcapabilities``,
``cpu-baseline``, ``cpu-compare``, ``hypervisor-cpu-baseline`` and ``cpu-stats``.

>>> [m.name for m in conn.host.cpu_models("x86_64")][:2]
['486', '486-v1']
>>> print(conn.host.cpu_baseline(open("cpus.xml").read()).to_xml())
>>> conn.host.cpu_compare(xml).result
'superset'

Results: :class:`CpuModel` (a QEMU model with ``usable``), :class:`CpuBaseline` (``to_xml()``
gives libvirt's ``<cpu>``), :class:`CpuVerdict` and :class:`CpuUsage` (nanoseconds).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyvirt.drivers.qemu.monitor.cpu_models import CpuDefinition as CpuModel
from pyvirt.errors import UnsupportedError
from pyvirt.host.cpu_features import Baseline as CpuBaseline
from pyvirt.host.cpu_features import Verdict as CpuVerdict
from pyvirt.host.cpu_usage import CpuUsage

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.host.cpu import CpuFacts

# lazy: the service (and with it the QEMU probe) loads only when a CPU method is called

__all__ = ["CpuBaseline", "CpuModel", "CpuUsage", "CpuVerdict", "HostCpuMixin"]


class HostCpuMixin:
    """The CPU methods of :class:`pyvirt.api.host.Host`."""

    _service: ServiceConnection

    @property
    def _this_host(self) -> ServiceConnection:
        """The service of this host (``None`` on a connection to a pyvirtd elsewhere)."""
        service: ServiceConnection | None = self._service
        if service is None:
            raise UnsupportedError(
                "CPU model and cpu-stats verbs work only on the host itself",
                hint="run pyvirt on the daemon's host",
            )
        return service

    @property
    def _cpu(self) -> CpuFacts:
        from pyvirt.service.host.cpu import CpuFacts  # lazy

        return CpuFacts(self._this_host.paths)

    def cpu_models(self, arch: str) -> list[CpuModel]:
        """``cpu-models ARCH``: the CPU models QEMU offers, sorted by name.

        :raises NotFoundError: no QEMU for ``arch``
        """
        return sorted(self._cpu.models(arch), key=lambda m: m.name.lower())

    def domain_capabilities(
        self,
        *,
        virttype: str | None = None,
        emulatorbin: str | None = None,
        arch: str | None = None,
        machine: str | None = None,
    ) -> str:
        """``domcapabilities``: libvirt's ``<domainCapabilities>`` XML for one emulator,
        machine type and virttype (defaults: this arch's QEMU, ``pc``, kvm when usable).

        :raises NotFoundError: no such emulator or machine type
        :raises UnsupportedError: kvm where KVM is not usable
        """
        return self._cpu.domcapabilities(
            virttype=virttype, emulatorbin=emulatorbin, arch=arch, machine=machine
        )

    def cpu_baseline(self, xml: str, *, features: bool = False) -> CpuBaseline:
        """``cpu-baseline``: the newest CPU model all ``<cpu>`` elements in ``xml`` support,
        plus their common features (``features``: the model's features listed too).

        :raises InvalidConfigError: bad XML, no ``<cpu>``, an unknown model
        :raises UnsupportedError: the CPUs share no model
        """
        return self._cpu.baseline(xml, features=features)

    def hypervisor_cpu_baseline(
        self,
        xml: str,
        *,
        virttype: str | None = None,
        emulatorbin: str | None = None,
        arch: str | None = None,
        machine: str | None = None,
        features: bool = False,
    ) -> CpuBaseline:
        """``hypervisor-cpu-baseline``: like :meth:`cpu_baseline`, limited to what QEMU can
        run under the virttype's accelerator.

        :raises InvalidConfigError: bad XML, an unknown model
        :raises NotFoundError: no such emulator or machine type
        :raises UnsupportedError: no shared model
        """
        return self._cpu.hypervisor_baseline(
            xml,
            virttype=virttype,
            emulatorbin=emulatorbin,
            arch=arch,
            machine=machine,
            features=features,
        )

    def cpu_compare(self, xml: str) -> CpuVerdict:
        """``cpu-compare``: whether the host CPU can run the CPU in ``xml``
        (``identical``, ``superset`` or ``incompatible`` with the missing features).

        :raises InvalidConfigError: bad XML, no ``<cpu>``, an unknown model
        """
        return self._cpu.compare(xml)

    def cpu_stats(self, domain: str) -> CpuUsage:
        """``cpu-stats``: a running domain's CPU time per host CPU and in total (ns).

        :raises NotFoundError: no such domain
        :raises InvalidStateError: it is not running
        """
        return self._cpu.cpu_stats(self._this_host.domains, domain)
