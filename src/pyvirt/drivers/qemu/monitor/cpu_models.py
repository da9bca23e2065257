"""Typed QMP commands about what a QEMU binary offers: CPU models and their features,
machine types, QOM types and commands (``cpu-models``, ``domcapabilities``, CPU baselines)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pyvirt.drivers.qemu.monitor.base import Commands


@dataclass(frozen=True)
class CpuDefinition:
    """One entry of ``query-cpu-definitions``.

    :ivar unavailable: features this accelerator cannot give the model (empty: usable)
    :ivar alias_of: the versioned model this name stands for (``Skylake-Client-v1``)
    """

    name: str
    unavailable: tuple[str, ...]
    alias_of: str | None
    static: bool
    migration_safe: bool
    deprecated: bool

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> CpuDefinition:
        """Parse one member of QEMU's reply."""
        return cls(
            name=str(raw["name"]),
            unavailable=tuple(str(f) for f in raw.get("unavailable-features") or ()),
            alias_of=str(raw["alias-of"]) if raw.get("alias-of") else None,
            static=bool(raw.get("static", False)),
            migration_safe=bool(raw.get("migration-safe", False)),
            deprecated=bool(raw.get("deprecated", False)),
        )


@dataclass(frozen=True)
class MachineInfo:
    """One entry of ``query-machines``."""

    name: str
    alias: str | None
    default: bool
    cpu_max: int
    deprecated: bool

    @classmethod
    def from_wire(cls, raw: dict[str, Any]) -> MachineInfo:
        """Parse one member of QEMU's reply."""
        return cls(
            name=str(raw["name"]),
            alias=str(raw["alias"]) if raw.get("alias") else None,
            default=bool(raw.get("is-default", False)),
            cpu_max=int(raw.get("cpu-max", 1)),
            deprecated=bool(raw.get("deprecated", False)),
        )


class CpuModelCommands(Commands):
    """CPU model definitions and expansions, machine types, QOM types, the command list."""

    def query_cpu_definitions(self) -> list[CpuDefinition]:
        """Every CPU model this QEMU offers, with what the accelerator cannot give it."""
        return [CpuDefinition.from_wire(d) for d in self._call("query-cpu-definitions")]

    def cpu_model_expansion(self, model: str, *, full: bool = False) -> dict[str, Any]:
        """The properties of CPU ``model`` (``query-cpu-model-expansion``): the ``static``
        expansion (a migration-safe base plus features, vendor, family...) or the ``full``
        one (every property, as the accelerator would run it). Features are booleans."""
        reply = self._call(
            "query-cpu-model-expansion",
            {"type": "full" if full else "static", "model": {"name": model}},
        )
        return dict(reply["model"].get("props") or {})

    def query_machines(self) -> list[MachineInfo]:
        """Every machine type, with its alias and maximum vCPU count."""
        return [MachineInfo.from_wire(m) for m in self._call("query-machines")]

    def qom_type_names(self) -> list[str]:
        """The names of every QOM type (devices, objects, backends) compiled in."""
        return [str(t["name"]) for t in self._call("qom-list-types")]

    def command_names(self) -> list[str]:
        """The names of every QMP command this QEMU accepts."""
        return [str(c["name"]) for c in self._call("query-commands")]
