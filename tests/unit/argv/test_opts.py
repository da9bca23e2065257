"""Option quoting: commas doubled in keyval text, JSON compact and pruned."""

from __future__ import annotations

import json

from pyvirt.drivers.qemu.argv.opts import escape, json_opts, qemu_opts, qemu_opts_from


def test_escape_doubles_commas() -> None:
    assert escape("a,b,,c") == "a,,b,,,,c"


def test_qemu_opts_escapes_values_and_bare() -> None:
    assert qemu_opts("file", path="/tmp/a,b") == "file,path=/tmp/a,,b"
    assert qemu_opts("unix:/run/x,y") == "unix:/run/x,,y"


def test_qemu_opts_bools_ints_and_none() -> None:
    text = qemu_opts(server=True, wait=False, port=5900, logfile=None)
    assert text == "server=on,wait=off,port=5900"


def test_qemu_opts_non_identifier_keys_keep_order() -> None:
    assert qemu_opts("node", **{"debug-threads": True}, b=1) == "node,debug-threads=on,b=1"


def test_qemu_opts_from_mapping() -> None:
    assert qemu_opts_from({"a": "x,y", "b": None}, "pc") == "pc,a=x,,y"


def test_guest_name_with_comma_is_escaped() -> None:
    assert qemu_opts(guest="web,1") == "guest=web,,1"


def test_json_opts_compact_and_pruned() -> None:
    text = json_opts({"driver": "x", "serial": None, "cache": {"direct": True, "n": None}})
    assert text == '{"driver":"x","cache":{"direct":true}}'
    assert json.loads(json_opts({"v": "a,b"})) == {"v": "a,b"}  # no escaping needed in JSON
