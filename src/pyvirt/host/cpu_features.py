"""CPU definitions as sets of QEMU feature names: baseline and compare (pure, no I/O).

QEMU has no baseline command on x86, so pyvirt computes one, as libvirt does with its CPU
map, but from QEMU's own model definitions (the static expansion of each model, see
:mod:`pyvirt.drivers.qemu.probe`):

* a ``<cpu>`` is the set of features of its ``<model>`` plus the ``require``/``force``
  features, minus the ``disable``/``forbid`` ones; a ``<cpu>`` without policies (the host
  CPU of ``capabilities``) is its model plus every listed feature;
* the **baseline** of several CPUs is the newest model (the one with the most features)
  whose features every CPU has, plus the features they all have beyond that model;
* **compare** says whether the host has every feature a CPU needs (``superset``), exactly
  those (``identical``), or lacks some or has a forbidden one (``incompatible``).

Feature names are QEMU's (``sse4.1``, ``lahf-lm``, ``avx512-bf16``); ``/proc/cpuinfo`` and
libvirt spellings are translated by :func:`qemu_feature_name`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from pyvirt.errors import InvalidConfigError, UnsupportedError


def _attr(value: str) -> str:
    """An XML attribute value in single quotes, as libvirt writes them."""
    return "'" + escape(value, {"'": "&apos;"}) + "'"


__all__ = [
    "Baseline",
    "Catalog",
    "CpuDef",
    "Verdict",
    "baseline",
    "compare",
    "cpu_features",
    "host_features",
    "parse_cpus",
    "qemu_feature_name",
]

#: /proc/cpuinfo or libvirt spellings that are not QEMU's with ``_`` turned into ``-``
_SPELLING = {
    "sse4_1": "sse4.1",
    "sse4_2": "sse4.2",
    "sse4-1": "sse4.1",
    "sse4-2": "sse4.2",
    "tsc_deadline_timer": "tsc-deadline",
    "pclmuldq": "pclmulqdq",
    "sse3": "pni",
    "ds_cpl": "ds-cpl",
    "cr8_legacy": "cr8legacy",
    "avx512_bitalg": "avx512bitalg",
    "avx512_vbmi2": "avx512vbmi2",
    "avx512_vnni": "avx512vnni",
}
#: features a hypervisor gives every guest whatever the host's cpuinfo says
EMULATED = frozenset({"hypervisor", "x2apic", "tsc-deadline"})
#: libvirt's vendor names and QEMU's CPUID vendor strings
VENDORS = {"Intel": "GenuineIntel", "AMD": "AuthenticAMD", "Hygon": "HygonGenuine"}
_NOT_MODELS = frozenset({"host", "max", "base"})
_VERSIONED = re.compile(r"-v\d+$")


def qemu_feature_name(name: str) -> str:
    """QEMU's name of a CPU feature written the cpuinfo or libvirt way."""
    name = name.strip()
    return _SPELLING.get(name, _SPELLING.get(name.replace("_", "-"), name.replace("_", "-")))


@dataclass(frozen=True)
class Catalog:
    """The CPU models one QEMU offers, as feature sets.

    :ivar features: each model's features (static expansion)
    :ivar vendors: each model's CPUID vendor string
    :ivar aliases: unversioned name -> versioned model (``Skylake-Client`` -> ``...-v1``)
    :ivar known: every feature name QEMU knows
    :ivar usable: models the accelerator can run (``None``: all)
    """

    features: Mapping[str, frozenset[str]]
    vendors: Mapping[str, str] = field(default_factory=dict)
    aliases: Mapping[str, str] = field(default_factory=dict)
    known: frozenset[str] = frozenset()
    usable: frozenset[str] | None = None

    def canonical(self, name: str) -> str:
        """QEMU's spelling of feature ``name`` (cpuinfo's ``avx512_vnni`` is ``avx512vnni``,
        ``lahf_lm`` is ``lahf-lm``), tried against the names QEMU knows."""
        first = qemu_feature_name(name)
        if not self.known or first in self.known:
            return first
        for guess in (name, name.replace("_", ""), first.replace("-", "")):
            if guess in self.known:
                return guess
        return first

    def candidates(self) -> list[str]:
        """Models a baseline may name: no ``host``/``max``/``base``, and an unversioned name
        in place of the versioned model it stands for."""
        targets = set(self.aliases.values())
        return [
            n for n in self.features
            if n not in _NOT_MODELS and n not in targets
            and (self.usable is None or n in self.usable)
        ]  # fmt: skip


