"""Which NIC types plug live: tap types, user and the socket types; vhost-user is refused by
name (its memory must be shared from the start)."""

from __future__ import annotations

import pytest
from lxml import etree

from pyvirt.errors import UnsupportedError
from pyvirt.model.devices.interface import Interface
from pyvirt.service.nic.hotplug import check_hotpluggable


def nic(xml: str) -> Interface:
    return Interface(etree.fromstring(xml))


@pytest.mark.parametrize("kind", ["network", "bridge", "ethernet", "user", "server", "client",
                                  "mcast", "udp"])  # fmt: skip
def test_pluggable(kind: str) -> None:
    check_hotpluggable(nic(f"<interface type='{kind}'/>"))


def test_vhostuser_refused_by_name() -> None:
    with pytest.raises(UnsupportedError, match="interface type 'vhostuser' cannot be hot-plugged"):
        check_hotpluggable(nic("<interface type='vhostuser'/>"))
