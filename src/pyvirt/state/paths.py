"""Where pyvirt keeps its state on disk.

Layout (``ROOT`` is ``PYVIRT_STATE_DIR`` when set; otherwise system paths as root and XDG
paths for other users)::

    CONFIG/qemu/NAME.xml            persistent domain definitions (atomic writes)
    CONFIG/qemu/autostart/NAME      autostart markers (empty files)
    RUN/qemu/NAME/                  runtime of a running domain: runtime.json, qmp.sock,
                                    events.sock, serial sockets, qemu.pid, exit.json
    RUN/qemu/NAME.last.json         why the domain last stopped (shutdown, destroyed, crashed)
    RUN/pyvirtd.sock                pyvirtd's REST socket (0660); CONFIG/daemon/ its config
    RUN/locks/                      fcntl lock files: one per domain name, one for the namespace
    LOG/qemu/NAME/qemu.log          QEMU and watcher log, one per domain
    LOG/qemu/NAME/console.log       serial console output

Unix socket paths are limited to 107 bytes, so keep ``PYVIRT_STATE_DIR`` short.
"""

from __future__ import annotations

import os
from pathlib import Path


class StatePaths:
    """The roots of pyvirt's on-disk state and the paths derived from them (immutable).

    A plain class, not a dataclass: the CLI's fast path to a daemon imports this module, and
    ``dataclasses`` (with ``inspect``) costs more start-up time than the whole request.
    """

    __slots__ = ("cache", "config", "log", "run")

    config: Path
    run: Path
    log: Path
    cache: Path

    def __init__(self, config: Path, run: Path, log: Path, cache: Path) -> None:
        for name, value in (("config", config), ("run", run), ("log", log), ("cache", cache)):
            object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"StatePaths is immutable (cannot set {name})")

    def _key(self) -> tuple[Path, Path, Path, Path]:
        return (self.config, self.run, self.log, self.cache)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatePaths) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return (
            f"StatePaths(config={self.config!r}, run={self.run!r}, log={self.log!r}, "
            f"cache={self.cache!r})"
        )

    @classmethod
    def from_root(cls, root: Path) -> StatePaths:
        """Everything under one directory (tests, ``PYVIRT_STATE_DIR``, ``?root=``)."""
        root = root.absolute()
        return cls(root / "lib", root / "run", root / "log", root / "cache")

    @classmethod
    def default(cls) -> StatePaths:
        """Paths from the environment: ``PYVIRT_STATE_DIR``, else system or XDG dirs."""
        env = os.environ.get("PYVIRT_STATE_DIR")
        if env:
            return cls.from_root(Path(env))
        if os.geteuid() == 0:
            return cls(
                Path("/var/lib/pyvirt"),
                Path("/run/pyvirt"),
                Path("/var/log/pyvirt"),
                Path("/var/cache/pyvirt"),
            )
        home = Path.home()
        data = Path(os.environ.get("XDG_DATA_HOME") or home / ".local/share") / "pyvirt"
        runtime = os.environ.get("XDG_RUNTIME_DIR")
        run = Path(runtime) / "pyvirt" if runtime else data / "run"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "pyvirt"
        return cls(data / "lib", run, data / "log", cache)

    # the daemon ----------------------------------------------------------------
    @property
    def daemon_socket(self) -> Path:
        """pyvirtd's REST socket (``pyvirt`` with the same state finds its daemon here)."""
        return self.run / "pyvirtd.sock"

    @property
    def daemon_config_dir(self) -> Path:
        """pyvirtd's own configuration: ``pyvirtd.toml``, API tokens, the TLS pair."""
        return self.config / "daemon"

    @property
    def cluster_membership(self) -> Path:
        """This host's cluster membership file (present only on a cluster member; issue 16)."""
        return self.daemon_config_dir / "cluster.json"

    @property
    def daemon_log_dir(self) -> Path:
        """pyvirtd's logs: the daemon log and the audit log."""
        return self.log / "daemon"

    # domains -----------------------------------------------------------------
    @property
    def domain_config_dir(self) -> Path:
        return self.config / "qemu"

    @property
    def autostart_dir(self) -> Path:
        return self.config / "qemu" / "autostart"

    @property
    def domain_run_root(self) -> Path:
        return self.run / "qemu"

    @property
    def lock_dir(self) -> Path:
        return self.run / "locks"

    def domain_xml(self, name: str) -> Path:
        return self.domain_config_dir / f"{name}.xml"

    def domain_run_dir(self, name: str) -> Path:
        return self.domain_run_root / name

    def domain_last_state(self, name: str) -> Path:
        return self.domain_run_root / f"{name}.last.json"

    def domain_log_dir(self, name: str) -> Path:
        return self.log / "qemu" / name

    def domain_log(self, name: str) -> Path:
        return self.domain_log_dir(name) / "qemu.log"

    def domain_console_log(self, name: str) -> Path:
        return self.domain_log_dir(name) / "console.log"

    @property
    def uuid_index_dir(self) -> Path:
        return self.config / "qemu" / ".uuids"

    # networks ----------------------------------------------------------------
    @property
    def network_config_dir(self) -> Path:
        """``CONFIG/network``: persistent network definitions (``NAME.xml``)."""
        return self.config / "network"

    @property
    def network_autostart_dir(self) -> Path:
        """``CONFIG/network/autostart``: autostart markers."""
        return self.config / "network" / "autostart"

    @property
    def network_run_root(self) -> Path:
        """``RUN/network``: ``NAME.xml`` live definition, ``NAME.json`` record, ``NAME/``."""
        return self.run / "network"

    def network_xml(self, name: str) -> Path:
        return self.network_config_dir / f"{name}.xml"

    def network_run_dir(self, name: str) -> Path:
        return self.network_run_root / name

    # storage pools (issue 3) ---------------------------------------------------------
    @property
    def pool_config_dir(self) -> Path:
        """``CONFIG/storage``: persistent pool definitions ``NAME.xml``."""
        return self.config / "storage"

    @property
    def pool_autostart_dir(self) -> Path:
        return self.config / "storage" / "autostart"

    def pool_xml(self, name: str) -> Path:
        return self.pool_config_dir / f"{name}.xml"

    @property
    def pool_run_root(self) -> Path:
        """``RUN/storage``: ``NAME.xml`` (live definition of an active pool), ``NAME/``."""
        return self.run / "storage"

    def pool_live_xml(self, name: str) -> Path:
        return self.pool_run_root / f"{name}.xml"

    def pool_run_dir(self, name: str) -> Path:
        return self.pool_run_root / name

    @property
    def default_images_dir(self) -> Path:
        """Target of the ``default`` pool (``/var/lib/pyvirt/images`` as root)."""
        return self.config / "images"
