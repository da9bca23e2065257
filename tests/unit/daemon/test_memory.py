"""pyvirtd's memory settings: the lean process still has a working uvicorn and FastAPI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CHECK = """
import sys
from pyvirt.daemon.memory import lean_process, trim
lean_process()
import uvicorn
from pyvirt.daemon.server import DaemonServer
assert "click" not in sys.modules and "uvicorn.main" not in sys.modules
assert issubclass(DaemonServer, uvicorn.Server) and uvicorn.Config and uvicorn.__version__
from fastapi import FastAPI
import fastapi.openapi.models as oam
from pydantic import BaseModel
assert not oam.Schema.__pydantic_complete__  # built on first use, not at import
class M(BaseModel):
    x: int
app = FastAPI()
@app.get("/m")
def m() -> M:
    return M(x=1)
assert "/m" in app.openapi()["paths"]
assert oam.OpenAPI.__pydantic_complete__ and BaseModel.model_rebuild.__func__ is not None
class Late(BaseModel):  # pydantic's defaults are back: built at once
    y: int
assert Late.__pydantic_complete__
assert "pydantic.v1" not in sys.modules or sys.modules["pydantic.v1"] is None
assert callable(uvicorn.run)  # the rest of uvicorn's names on first use
trim()
print("ok")
"""


def test_lean_process_keeps_uvicorn_and_fastapi_working() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


DOC_CHECK = """
import sys
from pathlib import Path
from pyvirt.daemon.memory import lean_process
lean_process()
from pyvirt.daemon.openapi import render
sys.stdout.write("same" if render() == Path(sys.argv[1]).read_text() else render())
"""


def test_lean_process_serves_the_same_openapi_document() -> None:
    """The deferred OpenAPI models give the checked-in document byte for byte."""
    doc = Path(__file__).resolve().parents[3] / "docs" / "openapi.json"
    out = subprocess.run([sys.executable, "-c", DOC_CHECK, str(doc)], capture_output=True,
                         text=True)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == "same", "the document differs under lean_process()"
