"""The OpenAPI document of pyvirtd's REST API, generated from the routes (no daemon runs).

``python -m pyvirt.daemon.openapi > docs/openapi.json`` regenerates the checked-in copy;
``tests/unit/daemon/test_openapi.py`` fails when the two differ.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["document", "main", "render"]


def document() -> dict[str, Any]:
    """The OpenAPI document of the application every feature module makes."""
    import pyvirt.api
    from pyvirt.daemon.app import create_app
    from pyvirt.daemon.context import Daemon, DaemonConfig
    from pyvirt.state.paths import StatePaths

    saved = os.environ.get("PYVIRT_STATE_DIR")
    with tempfile.TemporaryDirectory(prefix="pyvirt-openapi-") as root:
        # an empty state directory: building the app opens nothing, but never the host's
        os.environ["PYVIRT_STATE_DIR"] = root
        try:
            conn = pyvirt.api.open("pyvirt:///embed")
            daemon = Daemon(DaemonConfig(StatePaths.from_root(Path(root))), conn)
            doc: dict[str, Any] = create_app(daemon).openapi()
        finally:
            if saved is None:
                del os.environ["PYVIRT_STATE_DIR"]
            else:
                os.environ["PYVIRT_STATE_DIR"] = saved
    return doc


def render() -> str:
    """The document as the checked-in ``docs/openapi.json`` holds it (sorted, indented)."""
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    """Print the document on stdout."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
