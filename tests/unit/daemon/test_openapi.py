"""The checked-in docs/openapi.json is the document the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from pyvirt.daemon.openapi import document, render

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
REGENERATE = "PYTHONPATH=src python -m pyvirt.daemon.openapi > docs/openapi.json"


def test_checked_in_document_is_current() -> None:
    current = render()
    stored = DOC.read_text() if DOC.exists() else ""
    assert stored == current, (
        f"docs/openapi.json is out of date with the routes; regenerate it with:\n  {REGENERATE}"
    )


def test_document_covers_resources_and_error_shape() -> None:
    doc = document()
    paths = doc["paths"]
    for p in ("/api/v1/networks", "/api/v1/pools/{pool}/volumes/{vol}", "/api/v1/host/nodeinfo",
              "/api/v1/nodedevs/{name}/xml"):  # fmt: skip
        assert p in paths
    assert doc["openapi"].startswith("3.")
    create = paths["/api/v1/pools/{pool}/volumes"]["post"]
    assert "4XX" in create["responses"] and "422" not in create["responses"]
    body = paths["/api/v1/networks"]["post"]["requestBody"]["content"]
    assert "application/xml" in body
    assert set(doc["components"]["schemas"]["ErrorBody"]["properties"]) == {"error", "hint", "code"}
    json.dumps(doc)  # serializable
