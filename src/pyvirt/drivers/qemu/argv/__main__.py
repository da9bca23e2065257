"""``python -m pyvirt.drivers.qemu.argv FILE``: print the QEMU command line of a domain XML.

The output is shell text, one option per line, like ``virsh domxml-to-native qemu-argv``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from pyvirt.drivers.qemu.argv.builder import build_argv
from pyvirt.drivers.qemu.argv.context import ArgvContext
from pyvirt.errors import PyvirtError
from pyvirt.model.domain import Domain


def format_argv(argv: list[str]) -> str:
    """Render *argv* as shell text with one option (and its value) per line."""
    lines: list[str] = []
    for arg in argv:
        if arg.startswith("-") and lines:
            lines.append(shlex.quote(arg))
        elif lines and lines[-1].startswith("-") and " " not in lines[-1]:
            lines[-1] += " " + shlex.quote(arg)
        else:
            lines.append(shlex.quote(arg))
    return " \\\n".join(lines)


def main(args: list[str] | None = None) -> int:
    """Run the command; returns the exit status."""
    args = sys.argv[1:] if args is None else args
    if len(args) != 1:
        sys.stderr.write("usage: python -m pyvirt.drivers.qemu.argv DOMAIN.xml\n")
        return 2
    try:
        domain = Domain.from_xml(Path(args[0]).read_bytes())
        argv = build_argv(domain, ArgvContext.for_domain(domain.name))
    except PyvirtError as err:
        sys.stderr.write(f"error: {err}\n")
        if err.hint:
            sys.stderr.write(f"hint: {err.hint}\n")
        return 1
    except OSError as err:
        sys.stderr.write(f"error: cannot read '{args[0]}': {err.strerror}\n")
        return 1
    sys.stdout.write(format_argv(argv) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
