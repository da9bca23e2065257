"""The CPU model commands of the monitor and what the probe collects, against a fake QMP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pyvirt.drivers.qemu import probe
from pyvirt.drivers.qemu.qmp import Monitor
from pyvirt.errors import NotFoundError
from tests.fakeqmp import FakeQmp

STATIC = {
    "Model-v1": {"fpu": True, "avx": True, "aes": False, "vendor": "GenuineIntel", "family": 6},
    "qemu64-v1": {"fpu": True, "avx": False, "aes": False, "vendor": "AuthenticAMD"},
}


def expansion(args: dict[str, Any]) -> dict[str, Any]:
    name = args["model"]["name"]
    if args["type"] == "full":
        # the full expansion also has switches that are not CPUID features
        return {"model": {"name": name, "props": {"fpu": True, "aes": True, "check": True}}}
    return {"model": {"name": "base", "props": STATIC[name]}}


def test_collect_asks_each_model_once_and_resolves_aliases(fake_qmp: FakeQmp) -> None:
    fake_qmp.on("query-cpu-definitions", [
        {"name": "max", "unavailable-features": [], "static": False},
        {"name": "Model", "alias-of": "Model-v1", "unavailable-features": ["x2apic"]},
        {"name": "Model-v1", "unavailable-features": ["x2apic"], "migration-safe": True},
        {"name": "qemu64-v1", "unavailable-features": []},
    ])  # fmt: skip
    fake_qmp.on_call("query-cpu-model-expansion", expansion)
    fake_qmp.on("query-machines", [
        {"name": "pc-i440fx-7.2", "alias": "pc", "is-default": True, "cpu-max": 255},
        {"name": "pc-q35-7.2", "alias": "q35", "cpu-max": 288},
    ])  # fmt: skip
    fake_qmp.on("qom-list-types", [{"name": "virtio-blk-pci"}, {"name": "VGA"}])
    fake_qmp.on("query-commands", [{"name": "query-vnc"}])
    with Monitor(fake_qmp.path) as mon:
        offer = probe._collect(mon, "/usr/bin/qemu-system-x86_64", "tcg")
    asked = [c["model"]["name"] for c in fake_qmp.calls("query-cpu-model-expansion")]
    assert asked == ["Model-v1", "qemu64-v1", "max"]
    assert offer.features == {"Model-v1": ("avx", "fpu"), "qemu64-v1": ("fpu",),
                              "Model": ("avx", "fpu")}  # fmt: skip
    assert offer.vendors["Model"] == "GenuineIntel"
    assert offer.known_features == ("aes", "avx", "fpu")
    assert offer.accel_features == ("aes", "fpu")  # "check" is not a CPU feature
    assert offer.model("Model") is not None and offer.model("Model").unavailable == ("x2apic",)
    assert [(m.name, m.alias, m.default, m.cpu_max) for m in offer.machines] == [
        ("pc-i440fx-7.2", "pc", True, 255), ("pc-q35-7.2", "q35", False, 288),
    ]  # fmt: skip
    assert offer.types == ("VGA", "virtio-blk-pci") and offer.commands == ("query-vnc",)


def test_probe_of_a_missing_binary(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="not found"):
        probe.probe(tmp_path / "qemu-system-x86_64")


def test_probe_answers_from_its_disk_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = tmp_path / "qemu-system-x86_64"
    binary.write_text("#!/bin/sh\nexit 1\n")
    offer = probe.QemuOffer(str(binary), "tcg", (), {}, {}, (), (), ())
    asked: list[str] = []

    def ask(b: Path, accel: str) -> probe.QemuOffer:
        asked.append(accel)
        return offer

    monkeypatch.setattr(probe, "_ask", ask)
    probe.clear_memory_cache()
    assert probe.probe(binary, cache_dir=tmp_path / "cache") == offer
    probe.clear_memory_cache()
    assert probe.probe(binary, cache_dir=tmp_path / "cache") == offer
    assert asked == ["tcg"]  # the second answer came from the file
    probe.clear_memory_cache()
