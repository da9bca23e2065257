"""Where the built web console lives, and the headers every page of it is served with.

The bundle is ``web/dist`` of the source tree (``scripts/setup.sh`` builds it with npm and
esbuild); ``PYVIRT_WEB_DIR`` points elsewhere (a packaged copy). Nothing is fetched at run
time: the Content-Security-Policy allows this origin only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["SECURITY_HEADERS", "dist_dir", "resolve"]

#: sent with every page and file of the UI
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
        # xterm.js and noVNC set element styles from script
        "style-src 'self' 'unsafe-inline'; font-src 'self' data:; object-src 'none'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def dist_dir() -> Path:
    """The directory holding ``index.html``, ``app.js``, ``app.css`` ..."""
    env = os.environ.get("PYVIRT_WEB_DIR")
    if env:
        return Path(env)
    # src/pyvirt/daemon/web/static.py -> the repository's web/dist
    return Path(__file__).resolve().parents[4] / "web" / "dist"


def resolve(rel: str) -> Path | None:
    """The file ``rel`` of the bundle, or None (missing, or outside the bundle)."""
    root = dist_dir().resolve()
    if not rel or "\x00" in rel:
        return None
    path = (root / rel).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path
