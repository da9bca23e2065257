"""The one rule for libvirt's affect flags: ``--live``, ``--config``, ``--current``,
``--persistent``.

Every verb that changes a domain (tuning, disks, NICs, update-device) resolves its flags here,
with libvirt's semantics (``virDomainModificationImpact`` and virsh's option checks):

==========================  ===========================  ==============================
requested                   running domain               shut-off domain
==========================  ===========================  ==============================
nothing / ``--current``     live                         config
``--live``                  live                         error: not running
``--config``                config                       config
``--live --config``         live + config                error: not running
``--persistent`` (attach)   live + config                config
==========================  ===========================  ==============================

A definition change on a transient domain (it has none) is an error, whichever flag asked for
it (``--config`` or ``--persistent``); a transient domain always runs, so nothing and
``--current`` mean live. ``--current`` together with ``--live``, ``--config`` or
``--persistent`` is a usage error, as in virsh.

The rule is a pure function (:func:`resolve`) so it is tested as a table without QEMU; the
domain manager feeds it the domain's state under the domain lock
(:meth:`pyvirt.service.domain.manager.DomainManager.affect`).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyvirt.errors import InvalidConfigError, InvalidStateError

__all__ = ["Affect", "resolve"]


@dataclass(frozen=True)
class Affect:
    """What a change touches: the running domain (``live``) and/or its definition (``config``)."""

    live: bool
    config: bool


def _exclusive(first: str, second: str) -> InvalidConfigError:
    return InvalidConfigError(
        f"options --{first} and --{second} are mutually exclusive",
        hint=f"--{first} means live if the domain runs, else its definition; drop one",
    )


def resolve(
    name: str,
    *,
    running: bool,
    persistent: bool,
    live: bool = False,
    config: bool = False,
    current: bool = False,
    persistent_flag: bool = False,
) -> Affect:
    """Resolve the requested flags against the domain's state.

    :param name: the domain, for messages
    :param running: whether its QEMU runs (paused counts as running)
    :param persistent: whether it has a persistent definition
    :param persistent_flag: virsh's ``--persistent`` (attach/detach): the definition, and the
        running domain too when it runs
    :returns: what to change; at least one of ``live`` and ``config`` is set
    :raises InvalidConfigError: ``--current`` mixed with another flag
    :raises InvalidStateError: ``--live`` on a shut-off domain (``domain is not running``), or
        a definition change on a transient domain
    """
    if current:
        for flag, given in (("live", live), ("config", config), ("persistent", persistent_flag)):
            if given:
                raise _exclusive("current", flag)
    if persistent_flag:
        config = True
        live = live or running
    if not live and not config:
        live, config = running, not running
    if live and not running:
        raise InvalidStateError(
            f"domain '{name}' is not running",
            hint="start it, or use --config to change its definition",
        )
    if config and not persistent:
        raise InvalidStateError(
            f"domain '{name}' is transient: transient domains do not have any persistent config",
            hint="use --live (or define the domain first)",
        )
    return Affect(live=live, config=config)
