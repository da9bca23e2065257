"""pyvirtd's memory settings: the lean process still has a working uvicorn and FastAPI."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
from pyvirt.daemon.memory import lean_process, trim
lean_process()
import uvicorn
from pyvirt.daemon.server import DaemonServer
assert "click" not in sys.modules and "uvicorn.main" not in sys.modules
assert issubclass(DaemonServer, uvicorn.Server) and uvicorn.Config and uvicorn.__version__
from fastapi import FastAPI
from pydantic import BaseModel
class M(BaseModel):
    x: int
app = FastAPI()
@app.get("/m")
def m() -> M:
    return M(x=1)
assert "/m" in app.openapi()["paths"]
assert "pydantic.v1" not in sys.modules or sys.modules["pydantic.v1"] is None
assert callable(uvicorn.run)  # the rest of uvicorn's names on first use
trim()
print("ok")
"""


def test_lean_process_keeps_uvicorn_and_fastapi_working() -> None:
    out = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
