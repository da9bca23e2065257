"""The watcher process ends without the interpreter's teardown, after its non-daemon threads
(a run directory's removal) and with its output flushed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CODE = """
import sys, threading, time
from pathlib import Path
from pyvirt.drivers.qemu.watch import exit_now
out = Path(sys.argv[1])
def late():
    time.sleep(0.2)
    out.write_text("done")
threading.Thread(target=late).start()
print("flushed", end="")
exit_now(3)
"""


def test_exit_now_waits_for_threads_and_flushes(tmp_path: Path) -> None:
    marker = tmp_path / "m"
    src = str(Path(__file__).resolve().parents[4] / "src")
    res = subprocess.run([sys.executable, "-c", CODE, str(marker)], capture_output=True,
                         text=True, timeout=30, env={"PYTHONPATH": src})  # fmt: skip
    assert res.returncode == 3, res.stderr
    assert res.stdout == "flushed"
    assert marker.read_text() == "done"
