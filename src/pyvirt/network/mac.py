"""MAC addresses of virtual NICs: validation and generation in QEMU's 52:54:00 prefix."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

from pyvirt.errors import InvalidConfigError, OperationFailedError
from pyvirt.model.devices.interface import mac_problem

PREFIX = "52:54:00"
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")


def normalize(mac: str) -> str:
    """Lowercase ``mac`` after checking it is a valid unicast address.

    :raises InvalidConfigError: not six ':'-separated hex octets, or multicast
    """
    if not MAC_RE.match(mac):
        raise InvalidConfigError(
            f"MAC address '{mac}' is not valid", hint="write six hex octets like 52:54:00:12:34:56"
        )
    why = mac_problem(mac)
    if why is not None:
        raise InvalidConfigError(
            f"MAC address '{mac}' {why}",
            hint="use a unicast address (first octet even) such as 52:54:00:12:34:56",
        )
    return mac.lower()


def generate(taken: Iterable[str], rng: random.Random | None = None) -> str:
    """A random 52:54:00:xx:xx:xx address not in ``taken``."""
    used = {m.lower() for m in taken}
    pick = rng or random.SystemRandom()
    for _ in range(1000):
        mac = PREFIX + "".join(f":{pick.randrange(256):02x}" for _ in range(3))
        if mac not in used:
            return mac
    raise OperationFailedError("no free MAC address found in 52:54:00:xx:xx:xx")
