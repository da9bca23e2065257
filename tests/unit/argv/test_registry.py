"""Meta-tests: every model device kind has a QEMU lowering and a golden file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyvirt.drivers.qemu.argv import lowering_for, registered_kinds
from pyvirt.drivers.qemu.argv.registry import lowers
from pyvirt.errors import UnsupportedError
from pyvirt.model.devices import DEVICE_CLASSES

DATA = Path(__file__).resolve().parents[2] / "data" / "argv"


@pytest.mark.parametrize("tag", sorted(DEVICE_CLASSES))
def test_every_device_kind_has_a_lowering(tag: str) -> None:
    cls = DEVICE_CLASSES[tag]
    assert any(issubclass(cls, kind) for kind in registered_kinds()), (
        f"<{tag}> ({cls.__name__}) has no QEMU lowering: add drivers/qemu/argv/devices/{tag}.py"
    )
    assert lowering_for(cls()) is not None


@pytest.mark.parametrize("tag", sorted(DEVICE_CLASSES))
def test_every_device_kind_has_a_golden_file(tag: str) -> None:
    assert any(DATA.glob(f"{tag}*.xml")), f"add tests/data/argv/{tag}-<case>.xml and .args"


def test_unknown_device_kind_is_reported() -> None:
    class Gadget:
        pass

    with pytest.raises(UnsupportedError, match="no QEMU lowering"):
        lowering_for(Gadget())


def test_double_registration_is_refused() -> None:
    kind = next(iter(registered_kinds()))
    with pytest.raises(ValueError):
        lowers(kind)(lambda dev, b: [])
