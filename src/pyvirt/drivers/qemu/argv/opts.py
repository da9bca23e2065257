"""QEMU option quoting: the two spellings QEMU accepts for structured options.

* keyval text (``-chardev socket,id=x,path=/a,,b``): values are joined with ``,``, and a comma
  inside a value must be doubled (``,,``), or QEMU would read it as the start of the next key;
* JSON (``-device '{"driver":"virtio-blk-pci",...}'``), used for ``-device``, ``-blockdev``,
  ``-object`` and ``-netdev`` where QEMU accepts it, so values never need escaping.

Every option string the argv builder emits goes through one of the two helpers below; a bare
``",".join`` is never used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

#: What a keyval or JSON option value may be. ``None`` means "leave the key out".
OptValue = str | int | bool | None
#: A JSON option: nested mappings (``cache.direct``) and lists (``host-nodes``) are allowed.
JsonValue = str | int | bool | None | list[int] | list[str] | Mapping[str, "JsonValue"]


def escape(value: str) -> str:
    """Return *value* with every ``,`` doubled, as QEMU's keyval parser wants it."""
    return value.replace(",", ",,")


def _keyval_text(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return escape(str(value))


def qemu_opts(*bare: str, **kv: OptValue) -> str:
    """Join options as QEMU keyval text, escaping commas in every value.

    Positional arguments are bare leading values (``"socket"`` in ``-chardev socket,id=x``);
    keyword arguments are ``key=value`` pairs in call order. Keys that are not Python
    identifiers are passed with ``**{"debug-threads": True}``. Booleans become ``on``/``off``
    and ``None`` values are skipped.

    >>> qemu_opts("file", id="c0", path="/tmp/a,b", append=True)
    'file,id=c0,path=/tmp/a,,b,append=on'

    :param bare: leading values without a key (escaped as well)
    :param kv: the ``key=value`` pairs
    :returns: the option text for one command-line argument
    """
    parts = [escape(b) for b in bare]
    parts.extend(f"{k}={_keyval_text(v)}" for k, v in kv.items() if v is not None)
    return ",".join(parts)


def qemu_opts_from(items: Mapping[str, OptValue], *bare: str) -> str:
    """Like :func:`qemu_opts` but from a mapping (handy when keys are built dynamically).

    :param items: the ``key=value`` pairs in order; ``None`` values are skipped
    :param bare: leading values without a key
    :returns: the option text
    """
    return qemu_opts(*bare, **dict(items))


def _prune(value: JsonValue) -> JsonValue:
    if isinstance(value, Mapping):
        return {k: _prune(v) for k, v in value.items() if v is not None}
    return value


def json_opts(props: Mapping[str, JsonValue]) -> str:
    """Serialise a ``-device``/``-blockdev``/``-object``/``-netdev`` argument as compact JSON.

    Keys with a ``None`` value are left out (also in nested mappings); key order is kept, so the
    output is stable for golden files.

    >>> json_opts({"driver": "virtio-blk-pci", "drive": "disk0", "bootindex": 1, "serial": None})
    '{"driver":"virtio-blk-pci","drive":"disk0","bootindex":1}'

    :param props: the option's properties
    :returns: one command-line argument
    """
    return json.dumps(_prune(props), separators=(",", ":"))
