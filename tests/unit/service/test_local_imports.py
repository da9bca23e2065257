"""Function-local imports in ``service/`` and ``api/`` are there only to keep CLI start-up fast,
and say so.

A function-local import of a pyvirt module carries ``# lazy`` (or its own ``# local import:``
reason) on one of its lines, and a module with ``# lazy`` tags states the reason once in a
top-level ``# lazy:`` comment. Anything else belongs at module level.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[3] / "src" / "pyvirt"
TREES = (SRC / "service", SRC / "api")
#: modules another branch is editing at the moment; to tag once that work is merged
PENDING: set[str] = set()


def _local_pyvirt_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    found: list[ast.Import | ast.ImportFrom] = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if (
                isinstance(node, ast.ImportFrom)
                and (node.level > 0 or (node.module or "").split(".")[0] == "pyvirt")
            ) or (
                isinstance(node, ast.Import)
                and any(a.name.split(".")[0] == "pyvirt" for a in node.names)
            ):
                found.append(node)
    return found


def problems(path: Path, rel: str) -> list[str]:
    """What is wrong with the local imports of one module (empty: nothing)."""
    lines = path.read_text().splitlines()
    out = []
    tagged = False
    for node in _local_pyvirt_imports(ast.parse("\n".join(lines))):
        span = lines[node.lineno - 1 : (node.end_lineno or node.lineno)]
        if any("# lazy" in line for line in span):
            tagged = True
        elif not any("# local import" in line for line in span):
            out.append(f"{rel}:{node.lineno}: untagged local import: {span[0].strip()}")
    if tagged and not any(line.startswith("# lazy:") for line in lines):
        out.append(f"{rel}: '# lazy' tags but no top-level '# lazy: <reason>' comment")
    return out


def test_local_imports_are_tagged() -> None:
    found = []
    for tree in TREES:
        for path in sorted(tree.rglob("*.py")):
            rel = str(path.relative_to(SRC))
            if rel not in PENDING:
                found += problems(path, rel)
    assert not found, "\n".join(found)


def test_the_check_sees_an_untagged_import(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("def f() -> None:\n    from pyvirt import errors\n")
    assert problems(bad, "m.py") == ["m.py:2: untagged local import: from pyvirt import errors"]
    bad.write_text("def f() -> None:\n    from pyvirt import errors  # lazy\n")
    assert problems(bad, "m.py") == [
        "m.py: '# lazy' tags but no top-level '# lazy: <reason>' comment"
    ]
    bad.write_text(
        "# lazy: errors are costly\n\ndef f() -> None:\n    from pyvirt import errors  # lazy\n"
    )
    assert problems(bad, "m.py") == []
