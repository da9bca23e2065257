"""Start plans are keyed on the lifecycle hook names: a hook added after a definition was
planned (e.g. the KVM refusal of ``service/domain/accel.py``) makes the old plan stale."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pyvirt.drivers.qemu import plan
from pyvirt.service import hooks
from pyvirt.service.domain import lifecycle

XML = b"<domain type='kvm'><name>d</name></domain>"


def _saved(tmp_path: Path, key: str) -> Path:
    path = tmp_path / "d.json"
    p = plan.StartPlan(key=key, name="d", uuid="u", argv=["/bin/sh"], policy={},
                       emulator_stamp=plan.emulator_stamp("/bin/sh"))  # fmt: skip
    plan.save(path, p)
    return path


def test_the_key_covers_the_hook_names() -> None:
    old = plan.plan_key(XML, hooks=["tuning", "disks"])
    assert plan.plan_key(XML, hooks=["disks", "tuning"]) == old  # order does not matter
    assert plan.plan_key(XML, hooks=["accel", "tuning", "disks"]) != old


def test_a_plan_from_before_a_new_hook_is_not_loaded(tmp_path: Path) -> None:
    before = plan.plan_key(XML, hooks=["tuning", "disks"])
    path = _saved(tmp_path, before)
    assert plan.load(path, before) is not None
    assert plan.load(path, plan.plan_key(XML, hooks=["accel", "tuning", "disks"])) is None


def test_a_plan_of_an_older_format_is_not_loaded(tmp_path: Path) -> None:
    key = plan.plan_key(XML, hooks=hooks.HOOK_MODULES)
    path = _saved(tmp_path, key)
    data = json.loads(path.read_bytes())
    data["version"] = 1
    path.write_text(json.dumps(data))
    assert plan.load(path, key) is None
    assert asdict(plan.StartPlan("k", "n", "u", [], {}))["version"] == plan.PLAN_VERSION > 1


class _Stop(Exception):
    pass


def _start_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """The key ``start`` looks its plan up with (stopped right at the lookup)."""
    seen: list[str] = []

    def load(path: Path, key: str) -> None:
        seen.append(key)
        raise _Stop

    @contextlib.contextmanager
    def locked(name: str) -> Iterator[None]:
        yield

    mgr: Any = SimpleNamespace(
        locked=locked,
        live_record=lambda name, cleanup: None,
        has_managed_save=lambda name: False,
        store=SimpleNamespace(read_bytes=lambda name: XML),
        paths=SimpleNamespace(cache=Path("/nonexistent")),
    )
    monkeypatch.setattr(plan, "load", load)
    with pytest.raises(_Stop):
        lifecycle.start(mgr, "d")
    return seen[0]


def test_start_keys_its_plan_on_the_registered_hooks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "accel" in hooks.HOOK_MODULES
    now = _start_key(monkeypatch)
    assert now == plan.plan_key(XML, hooks=hooks.HOOK_MODULES)
    without = {k: v for k, v in hooks.HOOK_MODULES.items() if k != "accel"}
    monkeypatch.setattr(hooks, "HOOK_MODULES", without)
    assert _start_key(monkeypatch) != now
