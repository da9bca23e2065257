"""One lowering module per device kind; importing the package registers them all.

:data:`ORDER` is the order device kinds appear on the command line (controllers first, so that
the buses devices plug into already exist).
"""

from __future__ import annotations

import importlib
import pkgutil

#: Device lists of ``Domain.devices`` in command-line order.
ORDER = (
    "memories",
    "controllers",
    "disks",
    "filesystems",
    "interfaces",
    "hostdevs",
    "serials",
    "parallels",
    "consoles",
    "channels",
    "inputs",
    "tpms",
    "audios",
    "graphics",
    "videos",
    "sounds",
    "hubs",
    "watchdogs",
    "memballoon",
    "rngs",
    "panics",
)

for _mod in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_mod.name}")
