"""Virtual networks (virsh's ``net-*`` verbs).

>>> net, warnings = conn.networks.define(open("lan.xml").read())
>>> net.start()                      # bridge, addresses, firewall rules, dnsmasq (root)
>>> net.info().active
True

:class:`NetworkCollection` is ``conn.networks``; :meth:`NetworkCollection.get` returns a
:class:`Network` handle that holds the network's name. Results are
:class:`~pyvirt.service.network.types.NetworkInfo` and
:class:`~pyvirt.service.network.types.DhcpLease`, both with ``to_json()``.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING

from pyvirt.errors import InvalidConfigError
from pyvirt.service.network.types import DhcpLease, NetworkInfo

if TYPE_CHECKING:
    from pyvirt.service.connection import Connection as ServiceConnection
    from pyvirt.service.network.networks import NetworkManager

__all__ = ["DhcpLease", "Network", "NetworkCollection", "NetworkInfo"]


# lazy: function-local imports marked ``# lazy`` keep CLI start-up fast: the network XML model
# loads only for a redefinition.


def _name_in(xml: str | bytes) -> str:
    """The name a ``<network>`` XML document gives (parsed and validated).

    :raises InvalidConfigError: invalid XML
    """
    from pyvirt.model.network import Network as Model  # lazy

    return Model.from_xml(xml).name


class NetworkCollection:
    """``conn.networks``: every virtual network of the connection.

    The ``default`` NAT network is defined on first use, as libvirt does.
    """

    def __init__(self, service: ServiceConnection) -> None:
        self._service = service

    @property
    def _mgr(self) -> NetworkManager:
        return self._service.networks

    def list(self, *, active: bool | None = None) -> builtins.list[NetworkInfo]:
        """``net-list``: networks sorted by name; ``active`` filters by state (``None``: all)."""
        return self._mgr.list(active=active)

    def get(self, name_or_uuid: str) -> Network:
        """The network known by name or UUID.

        :raises NotFoundError: no such network
        """
        return Network(self._service, self._mgr.resolve(name_or_uuid))

    def define(self, xml: str | bytes) -> tuple[Network, builtins.list[str]]:
        """``net-define``: define or redefine a persistent network; returns it and warnings.

        :raises InvalidConfigError: bad XML, or a bridge/subnet another network holds
        :raises AlreadyExistsError: the name exists with another UUID
        """
        net, warnings = self._mgr.define_xml(xml)
        return Network(self._service, net.name), list(warnings)

    def create(self, xml: str | bytes) -> Network:
        """``net-create``: create and start a transient network (needs root).

        :raises AlreadyExistsError: a network of that name exists
        """
        return Network(self._service, self._mgr.create(xml).name)


class Network:
    """One virtual network, by name. Get it from :meth:`NetworkCollection.get`."""

    def __init__(self, service: ServiceConnection, name: str) -> None:
        self._service = service
        self._name = name

    def __repr__(self) -> str:
        return f"<Network {self._name!r}>"

    @property
    def _mgr(self) -> NetworkManager:
        return self._service.networks

    @property
    def name(self) -> str:
        """The network's name."""
        return self._name

    @property
    def uuid(self) -> str:
        """The network's UUID."""
        return self.info().uuid

    def info(self) -> NetworkInfo:
        """``net-info``: state, persistence, autostart, bridge and forward mode."""
        return self._mgr.info(self._name)

    def xml_desc(self, *, inactive: bool = False) -> str:
        """``net-dumpxml``: the live XML while active, else (or with ``inactive``) the
        persistent definition."""
        return self._mgr.dumpxml(self._name, inactive=inactive)

    def revision(self) -> str:
        """The revision of the persistent definition (a content hash; an ETag): pass it to
        :meth:`redefine` to refuse lost updates.

        :raises InvalidStateError: the network is transient
        """
        return self._mgr.revision(self._name)

    def redefine(self, xml: str | bytes, *, expect_revision: str | None = None) -> list[str]:
        """Replace the definition with ``xml``, keeping the name; returns warnings.

        :param expect_revision: the :meth:`revision` ``xml`` was based on; the change is
            refused if the definition changed since (None: no check)
        :raises InvalidConfigError: invalid XML, or XML that names another network
        :raises InvalidStateError: the definition changed since ``expect_revision``
        """
        new_name = _name_in(xml)
        if new_name != self._name:
            raise InvalidConfigError(
                f"the XML names network '{new_name}', not '{self._name}'",
                hint="a redefinition keeps the network's name",
            )
        _, warnings = self._mgr.define_xml(xml, expect_revision=expect_revision)
        return list(warnings)

    def start(self) -> None:
        """``net-start``: make the bridge, addresses, firewall rules and dnsmasq (root).

        :raises InvalidStateError: already active
        :raises InvalidConfigError: its subnet or bridge conflicts with another network
        """
        self._mgr.start(self._name)

    def destroy(self) -> None:
        """``net-destroy``: stop the network and remove what it made on the host.

        :raises InvalidStateError: not active, or running domains use it
        """
        self._mgr.destroy(self._name)

    def undefine(self) -> None:
        """``net-undefine``: drop the persistent definition (an active network turns transient).

        :raises InvalidStateError: the network is transient, or running domains use it
        """
        self._mgr.undefine(self._name)

    def set_autostart(self, enabled: bool) -> None:
        """``net-autostart [--disable]``; the current value is ``info().autostart``.

        :raises InvalidStateError: the network is transient
        """
        self._mgr.autostart(self._name, enabled)

    def dhcp_leases(self, *, mac: str | None = None) -> list[DhcpLease]:
        """``net-dhcp-leases``: current leases (of one MAC address with ``mac``).

        :raises InvalidStateError: the network is not active
        """
        return self._mgr.dhcp_leases(self._name, mac=mac)

    def update(
        self, command: str, section: str, xml: str, *, live: bool = False, config: bool = False
    ) -> None:
        """``net-update``: ``add``/``delete``/``modify`` a part (``ip-dhcp-host``) of the live
        network and/or its definition (both ``False``: the current one)."""
        self._mgr.update(self._name, command, section, xml, live=live, config=config)
