"""libvirt's defaults filled into a definition at ``define`` and for ``domxml-to-native``
(:func:`pyvirt.model.defaults.fill_defaults`), with the machine aliases of the domain's
emulator (``pc`` → ``pc-i440fx-7.2``) from its cached ``-machine help``.

Define runs no QEMU (it stays on the fast path): the aliases come from the emulator's facts
cached by ``pyvirt version``/``capabilities``/``domcapabilities`` or pyvirtd; until then a
machine alias is stored as written and QEMU resolves it at each start."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pyvirt.errors import PyvirtError

if TYPE_CHECKING:
    from pyvirt.model.domain import Domain
    from pyvirt.state.paths import StatePaths

__all__ = ["apply", "machine_aliases"]

# lazy: function-local imports marked ``# lazy``: define's fast path loads the model's
# defaults and the QEMU binary facts (cached on disk) only when it defines.

#: the emulator of a domain without ``<emulator>``
DEFAULT_EMULATOR = Path("/usr/bin/qemu-system-x86_64")


def machine_aliases(paths: StatePaths, emulator: str | None) -> dict[str, str]:
    """Alias -> canonical machine name of ``emulator`` ({} when it cannot be asked)."""
    from pyvirt.host.qemu_binaries import probe_binary  # lazy

    binary = Path(emulator) if emulator else DEFAULT_EMULATOR
    try:
        info = probe_binary(binary, cache_dir=paths.cache / "host" / "qemu", cached_only=True)
    except PyvirtError:  # not probed yet (or no such emulator): the alias stays
        return {}
    return {m.name: m.alias_of for m in info.machines if m.alias_of}


def apply(paths: StatePaths, dom: Domain, *, expand_machine: bool = True) -> Domain:
    """Fill libvirt's defaults into ``dom`` (in place) and return it.

    :param expand_machine: replace a machine alias by what it stands for (``define`` does;
        ``domxml-to-native`` of an XML shows the machine as written)
    """
    from pyvirt.model.defaults import fill_defaults  # lazy

    aliases = machine_aliases(paths, dom.devices.emulator) if expand_machine else {}
    fill_defaults(dom, machine_aliases=aliases)
    return dom
