"""This host's cluster membership: ``CONFIG/cluster.json``, written atomically.

Its presence makes the host a cluster member: pyvirtd reads it at start and keeps the host's
lease alive. ``pyvirt cluster leave`` removes it.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyvirt.errors import InvalidConfigError
from pyvirt.state.atomic import atomic_write
from pyvirt.state.paths import StatePaths

#: seconds a host's lease lives without renewal (etcd deletes its ``alive`` key then)
DEFAULT_TTL = 8
#: seconds between renewals
DEFAULT_RENEW = 1.0
#: seconds the watchdog process holds the lease after pyvirtd went silent (killed, hung)
DEFAULT_DAEMON_HOLD = 120.0
#: the longest hold a host may ask for
MAX_DAEMON_HOLD = 3600.0

_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def check_host_name(name: str) -> str:
    """*name* if it is a valid cluster host name (a DNS-label-like word, ≤ 63 characters).

    :raises InvalidConfigError: otherwise
    """
    if not _HOST_NAME.match(name):
        raise InvalidConfigError(
            f"invalid cluster host name {name!r}",
            hint="use letters, digits, '.', '_' and '-' (at most 63; first a letter or digit)",
        )
    return name


def check_tls_files(ca: str | None, cert: str | None, key: str | None) -> None:
    """Refuse etcd TLS files that cannot be used: unreadable, or a certificate without its key
    (or the other way round).

    :raises InvalidConfigError: naming the file
    """
    if bool(cert) != bool(key):
        raise InvalidConfigError(
            "an etcd client certificate needs its key, and a key its certificate",
            hint="give both --etcd-cert and --etcd-key",
        )
    for flag, path in (("--etcd-ca", ca), ("--etcd-cert", cert), ("--etcd-key", key)):
        if not path:
            continue
        if not Path(path).is_absolute():
            raise InvalidConfigError(f"{flag} {path!r} is not an absolute path",
                                     hint="give the file's full path")  # fmt: skip
        try:
            with open(path, "rb") as f:
                f.read(1)
        except OSError as err:
            raise InvalidConfigError(
                f"cannot read {flag} {path}: {err.strerror or err}",
                hint="the file must be readable by pyvirtd on this host",
            ) from None


@dataclass(frozen=True)
class ClusterConfig:
    """How this host takes part in its cluster.

    :ivar cluster: the cluster's name (from its record in etcd)
    :ivar host: this host's name in the cluster
    :ivar endpoints: etcd client URLs
    :ivar address: where other hosts reach this host's pyvirtd (a ``pyvirt+tls://`` URI), or
        empty when it has no TCP listener
    :ivar ttl: seconds of the host's lease
    :ivar renew: seconds between renewals
    :ivar etcd_ca: CA to verify ``https`` etcd members with
    :ivar etcd_cert: client certificate for etcd
    :ivar etcd_key: client key for etcd
    :ivar kernel_watchdog: arm the kernel's watchdog (``/dev/watchdog``) while HA guests run
        here (:mod:`pyvirt.service.cluster.kernel_watchdog`)
    :ivar daemon_hold: seconds the watchdog process holds the lease after pyvirtd's last pet
        when pyvirtd is killed or hangs (0: none, its HA guests are fenced at the deadline)
    """

    cluster: str
    host: str
    endpoints: tuple[str, ...]
    address: str = ""
    ttl: int = DEFAULT_TTL
    renew: float = DEFAULT_RENEW
    etcd_ca: str | None = None
    etcd_cert: str | None = None
    etcd_key: str | None = None
    kernel_watchdog: bool = True
    daemon_hold: float = DEFAULT_DAEMON_HOLD
    extra: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """JSON-ready dict (``endpoints`` as a list)."""
        out = asdict(self)
        out["endpoints"] = list(self.endpoints)
        return out

    @classmethod
    def from_json(cls, data: dict[str, object], *, source: str = "cluster.json") -> ClusterConfig:
        """The config in *data*.

        :raises InvalidConfigError: a field is missing or of the wrong type
        """
        try:
            endpoints = data["endpoints"]
            if not isinstance(endpoints, list) or not all(isinstance(x, str) for x in endpoints):
                raise TypeError("endpoints")
            extra = data.get("extra") or {}
            if not isinstance(extra, dict):
                raise TypeError("extra")
            return cls(
                cluster=str(data["cluster"]),
                host=check_host_name(str(data["host"])),
                endpoints=tuple(endpoints),
                address=str(data.get("address") or ""),
                ttl=int(data.get("ttl", DEFAULT_TTL)),  # type: ignore[call-overload]
                renew=float(data.get("renew", DEFAULT_RENEW)),  # type: ignore[arg-type]
                etcd_ca=_opt(data.get("etcd_ca")),
                etcd_cert=_opt(data.get("etcd_cert")),
                etcd_key=_opt(data.get("etcd_key")),
                kernel_watchdog=bool(data.get("kernel_watchdog", True)),
                daemon_hold=float(data.get("daemon_hold", DEFAULT_DAEMON_HOLD)),  # type: ignore[arg-type]
                extra={str(k): str(v) for k, v in extra.items()},
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidConfigError(
                f"{source} is not a valid cluster membership file ({err})",
                hint="run 'pyvirt cluster leave --force' and join again",
            ) from None


def _opt(value: object) -> str | None:
    return None if value in (None, "") else str(value)


def config_path(paths: StatePaths) -> Path:
    """Where this host's membership file lives."""
    return paths.cluster_membership


def read_config(paths: StatePaths) -> ClusterConfig | None:
    """This host's membership, or ``None`` when it is not in a cluster."""
    path = config_path(paths)
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        raise InvalidConfigError(
            f"{path} is not valid JSON", hint="run 'pyvirt cluster leave --force' and join again"
        ) from None
    if not isinstance(data, dict):
        raise InvalidConfigError(f"{path} is not a JSON object")
    return ClusterConfig.from_json(data, source=str(path))


def write_config(paths: StatePaths, config: ClusterConfig) -> None:
    """Write this host's membership file (atomically, mode 0600)."""
    path = config_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, (json.dumps(config.to_json(), indent=2) + "\n").encode())


def remove_config(paths: StatePaths) -> bool:
    """Remove the membership file; whether there was one."""
    try:
        config_path(paths).unlink()
    except FileNotFoundError:
        return False
    return True
