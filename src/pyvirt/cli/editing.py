"""The ``*-edit`` loop shared by edit, net-edit and pool-edit (virsh's behaviour).

Open a temporary copy of the XML in ``$VISUAL``/``$EDITOR``; unchanged → say so; invalid →
print the error and, on a terminal, offer to edit again; otherwise (or when the user says no)
abort with the old definition untouched. ``apply`` defines the new XML and returns the object's
(possibly new) name plus warnings to print.
"""

from __future__ import annotations

import os
import subprocess  # not hostcmd: the user's editor runs on the terminal, output not captured
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import click

from pyvirt.cli.render import warn
from pyvirt.errors import PyvirtError


def edit_loop(
    kind: str, name: str, original: str, apply: Callable[[str], tuple[str, list[str]]]
) -> None:
    """Run the edit loop for object ``name`` of ``kind`` ("Domain", "Network", "Pool")."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    fd, tmp = tempfile.mkstemp(prefix=f"pyvirt-{kind.lower()}-{name}-", suffix=".xml")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(original)
        while True:
            rc = subprocess.call([*editor.split(), tmp])
            if rc != 0:
                raise PyvirtError(f"editor '{editor}' exited with status {rc}; nothing changed")
            text = Path(tmp).read_text()
            if text == original:
                click.echo(f"{kind} '{name}' XML configuration not changed.\n")
                return
            try:
                new_name, warnings = apply(text)
            except PyvirtError as err:
                click.echo(f"error: {err.message}", err=True)
                if sys.stdin.isatty() and click.confirm(
                    "Failed. Try again?", default=True, err=True
                ):
                    continue
                raise PyvirtError(
                    f"edit of {kind.lower()} '{name}' aborted; the definition was not changed"
                ) from None
            warn(warnings)
            click.echo(f"{kind} '{new_name}' XML configuration edited.\n")
            return
    finally:
        os.unlink(tmp)
