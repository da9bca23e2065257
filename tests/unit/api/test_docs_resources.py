"""Run the python examples of docs/api.md's resource sections (pools/volumes, networks, the
host) on a temporary state root, so the documentation cannot rot.

Blocks preceded by ``<!-- test: skip ... -->`` (network start/stop: root) are not run. Each
section runs in one namespace, in order, as a reader would paste them.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"
SECTIONS = ("Storage pools and volumes", "Networks", "The host")
_BLOCK = re.compile(r"(<!-- test: skip[^>]*-->\s*)?```python\n(.*?)```", re.S)


def section_blocks(title: str) -> list[str]:
    """The runnable python blocks of the ``## title`` section."""
    text = DOC.read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    body = text[start : end if end != -1 else len(text)]
    return [m.group(2) for m in _BLOCK.finditer(body) if not m.group(1)]


@pytest.mark.parametrize("title", SECTIONS)
def test_doc_examples_run(
    title: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "s"
    monkeypatch.setenv("PYVIRT_STATE_DIR", str(root))
    monkeypatch.delenv("PYVIRT_DEFAULT_URI", raising=False)
    monkeypatch.delenv("LIBVIRT_DEFAULT_URI", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    blocks = section_blocks(title)
    assert blocks, f"no python examples in section {title!r}"
    namespace: dict[str, object] = {"__name__": "__doc__"}
    for block in blocks:
        exec(compile(block, f"docs/api.md ({title})", "exec"), namespace)
    assert capsys.readouterr().out  # the examples print what they show


def test_network_section_skips_only_root_blocks() -> None:
    text = DOC.read_text()
    skipped = re.findall(r"<!-- test: skip[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert skipped and all("start()" in b or "create(" in b for b in skipped)
