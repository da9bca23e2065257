"""The wire types of the domain resources (pydantic, so ``/openapi.json`` documents them).

Written by hand to mirror the ``to_json()`` shapes of the public API's value types
(:class:`pyvirt.api.domains.DomainStatus`, :class:`pyvirt.api.domains.DomainInfo`): those
shapes are the contract, so handlers return ``to_json()`` directly (no second validation
of 1000 rows) and a unit test checks that these models and ``to_json()`` name the same
fields. Enums are the API's own (:class:`~pyvirt.api.domains.State`,
:class:`~pyvirt.api.domains.Reason`), so the documented values cannot drift. Request bodies
forbid unknown fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from pyvirt.api.domains import Reason, State

__all__ = [
    "AutostartRequest",
    "DestroyRequest",
    "DomainDefined",
    "DomainInfo",
    "DomainStatus",
    "Redefined",
    "RenameRequest",
    "ShutdownRequest",
    "StartRequest",
    "Undefined",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DomainStatus(BaseModel):
    """``DomainStatus.to_json()``: what ``list`` shows of one domain."""

    name: str
    uuid: str = Field(description="empty for shut-off domains listed with uuids=false")
    id: int | None = Field(description="the running domain's id; null when shut off")
    state: State
    reason: Reason
    persistent: bool
    autostart: bool
    pid: int | None = None
    problem: str | None = Field(
        None, description="why the domain's records cannot be read (state 'unknown')"
    )


class DomainInfo(DomainStatus):
    """``DomainInfo.to_json()``: what ``dominfo`` shows (the status plus the definition's
    summary)."""

    os_type: str
    vcpus: int
    cpu_time: float | None = Field(description="CPU seconds used by QEMU; null when shut off")
    max_memory_kib: int
    used_memory_kib: int
    title: str | None


class DomainDefined(BaseModel):
    """A domain was defined (or created): its name, UUID and the warnings to show."""

    name: str
    uuid: str
    warnings: list[str]


class Redefined(BaseModel):
    """The definition was replaced; the new revision is in the ``ETag`` header."""

    warnings: list[str]


class Undefined(BaseModel):
    """The definition was removed, with the files (``/path``) and volumes (``POOL/VOL``)
    deleted with it."""

    removed: list[str]


class StartRequest(_Request):
    """``start``."""

    paused: bool = Field(False, description="leave the vCPUs stopped (resume runs them)")


class ShutdownRequest(_Request):
    """``shutdown``."""

    mode: list[str] | None = Field(
        None, description="acpi (the power button, default) or agent; several are tried in turn"
    )


class DestroyRequest(_Request):
    """``destroy``."""

    graceful: bool = Field(False, description="give QEMU longer to exit before it is killed")


class RenameRequest(_Request):
    """``domrename``."""

    new_name: str = Field(min_length=1, max_length=200)


class AutostartRequest(_Request):
    """``autostart [--disable]``."""

    enabled: bool