@dataclass(frozen=True)
class CpuDef:
    """One ``<cpu>`` element, feature names in QEMU's spelling.

    :ivar policies: feature -> policy (``require``, ``force``, ``optional``, ``disable``,
        ``forbid``); a feature listed without a policy is ``require``
    :ivar complete: the features are the whole set, not extras over the model: a host CPU
        whose list has no policies and names ``fpu`` (as pyvirt's ``capabilities`` and
        ``/proc/cpuinfo`` list them), so the model is only a name
    """

    mode: str = "custom"
    model: str | None = None
    vendor: str | None = None
    arch: str | None = None
    policies: Mapping[str, str] = field(default_factory=dict)
    complete: bool = False


def parse_cpus(root: object) -> list[CpuDef]:
    """Every ``<cpu>`` under (or at) an lxml element: a CPU file, a domain, capabilities, or
    several CPUs concatenated in one document.

    :raises InvalidConfigError: no ``<cpu>`` element
    """
    from lxml import etree

    assert isinstance(root, etree._Element)
    out: list[CpuDef] = []
    for el in root.iter("cpu"):
        if el.get("id") is not None:
            continue  # a NUMA cell's <cpu id=...>, not a CPU definition
        model_el = el.find("model")
        policies: dict[str, str] = {}
        any_policy = False
        for f in el.findall("feature"):
            name = f.get("name")
            if name:
                policies[qemu_feature_name(name)] = f.get("policy") or "require"
                any_policy = any_policy or f.get("policy") is not None
        out.append(
            CpuDef(
                mode=el.get("mode") or "custom",
                model=(model_el.text or "").strip() or None if model_el is not None else None,
                vendor=(el.findtext("vendor") or "").strip() or None,
                arch=(el.findtext("arch") or "").strip() or None,
                policies=policies,
                complete=not any_policy and "fpu" in policies,
            )
        )
    if not out:
        raise InvalidConfigError(
            "no <cpu> element found", hint="give a file with one or more <cpu> elements"
        )
    return out


def cpu_features(
    cpu: CpuDef, catalog: Catalog, host: frozenset[str] | None = None
) -> frozenset[str]:
    """The features ``cpu`` asks for (``host-passthrough``/``host-model``: ``host``'s).

    :raises InvalidConfigError: a model QEMU does not know (unless the features are listed in
        full), or a host CPU mode without a host
    """
    if cpu.mode in ("host-passthrough", "host-model", "maximum"):
        if host is None:
            raise InvalidConfigError(f"a <cpu mode='{cpu.mode}'> has no fixed feature set")
        return host
    base: frozenset[str] = frozenset()
    if cpu.model and not cpu.complete:
        known = catalog.features.get(cpu.model)
        if known is None:
            raise InvalidConfigError(
                f"CPU model '{cpu.model}' is not known to QEMU",
                hint="'pyvirt cpu-models x86_64' lists the models",
            )
        base = known
    # a complete list (a host CPU as pyvirt's capabilities show it) is the whole truth: its
    # model only names it, and may be one this QEMU predates (SapphireRapids and QEMU 7.2)
    named = {catalog.canonical(f): p for f, p in cpu.policies.items()}
    if catalog.known:  # cpuinfo-only flags (constant_tsc, nopl) are not CPU model features
        named = {f: p for f, p in named.items() if f in catalog.known}
    add = {f for f, p in named.items() if p in ("require", "force")}
    drop = {f for f, p in named.items() if p in ("disable", "forbid")}
    return frozenset((base | add) - drop)


def host_features(flags: Iterable[str], catalog: Catalog) -> frozenset[str]:
    """The host's features from ``/proc/cpuinfo`` flags: QEMU's names of those QEMU knows,
    plus the ones a hypervisor always emulates (:data:`EMULATED`)."""
    names = {catalog.canonical(f) for f in flags} | EMULATED
    return frozenset(names & catalog.known) if catalog.known else frozenset(names)


def _vendor(cpu: CpuDef, catalog: Catalog) -> str | None:
    if cpu.vendor:
        return VENDORS.get(cpu.vendor, cpu.vendor)
    if cpu.model:
        return catalog.vendors.get(cpu.model) or None
    return None


