"""The registry of device lowerings: one function per model device class.

A lowering turns one device of the domain model into QEMU arguments::

    @lowers(Watchdog)
    def watchdog(dev: Watchdog, b: Build) -> list[str]:
        return ["-device", json_opts({"driver": dev.model, "id": b.alias(dev)})]

Registration is the decorator alone (the ``devices`` package imports all its modules), and
``tests/unit/argv/test_registry.py`` fails when a model device class has no lowering.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from pyvirt.errors import UnsupportedError

if TYPE_CHECKING:
    from pyvirt.drivers.qemu.argv.builder import Build

D = TypeVar("D")
Lowering = Callable[[D, "Build"], list[str]]

_LOWERINGS: dict[type, Callable[[Any, Build], list[str]]] = {}


def lowers(kind: type[D]) -> Callable[[Lowering[D]], Lowering[D]]:
    """Register the decorated function as the QEMU lowering of device class *kind*.

    :param kind: the model class (``Disk``, ``Interface``...)
    :raises ValueError: if *kind* already has a lowering (a programming error)
    """

    def register(fn: Lowering[D]) -> Lowering[D]:
        if kind in _LOWERINGS:
            raise ValueError(f"{kind.__name__} already has a QEMU lowering")
        _LOWERINGS[kind] = fn
        return fn

    return register


def lowering_for(dev: object) -> Callable[[Any, Build], list[str]]:
    """Return the lowering registered for *dev*'s class (or its nearest base class).

    :raises UnsupportedError: when no lowering exists for that kind of device
    """
    for cls in type(dev).__mro__:
        fn = _LOWERINGS.get(cls)
        if fn is not None:
            return fn
    raise UnsupportedError(f"device kind '{type(dev).__name__}' has no QEMU lowering yet")


def registered_kinds() -> frozenset[type]:
    """Return every device class that has a lowering (for the registry meta-test)."""
    return frozenset(_LOWERINGS)
