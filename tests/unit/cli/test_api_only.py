"""The domain-side CLI modules import nothing of pyvirt but pyvirt.api, pyvirt.errors and
pyvirt.cli (function-local imports included), and none uses the untyped ``connection()``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyvirt.cli

CLI = Path(pyvirt.cli.__file__).parent
MODULES = [
    "commands/domain.py", "commands/blk.py", "commands/iface.py", "commands/tune.py",
    "commands/guest.py", "commands/display.py", "commands/clone.py", "commands/install.py",
    "commands/save.py", "editing.py",
]  # fmt: skip
ALLOWED = ("pyvirt.api", "pyvirt.errors", "pyvirt.cli")


def _imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
        elif isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
    return found


@pytest.mark.parametrize("module", MODULES)
def test_cli_module_talks_to_the_api_only(module: str) -> None:
    tree = ast.parse((CLI / module).read_text())
    bad = [
        m
        for m in _imports(tree)
        if m.split(".")[0] == "pyvirt" and not m.startswith(ALLOWED) and m != "pyvirt"
    ]
    assert bad == [], f"{module} imports {bad}"
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert "connection" not in names, f"{module} still calls cli.main.connection()"
