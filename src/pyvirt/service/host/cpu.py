"""CPU models and host facts for front ends: ``cpu-models``, ``domcapabilities``,
``cpu-baseline``, ``cpu-compare``, ``hypervisor-cpu-baseline``, ``cpu-stats``, and the PCI
detach verbs (``nodedev-detach``, ``nodedev-reattach``, ``nodedev-reset``).

QEMU's models and their features come from :func:`pyvirt.drivers.qemu.probe.probe` (a
``-machine none`` QEMU asked over QMP, cached under ``CACHE/host/qemu``); the host's CPU from
``/proc/cpuinfo`` under the host root; the computing is :mod:`pyvirt.host.cpu_features`.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError, NotFoundError, UnsupportedError
from pyvirt.host import cpu_features as cf
from pyvirt.host import qemu_binaries

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.monitor.cpu_models import CpuDefinition
    from pyvirt.drivers.qemu.probe import QemuOffer
    from pyvirt.host.cpu_usage import CpuUsage
    from pyvirt.service.domain.manager import DomainManager
    from pyvirt.state.paths import StatePaths

__all__ = ["CpuFacts"]

# lazy: each verb loads only what it uses (the QMP probe, the domcaps renderer, /proc readers)

_VIRTTYPES = ("kvm", "qemu")


def _host_root() -> Path:
    return Path(os.environ.get("PYVIRT_HOST_ROOT") or "/")


#: {(id(offer), usable_only): (offer, catalog)} (:meth:`CpuFacts.catalog`)
_CATALOGS: dict[tuple[int, bool], tuple[QemuOffer, cf.Catalog]] = {}


class CpuFacts:
    """What QEMU and the host offer about CPUs, for one connection."""

    def __init__(self, paths: StatePaths) -> None:
        self.paths = paths

    # -- the QEMU binary ------------------------------------------------------------------
    def _binary(self, arch: str | None, emulatorbin: str | None) -> tuple[Path, str]:
        if emulatorbin:
            path = Path(emulatorbin)
            if not path.is_file():
                raise NotFoundError(f"emulator '{emulatorbin}' not found")
            name = path.name.removeprefix("qemu-system-")
            return path, arch or (name if name != path.name else "x86_64")
        arch = arch or _default_arch()
        qemu_arch = {"i686": "i386"}.get(arch, arch)
        binary = qemu_binaries.find_qemu_binaries().get(qemu_arch)
        if binary is None:
            raise NotFoundError(
                f"no QEMU emulator for architecture '{arch}'",
                hint=f"install qemu-system-{qemu_arch} or name one with --emulatorbin",
            )
        return binary, arch

    def offer(
        self, virttype: str = "qemu", *, arch: str | None = None, emulatorbin: str | None = None
    ) -> tuple[QemuOffer, str]:
        """The probe of the binary for ``arch`` under ``virttype`` (kvm/qemu), and the arch.

        :raises InvalidConfigError: an unknown virttype
        :raises UnsupportedError: ``kvm`` on a host without usable KVM
        """
        from pyvirt.drivers.qemu.probe import probe  # lazy

        if virttype not in _VIRTTYPES:
            raise InvalidConfigError(
                f"unknown virttype '{virttype}'", hint="use --virttype kvm or --virttype qemu"
            )
        if virttype == "kvm" and not os.access("/dev/kvm", os.R_OK | os.W_OK):
            raise UnsupportedError(
                "KVM is not usable here (/dev/kvm is missing or not accessible)",
                hint="use --virttype qemu",
            )
        binary, arch = self._binary(arch, emulatorbin)
        accel = "kvm" if virttype == "kvm" else "tcg"
        return probe(binary, accel, cache_dir=self.paths.cache / "host" / "qemu"), arch

    def catalog(self, offer: QemuOffer, *, usable_only: bool = False) -> cf.Catalog:
        """The models of ``offer`` as feature sets (made once per probe in this process:
        :func:`~pyvirt.drivers.qemu.probe.probe` keeps one offer per binary)."""
        key = (id(offer), usable_only)
        kept = _CATALOGS.get(key)
        if kept is not None and kept[0] is offer:
            return kept[1]
        made = self._make_catalog(offer, usable_only)
        if len(_CATALOGS) > 8:
            _CATALOGS.clear()
        _CATALOGS[key] = (offer, made)  # the offer stays referenced: its id is not reused
        return made

    def _make_catalog(self, offer: QemuOffer, usable_only: bool) -> cf.Catalog:
        return cf.Catalog(
            features={k: frozenset(v) for k, v in offer.features.items()},
            vendors=dict(offer.vendors),
            aliases={m.name: m.alias_of for m in offer.models if m.alias_of},
            known=frozenset(offer.known_features),
            usable=frozenset(m.name for m in offer.models if not m.unavailable)
            if usable_only
            else None,
        )

    def _default_virttype(self) -> str:
        """``kvm`` where KVM works and is hardware-fast, else ``qemu`` (as new domains get)."""
        from pyvirt.service.host.facts import HostManager  # lazy

        return HostManager(self.paths).default_domain_type()

    def _x86_only(self, arch: str) -> None:
        if arch not in ("x86_64", "i686"):
            raise UnsupportedError(
                f"CPU models of architecture '{arch}' are not supported",
                hint="pyvirt computes CPU models for x86_64",
            )

    # -- commands ---------------------------------------------------------------------------
    def models(self, arch: str) -> list[CpuDefinition]:
        """``cpu-models ARCH``: the CPU models QEMU offers (``host``/``max``/``base`` left out).

        :raises NotFoundError: no QEMU for ``arch``
        """
        offer, _ = self.offer("qemu", arch=arch)
        return [m for m in offer.models if m.name not in ("host", "max", "base")]

    def domcapabilities(
        self,
        *,
        virttype: str | None = None,
        emulatorbin: str | None = None,
        arch: str | None = None,
        machine: str | None = None,
    ) -> str:
        """``domcapabilities``: libvirt's ``<domainCapabilities>`` XML.

        :raises NotFoundError: no such emulator or machine type
        :raises UnsupportedError: kvm asked where KVM is not usable
        """
        from pyvirt.host.domcaps import HostFacts, domain_capabilities, read_firmware  # lazy
        from pyvirt.host.vfio import vfio_available  # lazy

        kvm = os.access("/dev/kvm", os.R_OK | os.W_OK)
        virttype = virttype or self._default_virttype()
        offer, arch = self.offer(virttype, arch=arch, emulatorbin=emulatorbin)
        canonical = _machine(offer, machine)
        root = _host_root()
        host_model = None
        if arch in ("x86_64", "i686"):
            cat = self.catalog(offer, usable_only=True)
            own = frozenset(offer.accel_features)
            try:
                host_model = cf.baseline([cf.CpuDef(policies=dict.fromkeys(own, "require"))], cat)
            except UnsupportedError:
                host_model = None
        sev = (root / "sys/module/kvm_amd/parameters/sev").is_file() and (
            root / "sys/module/kvm_amd/parameters/sev"
        ).read_text().strip() in ("1", "Y")
        facts = HostFacts(
            kvm=kvm,
            vfio=vfio_available(root),
            sev=sev,
            host_model=host_model,
            firmware=read_firmware(root),
        )
        return domain_capabilities(offer, facts, virttype=virttype, arch=arch, machine=canonical)

    def _host_cpu(self, catalog: cf.Catalog) -> tuple[frozenset[str], str | None]:
        from pyvirt.host.cpu import read_host_cpu  # lazy

        cpu = read_host_cpu(_host_root())
        vendor = cf.VENDORS.get(cpu.vendor or "", cpu.vendor)
        return cf.host_features(cpu.flags, catalog), vendor

    def _parse(self, xml: str) -> list[cf.CpuDef]:
        from pyvirt.model.xmltree import parse_xml  # lazy

        text = xml.strip()
        # several <cpu> documents pasted one after another: wrap them
        if text.count("<cpu") > 1 and not text.startswith(("<capabilities", "<domain")):
            text = f"<cpus>{_strip_decl(text)}</cpus>"
        return cf.parse_cpus(parse_xml(text, what="CPU XML"))

    def baseline(self, xml: str, *, features: bool = False) -> cf.Baseline:
        """``cpu-baseline``: the newest model every CPU in ``xml`` supports plus their common
        features (``features``: list the model's features too).

        :raises InvalidConfigError: bad XML, no ``<cpu>``, an unknown model
        :raises UnsupportedError: the CPUs share no model
        """
        offer, arch = self.offer("qemu")
        self._x86_only(arch)
        cat = self.catalog(offer)
        host, _ = self._host_cpu(cat)
        return _expand(cf.baseline(self._parse(xml), cat, host), cat, features)

    def hypervisor_baseline(
        self,
        xml: str,
        *,
        virttype: str | None = None,
        emulatorbin: str | None = None,
        arch: str | None = None,
        machine: str | None = None,
        features: bool = False,
    ) -> cf.Baseline:
        """``hypervisor-cpu-baseline``: a baseline that this QEMU can also run: only models
        usable under the accelerator, only features its CPU (``host``/``max``) has.

        :raises InvalidConfigError: bad XML, an unknown model or machine
        :raises UnsupportedError: the CPUs and the hypervisor share no model
        """
        offer, arch = self.offer(
            virttype or self._default_virttype(), arch=arch, emulatorbin=emulatorbin
        )
        self._x86_only(arch)
        _machine(offer, machine)
        cat = self.catalog(offer, usable_only=True)
        own = frozenset(offer.accel_features)
        cpus = [*self._parse(xml), cf.CpuDef(policies=dict.fromkeys(own, "require"))]
        return _expand(cf.baseline(cpus, cat, own), cat, features)

    def compare(self, xml: str) -> cf.Verdict:
        """``cpu-compare``: can this host's CPU run the (first) CPU in ``xml``?

        :raises InvalidConfigError: bad XML, no ``<cpu>``, an unknown model
        """
        offer, arch = self.offer("qemu")
        self._x86_only(arch)
        cat = self.catalog(offer)
        host, vendor = self._host_cpu(cat)
        return cf.compare(self._parse(xml)[0], host, cat, vendor)

    def cpu_stats(self, domains: DomainManager, ident: str) -> CpuUsage:
        """``cpu-stats``: the CPU time of a running domain's QEMU, per host CPU and in total.

        :raises NotFoundError: no such domain
        :raises InvalidStateError: it is not running
        """
        from pyvirt.errors import InvalidStateError  # lazy
        from pyvirt.host.cpu import read_host_cpu  # lazy
        from pyvirt.host.cpu_usage import read_cpu_usage  # lazy

        name, rec = domains.running(ident)
        root = _host_root()
        online = read_host_cpu(root).online
        ncpus = (max(online) + 1) if online else (os.cpu_count() or 1)
        usage = read_cpu_usage(rec.pid, ncpus, proc=root / "proc", cgroup_root=root)
        if usage is None:
            raise InvalidStateError(f"domain '{name}' is not running", hint="start it first")
        return usage


def _default_arch() -> str:
    machine = platform.machine()
    return {"amd64": "x86_64"}.get(machine, machine)


def _strip_decl(text: str) -> str:
    return text.split("?>", 1)[1] if text.startswith("<?xml") else text


def _machine(offer: QemuOffer, machine: str | None) -> str:
    """The canonical machine type for ``machine`` (``pc``, ``q35``); QEMU's default ``pc``
    when ``None``.

    :raises NotFoundError: the binary has no such machine type
    """
    wanted = machine or "pc"
    for m in offer.machines:
        if m.alias == wanted:
            return m.name
    for m in offer.machines:
        if m.name == wanted:
            return m.name
    if machine is None:
        default = next((m.name for m in offer.machines if m.default), None)
        if default:
            return default
    raise NotFoundError(
        f"machine type '{wanted}' is not offered by {offer.binary}",
        hint=f"'{offer.binary} -machine help' lists them",
    )


def _expand(base: cf.Baseline, cat: cf.Catalog, features: bool) -> cf.Baseline:
    if not features:
        return base
    every = sorted(set(base.features) | cat.features[base.model])
    return cf.Baseline(base.model, base.vendor, tuple(every))


def format_models(models: Sequence[CpuDefinition]) -> list[str]:
    """Model names sorted as virsh lists them (case-insensitively)."""
    return sorted((m.name for m in models), key=str.lower)
