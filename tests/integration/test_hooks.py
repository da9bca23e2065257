"""Lifecycle hooks run around a real QEMU: compile once per plan, launch/stop every start."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from pyvirt.model.domain import Domain
from pyvirt.service import hooks
from pyvirt.service.connection import open_connection
from pyvirt.service.domain.manager import DomainManager
from tests.integration.test_lifecycle import domain_xml

pytestmark = pytest.mark.qemu


class Recorder:
    name = "test-recorder"

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_after_launch = False

    def compile(self, mgr: DomainManager, dom: Domain) -> hooks.HookResult:
        self.calls.append("compile")
        dom.description = "compiled by hook"
        return hooks.HookResult(data={"n": 1})

    def before_launch(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        assert data == {"n": 1}
        self.calls.append("before")

    def after_launch(self, mgr: DomainManager, name: str, pid: int, data: dict[str, Any]) -> None:
        self.calls.append("after")
        if self.fail_after_launch:
            raise RuntimeError("boom")

    def after_stop(self, mgr: DomainManager, name: str, data: dict[str, Any]) -> None:
        self.calls.append("stop")


def test_hook_phases(state_root: Path, tiny_image: Any) -> None:
    from pyvirt.service.domain import lifecycle

    rec = Recorder()
    hooks.register_hook(rec)
    try:
        mgr = open_connection(f"pyvirt:///embed?root={state_root}").domains
        mgr.define(domain_xml(tiny_image, "h"))
        mgr.start("h")
        assert rec.calls == ["compile", "before", "after"]
        assert "compiled by hook" in mgr.dumpxml("h")  # the live definition
        lifecycle.destroy(mgr, "h")
        assert rec.calls[-1] == "stop"
        mgr.start("h")  # cached plan: no compile
        assert rec.calls[-2:] == ["before", "after"] and rec.calls.count("compile") == 1
        lifecycle.destroy(mgr, "h")
        rec.fail_after_launch = True
        with pytest.raises(RuntimeError):
            mgr.start("h")
        time.sleep(0.1)
        assert rec.calls[-1] == "stop"
        assert mgr.status("h").state == "shut off"
    finally:
        hooks._HOOKS.pop(rec.name, None)
