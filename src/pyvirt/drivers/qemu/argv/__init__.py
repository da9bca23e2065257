"""Pure lowering of a domain definition to a QEMU command line.

``build_argv(domain, ctx)`` is the entry point; ``ArgvContext`` carries every host- and
run-specific input; ``qemu_opts``/``json_opts`` are the only ways option text is built.
"""

from pyvirt.drivers.qemu.argv.builder import Build, build_argv, required_files
from pyvirt.drivers.qemu.argv.context import ArgvContext
from pyvirt.drivers.qemu.argv.opts import json_opts, qemu_opts
from pyvirt.drivers.qemu.argv.registry import lowering_for, lowers, registered_kinds

__all__ = [
    "ArgvContext",
    "Build",
    "build_argv",
    "json_opts",
    "lowering_for",
    "lowers",
    "qemu_opts",
    "registered_kinds",
    "required_files",
]