@dataclass(frozen=True)
class Baseline:
    """A baseline CPU: a model and the features beyond it (QEMU's names)."""

    model: str
    vendor: str | None
    features: tuple[str, ...]

    def to_xml(self) -> str:
        """libvirt's ``<cpu mode='custom' match='exact'>`` (what ``cpu-baseline`` prints)."""
        lines = [
            "<cpu mode='custom' match='exact'>",
            f"  <model fallback='forbid'>{escape(self.model)}</model>",
        ]
        if self.vendor:
            libvirt_vendor = {v: k for k, v in VENDORS.items()}.get(self.vendor, self.vendor)
            lines.append(f"  <vendor>{escape(libvirt_vendor)}</vendor>")
        lines += [f"  <feature policy='require' name={_attr(f)}/>" for f in self.features]
        lines.append("</cpu>")
        return "\n".join(lines) + "\n"

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"model": self.model, "vendor": self.vendor, "features": list(self.features)}


def baseline(
    cpus: Sequence[CpuDef], catalog: Catalog, host: frozenset[str] | None = None
) -> Baseline:
    """The newest model every CPU in ``cpus`` supports, plus their common extra features.

    :param host: the host's features (for ``host-model``/``host-passthrough`` inputs)
    :raises InvalidConfigError: no CPU given, or an unknown model
    :raises UnsupportedError: the CPUs share no model (different vendors' features)
    """
    if not cpus:
        raise InvalidConfigError("no CPU to compute a baseline of")
    common = frozenset.intersection(*(cpu_features(c, catalog, host) for c in cpus))
    vendors = {_vendor(c, catalog) for c in cpus} - {None}
    vendor = vendors.pop() if len(vendors) == 1 else None
    best: tuple[int, int, str] | None = None
    for name in catalog.candidates():
        feats = catalog.features[name]
        if not feats <= common:
            continue
        if vendor and catalog.vendors.get(name) not in (None, "", vendor):
            continue
        # more features first; then an unversioned, shorter name
        rank = (len(feats), -(len(name) + 100 * bool(_VERSIONED.search(name))), name)
        if best is None or rank[:2] > best[:2]:
            best = rank
    if best is None:
        raise UnsupportedError(
            "the CPUs have no CPU model in common",
            hint="compare their vendors and features; a baseline needs a shared model",
        )
    model = best[2]
    extra = sorted(common - catalog.features[model])
    return Baseline(model, vendor or catalog.vendors.get(model) or None, tuple(extra))


@dataclass(frozen=True)
class Verdict:
    """The result of :func:`compare`: ``identical``, ``superset`` or ``incompatible``.

    :ivar missing: features the CPU needs that the host lacks
    :ivar forbidden: features the CPU forbids that the host has
    """

    result: str
    missing: tuple[str, ...] = ()
    forbidden: tuple[str, ...] = ()
    reason: str = ""

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {
            "result": self.result,
            "missing": list(self.missing),
            "forbidden": list(self.forbidden),
            "reason": self.reason,
        }


def compare(
    cpu: CpuDef, host: frozenset[str], catalog: Catalog, host_vendor: str | None
) -> Verdict:
    """Whether the host (features ``host``, CPUID vendor ``host_vendor``) can run ``cpu``."""
    if cpu.mode in ("host-passthrough", "host-model", "maximum"):
        return Verdict("identical")
    vendor = _vendor(cpu, catalog)
    if cpu.vendor and host_vendor and vendor != host_vendor:
        return Verdict("incompatible", reason=f"vendor {cpu.vendor} is not the host's")
    wanted = cpu_features(cpu, catalog)
    missing = tuple(sorted(wanted - host))
    forbidden = tuple(
        sorted(
            catalog.canonical(f) for f, p in cpu.policies.items()
            if p == "forbid" and catalog.canonical(f) in host
        )
    )  # fmt: skip
    if missing or forbidden:
        parts = []
        if missing:
            parts.append("the host lacks " + ", ".join(missing))
        if forbidden:
            parts.append("the host has forbidden " + ", ".join(forbidden))
        return Verdict("incompatible", missing, forbidden, "; ".join(parts))
    return Verdict("identical" if wanted == host else "superset")
