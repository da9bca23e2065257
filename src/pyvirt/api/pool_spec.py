"""A storage pool described by its fields (what virt-manager's add-pool wizard asks), turned
into the ``<pool>`` XML by the same code as ``pool-define-as`` (with its validation).

>>> spec = PoolSpec("images", "dir", target="/srv/images")
>>> xml = spec.xml(conn.pools)            # what define_spec would store
>>> pool, warnings = define_spec(conn.pools, spec)

The REST API's ``POST /api/v1/pools/preview`` and ``POST /api/v1/pools/define-as`` take
these fields as JSON.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyvirt.api.pools import Pool, PoolCollection

__all__ = ["POOL_TYPES", "PoolSpec", "define_spec"]

#: the backends the add-pool wizard offers
POOL_TYPES = ("dir", "fs", "netfs", "logical", "disk", "iscsi")


@dataclass(frozen=True)
class PoolSpec:
    """The arguments of ``pool-define-as`` (``source_host`` is ``HOST[:PORT]``)."""

    name: str
    type: str
    target: str | None = None
    source_host: str | None = None
    source_path: str | None = None
    source_dev: str | None = None
    source_name: str | None = None
    source_format: str | None = None
    source_initiator: str | None = None
    auth_type: str | None = None
    auth_username: str | None = None
    secret_usage: str | None = None

    def xml(self, pools: PoolCollection) -> str:
        """The ``<pool>`` XML (``pool-define-as --print-xml``).

        :raises InvalidConfigError: the fields do not make a valid pool
        """
        fields = {k: v or None for k, v in asdict(self).items() if k not in ("name", "type")}
        return pools.definition_xml(self.name, self.type, **fields)


def define_spec(pools: PoolCollection, spec: PoolSpec) -> tuple[Pool, builtins.list[str]]:
    """``pool-define-as`` from a spec: the pool and the definition's warnings.

    :raises InvalidConfigError: the fields do not make a valid pool
    :raises AlreadyExistsError: a pool of that name exists
    """
    return pools.define(spec.xml(pools))
