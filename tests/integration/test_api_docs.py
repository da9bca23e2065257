"""docs/api.md runs: every ``python`` code block, section by section, against real QEMU guests.

Each ``## `` section runs in a fresh namespace after the blocks of "## Connecting", with the
state root of the test (``PYVIRT_STATE_DIR``) and the tiny test guest as ``KERNEL``/``INITRD``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.qemu

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"
SETUP = "Connecting"
#: sections run by tests/unit/api/test_docs_resources.py and test_api_docs_net.py instead
ELSEWHERE = ("Storage pools and volumes", "Networks", "The host")
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _split() -> dict[str, list[str]]:
    text = DOC.read_text()
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    out = {"": _BLOCK.findall(parts[0])}
    for title, body in zip(parts[1::2], parts[2::2], strict=True):
        out[title.strip()] = _BLOCK.findall(body)
    return out


SECTIONS = _split()


def test_the_doc_has_the_sections_other_helpers_extend() -> None:
    assert DOC.read_text().startswith("# pyvirt.api\n")
    assert SETUP in SECTIONS and "Domains" in SECTIONS
    assert SECTIONS[SETUP] and SECTIONS["Domains"]


@pytest.mark.parametrize("title", [t for t in SECTIONS if t not in ("", SETUP, *ELSEWHERE)])
def test_doc_section_runs(
    title: str, tiny_image: Any, state_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("PYVIRT_DEFAULT_URI", "LIBVIRT_DEFAULT_URI"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(state_root))
    monkeypatch.setenv("KERNEL", str(tiny_image.kernel))
    monkeypatch.setenv("INITRD", str(tiny_image.initrd))
    namespace: dict[str, Any] = {"__name__": f"docs_api_{title}"}
    blocks = [*SECTIONS[""], *SECTIONS[SETUP], *SECTIONS[title]]
    for index, block in enumerate(blocks):
        code = compile(block, f"{DOC.name}[{title}#{index}]", "exec")
        exec(code, namespace)
    assert (state_root / "lib").is_dir()  # the examples used the test's state root
    assert not list((state_root / "run" / "qemu").glob("*/runtime.json")), "a guest was left"
