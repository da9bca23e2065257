"""Host side of virtual networks: bridges and taps (netlink), DHCP/DNS (dnsmasq), firewall
rules (nftables), one backend per forward mode (see :mod:`pyvirt.network.registry`)."""
