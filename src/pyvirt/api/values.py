"""Parsing and formatting of user-given values (sizes, CPU sets), for front ends.

One parser per kind of value; front ends use these, never their own.
"""

from __future__ import annotations

from pyvirt.host.threads import format_set as format_cpuset
from pyvirt.host.threads import parse_set as parse_cpuset
from pyvirt.model.units import to_kib
from pyvirt.model.volume import format_bytes, parse_size

__all__ = ["format_bytes", "format_cpuset", "parse_cpuset", "parse_size", "to_kib"]
