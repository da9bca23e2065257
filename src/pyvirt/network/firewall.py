"""nftables rules of virtual networks: the only module that runs ``nft``.

Each active network that needs rules owns one table ``ip pyvirt-NAME``; it is created in one
atomic ``nft -j -f -`` transaction (JSON input, so any network name is a valid table name) and
removed by deleting the table. Policies:

``nat``       masquerade the subnet towards other destinations; forward out from the subnet,
              back in only for established connections; refuse spoofed sources
``route``     forward to and from the subnet, no masquerade
``isolated``  traffic stays on the bridge: anything forwarded in or out is rejected
``open``      no rules at all (no table)
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from pyvirt import hostcmd

TABLE_PREFIX = "pyvirt-"
Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


def table_name(network: str) -> str:
    """The nft table of ``network``."""
    return TABLE_PREFIX + network


def _nft(args: list[str], stdin: str | None = None) -> str:
    argv = [hostcmd.tool("nft"), *args]
    return hostcmd.run(argv, what="nft failed", timeout=30, input=stdin).stdout


def _match(left: dict[str, Any], right: Any, op: str = "==") -> dict[str, Any]:
    return {"match": {"op": op, "left": left, "right": right}}


def _iif(dev: str) -> dict[str, Any]:
    return _match({"meta": {"key": "iifname"}}, dev)


def _oif(dev: str) -> dict[str, Any]:
    return _match({"meta": {"key": "oifname"}}, dev)


def _addr(field: str, subnet: Subnet, op: str = "==") -> dict[str, Any]:
    proto = "ip6" if subnet.version == 6 else "ip"
    prefix = {"prefix": {"addr": str(subnet.network_address), "len": subnet.prefixlen}}
    return _match({"payload": {"protocol": proto, "field": field}}, prefix, op)


def ruleset(network: str, mode: str, bridge: str, subnets: list[Subnet]) -> dict[str, Any]:
    """The JSON ruleset (one transaction) for a network; pure."""
    table = table_name(network)
    cmds: list[dict[str, Any]] = [{"add": {"table": {"family": "inet", "name": table}}}]

    def chain(name: str, ctype: str, hook: str, prio: int) -> None:
        spec = {"family": "inet", "table": table, "name": name, "type": ctype, "hook": hook}
        cmds.append({"add": {"chain": {**spec, "prio": prio, "policy": "accept"}}})

    def rule(chain_name: str, *expr: dict[str, Any]) -> None:
        body = {"family": "inet", "table": table, "chain": chain_name, "expr": list(expr)}
        cmds.append({"add": {"rule": body}})

    chain("forward", "filter", "forward", 0)
    rule("forward", _iif(bridge), _oif(bridge), {"accept": None})
    if mode in ("nat", "route"):
        for net in subnets:
            rule("forward", _iif(bridge), _addr("saddr", net), {"accept": None})
            if mode == "route":
                rule("forward", _oif(bridge), _addr("daddr", net), {"accept": None})
            else:
                state = _match({"ct": {"key": "state"}}, {"set": ["established", "related"]}, "in")
                rule("forward", _oif(bridge), _addr("daddr", net), state, {"accept": None})
    rule("forward", _iif(bridge), {"reject": None})
    rule("forward", _oif(bridge), {"reject": None})
    if mode == "nat":
        chain("postrouting", "nat", "postrouting", 100)
        for net in subnets:
            if net.version != 4:
                continue
            for special in ("224.0.0.0/24", "255.255.255.255/32"):
                dst = ipaddress.ip_network(special)
                rule("postrouting", _addr("saddr", net), _addr("daddr", dst), {"return": None})
            rule(
                "postrouting",
                _addr("saddr", net),
                _addr("daddr", net, "!="),
                {"masquerade": None},
            )
    return {"nftables": cmds}


def apply(network: str, mode: str, bridge: str, subnets: list[Subnet]) -> str | None:
    """Create the network's table (replacing a stale one); returns its name (None: no rules)."""
    if mode not in ("nat", "route", "isolated"):
        return None
    remove(network)
    _nft(["-j", "-f", "-"], json.dumps(ruleset(network, mode, bridge, subnets)))
    return table_name(network)


def tables() -> list[str]:
    """Names of the ``pyvirt-*`` tables present now."""
    data = json.loads(_nft(["-j", "list", "tables"]) or "{}")
    names = []
    for item in data.get("nftables", []):
        tbl = item.get("table")
        if tbl and str(tbl.get("name", "")).startswith(TABLE_PREFIX):
            names.append(str(tbl["name"]))
    return names


def remove(network: str) -> bool:
    """Delete the network's table; False when there was none."""
    name = table_name(network)
    if name not in tables():
        return False
    cmd = {"nftables": [{"delete": {"table": {"family": "inet", "name": name}}}]}
    _nft(["-j", "-f", "-"], json.dumps(cmd))
    return True
