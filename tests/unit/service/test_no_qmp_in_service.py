"""The driver boundary: QMP and guest agent command names appear only in ``drivers/qemu``.

The names are collected from the driver's own typed methods (``self._call("...")`` in the
monitor, ``self.execute("...")`` in the guest agent), so a new typed method is covered at
once; a service module that writes one of them as a string literal fails this test.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "pyvirt"
DRIVER = SRC / "drivers" / "qemu"
SERVICE = SRC / "service"
_SENT = re.compile(r"""(?:_call|_call_until|execute)\(\s*["']([a-z][a-z0-9_-]+)["']""")
#: the raw passthrough of virsh's qemu-agent-command (the user names the command)
RAW_PASSTHROUGH = {("domain/agent.py", "command")}


def driver_commands() -> set[str]:
    """Every QMP and guest agent command name the driver sends."""
    names: set[str] = set()
    files = [DRIVER / "qmp.py", DRIVER / "agent.py", *sorted((DRIVER / "monitor").glob("*.py"))]
    for path in files:
        names |= set(_SENT.findall(path.read_text()))
    return names


def test_the_driver_names_its_commands() -> None:
    names = driver_commands()
    for expected in (
        "device_add", "netdev_add", "blockdev-add", "query-cpus-fast", "query-pci", "qom-get",
        "balloon", "screendump", "query-status", "quit", "guest-get-fsinfo", "guest-ping",
        "guest-shutdown", "guest-set-user-password",
    ):  # fmt: skip
        assert expected in names
    assert len(names) > 45


def _literals(path: Path) -> list[tuple[int, str]]:
    out = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING and not tok.string.lstrip("rbuRBU").startswith(("f", "F")):
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):
                continue
            if isinstance(value, str):
                out.append((tok.start[0], value))
    return out


def test_service_writes_no_command_name() -> None:
    names = driver_commands()
    found = [
        f"{path.relative_to(SERVICE)}:{line}: {value!r}"
        for path in sorted(SERVICE.rglob("*.py"))
        for line, value in _literals(path)
        if value in names
    ]
    assert found == [], "QMP/agent command names in service/; add a typed driver method"


def test_service_calls_no_raw_execute() -> None:
    found = []
    for path in sorted(SERVICE.rglob("*.py")):
        tree = ast.parse(path.read_text())
        for fn in ast.walk(tree):
            if not isinstance(fn, ast.FunctionDef):
                continue
            if (str(path.relative_to(SERVICE)), fn.name) in RAW_PASSTHROUGH:
                continue
            for node in ast.walk(fn):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in ("execute", "execute_wait_event", "_call")
                ):
                    found.append(f"{path.relative_to(SERVICE)}:{node.lineno} in {fn.name}()")
    assert found == [], "raw monitor/agent calls in service/; add a typed driver method"
