"""Parsing and formatting of user-given values (sizes, CPU sets), for front ends.

One parser per kind of value; front ends use these, never their own. Sizes follow libvirt's
units (:mod:`pyvirt.model.units`), CPU and node sets libvirt's ``0-3,^2,8`` syntax
(:mod:`pyvirt.model.cpuset`).
"""

from __future__ import annotations

from pyvirt.model.cpuset import format_cpuset, parse_cpuset
from pyvirt.model.units import format_bytes, format_kib, parse_size, parse_size_kib, to_kib

__all__ = [
    "format_bytes",
    "format_cpuset",
    "format_kib",
    "parse_cpuset",
    "parse_size",
    "parse_size_kib",
    "to_kib",
]
