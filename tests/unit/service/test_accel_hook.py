"""The ``accel`` hook: a type='kvm' domain is refused before QEMU on a host whose KVM is slow."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pyvirt.errors import UnsupportedError
from pyvirt.host import kvm
from pyvirt.host.kvm import KvmDevice, KvmStatus
from pyvirt.model.domain import Domain
from pyvirt.service import hooks
from pyvirt.service.domain import accel


def _dom(dtype: str) -> Domain:
    return Domain.from_xml(f"<domain type='{dtype}'><name>k1</name><memory>65536</memory></domain>")


@pytest.fixture
def mgr(tmp_path: Path) -> Any:
    return SimpleNamespace(paths=SimpleNamespace(cache=tmp_path / "cache"))


def _verdict(monkeypatch: pytest.MonkeyPatch, verdict: str) -> list[Path | None]:
    seen: list[Path | None] = []

    def status(*, cache_path: Path | None = None, **_: object) -> KvmStatus:
        seen.append(cache_path)
        dev = KvmDevice("/dev/kvm", True, True, 12, {})
        return KvmStatus(verdict, True, "KVM runs guest code at 1 loop iterations/s", dev)  # type: ignore[arg-type]

    monkeypatch.setattr(kvm, "kvm_status", status)
    return seen


def test_accel_runs_first() -> None:
    assert next(iter(hooks.HOOK_MODULES)) == "accel"
    assert hooks.hooks(["accel"])[0].name == "accel"


def test_qemu_domains_are_not_checked(monkeypatch: pytest.MonkeyPatch, mgr: Any) -> None:
    seen = _verdict(monkeypatch, "slow")
    assert accel.AccelHook().compile(mgr, _dom("qemu")) is None
    assert seen == []


def test_slow_kvm_is_refused_at_compile_and_before_launch(
    monkeypatch: pytest.MonkeyPatch, mgr: Any
) -> None:
    seen = _verdict(monkeypatch, "slow")
    hook = accel.AccelHook()
    with pytest.raises(UnsupportedError) as exc:
        hook.compile(mgr, _dom("kvm"))
    assert exc.value.message.startswith(
        "domain 'k1' is <domain type='kvm'> but KVM cannot run guests on this host"
    )
    assert "<domain type='qemu'>" in exc.value.message and exc.value.hint is None
    with pytest.raises(UnsupportedError):
        hook.before_launch(mgr, "k1", {"accel": "kvm"})
    assert seen == [kvm.probe_cache(mgr.paths.cache)] * 2


def test_fast_kvm_starts(monkeypatch: pytest.MonkeyPatch, mgr: Any) -> None:
    _verdict(monkeypatch, "fast")
    result = accel.AccelHook().compile(mgr, _dom("kvm"))
    assert result is not None and result.data == {"accel": "kvm"}
    accel.AccelHook().before_launch(mgr, "k1", result.data)
