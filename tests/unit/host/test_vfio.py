"""``nodedev-detach``/``-reattach``/``-reset``: the sysfs steps on a fake tree whose writes a
tiny fake kernel answers (driver_override, unbind, drivers_probe)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pyvirt.errors import InvalidStateError, OperationFailedError, UnsupportedError
from pyvirt.host import vfio
from pyvirt.host.nodedev import PciAddress

ADDR = PciAddress.parse("0000:03:00.0")


class FakeKernel:
    """Answers sysfs writes like the PCI core: binds a probed device to its override, or to
    its original driver when there is none."""

    def __init__(self, root: Path, *, vfio_loaded: bool = True, iommu: bool = True) -> None:
        self.root = root
        self.writes: list[tuple[str, str]] = []
        self.pci = root / "sys/bus/pci"
        dev = self.pci / "devices" / str(ADDR)
        dev.mkdir(parents=True)
        (dev / "driver_override").write_text("(null)\n")
        (dev / "reset").write_text("")
        for name in ("igb", *(("vfio-pci",) if vfio_loaded else ())):
            (self.pci / "drivers" / name).mkdir(parents=True)
        if iommu:
            (root / "sys/kernel/iommu_groups/15").mkdir(parents=True)
            os.symlink(root / "sys/kernel/iommu_groups/15", dev / "iommu_group")
        self.dev = dev
        self.bind("igb")
        self.refuse_vfio = False

    def bind(self, driver: str | None) -> None:
        link = self.dev / "driver"
        if link.is_symlink():
            link.unlink()
        if driver:
            os.symlink(self.pci / "drivers" / driver, link)

    def write(self, path: Path, value: str) -> None:
        rel = str(path.relative_to(self.root))
        self.writes.append((rel, value))
        if path.name == "driver_override":
            self.dev.joinpath("driver_override").write_text(value.strip() or "(null)")
        elif path.name == "unbind":
            assert value == str(ADDR)
            self.bind(None)
        elif path.name == "drivers_probe":
            override = self.dev.joinpath("driver_override").read_text().strip()
            if override == "vfio-pci" and self.refuse_vfio:
                return
            self.bind("igb" if override == "(null)" else override)
        elif path.name == "reset":
            pass
        else:  # pragma: no cover - the steps write nothing else
            raise AssertionError(rel)


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeKernel:
    k = FakeKernel(tmp_path)
    monkeypatch.setattr(vfio, "write_attr", k.write)
    return k


def driver(k: FakeKernel) -> str:
    return os.path.basename(os.readlink(k.dev / "driver"))


def test_detach_overrides_unbinds_and_probes(kernel: FakeKernel) -> None:
    assert vfio.detach(kernel.root, ADDR) == "igb"
    dev = f"sys/bus/pci/devices/{ADDR}"
    assert kernel.writes == [
        (f"{dev}/driver_override", "vfio-pci"),
        (f"{dev}/driver/unbind", str(ADDR)),
        ("sys/bus/pci/drivers_probe", str(ADDR)),
    ]
    assert driver(kernel) == "vfio-pci"
    kernel.writes.clear()
    assert vfio.detach(kernel.root, ADDR) == "vfio-pci"  # already detached: nothing written
    assert kernel.writes == []


def test_reattach_gives_it_back_to_the_host_driver(kernel: FakeKernel) -> None:
    vfio.detach(kernel.root, ADDR)
    kernel.writes.clear()
    assert vfio.reattach(kernel.root, ADDR) == "igb"
    assert [w[0].rsplit("/", 1)[-1] for w in kernel.writes] == [
        "driver_override", "unbind", "drivers_probe",
    ]  # fmt: skip
    assert kernel.writes[0][1] == "\n"


def test_reset_only_a_detached_device(kernel: FakeKernel) -> None:
    with pytest.raises(InvalidStateError, match="in use by the host driver igb"):
        vfio.reset(kernel.root, ADDR)
    vfio.detach(kernel.root, ADDR)
    vfio.reset(kernel.root, ADDR)
    assert kernel.writes[-1] == (f"sys/bus/pci/devices/{ADDR}/reset", "1")


def test_a_bind_the_kernel_refused_is_an_error_not_a_success(kernel: FakeKernel) -> None:
    kernel.refuse_vfio = True
    with pytest.raises(OperationFailedError, match="bound to no driver, not vfio-pci"):
        vfio.detach(kernel.root, ADDR)


def test_without_vfio_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    k = FakeKernel(tmp_path, vfio_loaded=False)
    monkeypatch.setattr(vfio, "write_attr", k.write)
    for verb in (vfio.detach, vfio.reattach, vfio.reset):
        with pytest.raises(UnsupportedError, match="the kernel has no VFIO") as err:
            verb(k.root, ADDR)
        assert "modprobe vfio-pci" in (err.value.hint or "")
    assert k.writes == [] and driver(k) == "igb"


def test_without_an_iommu_group_detach_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    k = FakeKernel(tmp_path, iommu=False)
    monkeypatch.setattr(vfio, "write_attr", k.write)
    with pytest.raises(UnsupportedError, match="no IOMMU group"):
        vfio.detach(k.root, ADDR)
    assert k.writes == []


def test_write_attr_names_the_file_on_failure(tmp_path: Path) -> None:
    with pytest.raises(OperationFailedError, match="no such file"):
        vfio.write_attr(tmp_path / "missing" / "unbind", "x")
