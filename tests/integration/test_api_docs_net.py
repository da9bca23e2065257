"""docs/api.md's network examples, all of them (define, start, leases, update, destroy,
undefine), run through pyvirt.api inside a fresh network namespace; afterwards nothing of the
network is left in the namespace."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.nethelp import netns

pytestmark = [pytest.mark.root]

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _network_section_code() -> str:
    text = DOC.read_text()
    start = text.index("\n## Networks\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return "\n".join(re.findall(r"```python\n(.*?)```", body, re.S))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces)")
def test_network_examples_in_a_namespace(state_root: Path) -> None:
    code = _network_section_code()
    assert "net.start()" in code and "net.destroy()" in code
    env = {**os.environ, "PYVIRT_STATE_DIR": str(state_root)}
    with netns() as ns:
        proc = subprocess.run(
            ["ip", "netns", "exec", ns, sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "lab" in proc.stdout
        links = subprocess.run(
            ["ip", "netns", "exec", ns, "ls", "/sys/class/net"], capture_output=True, text=True
        ).stdout.split()
        assert links == ["lo"], links
        tables = subprocess.run(
            ["ip", "netns", "exec", ns, "nft", "list", "tables"], capture_output=True, text=True
        ).stdout
        assert "pyvirt-" not in tables
