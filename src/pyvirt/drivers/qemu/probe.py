"""What a QEMU binary offers, asked over QMP from a short-lived ``-machine none`` QEMU.

:func:`probe` starts ``qemu-system-ARCH -machine none -accel ACCEL`` with a QMP socket in a
private temporary directory, asks for the CPU models (``query-cpu-definitions``), each model's
static feature expansion, the accelerator's own CPU (``host`` under KVM, ``max`` under TCG,
fully expanded), the machine types, the QOM types and the QMP commands, then makes it quit.
That takes about 0.2 s; the answer is cached in memory and, with a ``cache_dir``, on disk,
keyed by the binary's (path, mtime, size, inode) and the accelerator, so a QEMU upgrade
invalidates it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pyvirt import hostcmd
from pyvirt.drivers.qemu.monitor.cpu_models import CpuDefinition, MachineInfo
from pyvirt.errors import HostCommandError, MonitorError, NotFoundError, UnsupportedError

__all__ = ["QemuOffer", "clear_memory_cache", "probe"]

_CACHE_VERSION = 2
#: models that are not CPU definitions one can baseline against
NOT_MODELS = frozenset({"host", "max", "base"})
_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class QemuOffer:
    """The answer of one probe.

    :ivar features: enabled features of each model's static expansion (aliases resolved)
    :ivar vendors: each model's CPUID vendor (``GenuineIntel``, ``AuthenticAMD``)
    :ivar known_features: every CPU feature QEMU knows (the static expansions' booleans)
    :ivar accel_features: features of the accelerator's own CPU (``host`` or ``max``)
    """

    binary: str
    accel: str
    models: tuple[CpuDefinition, ...]
    features: dict[str, tuple[str, ...]]
    vendors: dict[str, str]
    known_features: tuple[str, ...]
    accel_features: tuple[str, ...]
    machines: tuple[MachineInfo, ...]
    types: tuple[str, ...] = field(default=())
    commands: tuple[str, ...] = field(default=())

    def model(self, name: str) -> CpuDefinition | None:
        """The definition named ``name``, if QEMU has one."""
        return next((m for m in self.models if m.name == name), None)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (the on-disk cache)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QemuOffer:
        """Inverse of :meth:`to_json`."""
        return cls(
            binary=str(data["binary"]),
            accel=str(data["accel"]),
            models=tuple(
                CpuDefinition(**{**m, "unavailable": tuple(m["unavailable"])})
                for m in data["models"]
            ),
            features={k: tuple(v) for k, v in data["features"].items()},
            vendors={str(k): str(v) for k, v in data["vendors"].items()},
            known_features=tuple(data["known_features"]),
            accel_features=tuple(data["accel_features"]),
            machines=tuple(MachineInfo(**m) for m in data["machines"]),
            types=tuple(data["types"]),
            commands=tuple(data["commands"]),
        )


_memory_cache: dict[tuple[str, int, int, int, str], QemuOffer] = {}


def clear_memory_cache() -> None:
    """Forget in-process probe results (tests)."""
    _memory_cache.clear()


def probe(binary: Path, accel: str = "tcg", *, cache_dir: Path | None = None) -> QemuOffer:
    """What ``binary`` offers under ``accel`` (``tcg`` or ``kvm``), cached.

    :raises NotFoundError: the binary does not exist
    :raises HostCommandError: QEMU did not start or did not answer
    """
    try:
        st = binary.stat()
    except OSError as err:
        raise NotFoundError(f"QEMU binary '{binary}' not found") from err
    key = (str(binary), st.st_mtime_ns, st.st_size, st.st_ino, accel)
    if key in _memory_cache:
        return _memory_cache[key]
    cache_file = None
    if cache_dir is not None:
        digest = hashlib.sha256(str(binary).encode()).hexdigest()[:16]
        cache_file = cache_dir / f"offer-{binary.name}-{accel}-{digest}.json"
        try:
            record = json.loads(cache_file.read_text())
            if record.get("version") == _CACHE_VERSION and record.get("key") == list(key):
                offer = QemuOffer.from_json(record["offer"])
                _memory_cache[key] = offer
                return offer
        except (OSError, ValueError, KeyError, TypeError):
            pass
    offer = _ask(binary, accel)
    _memory_cache[key] = offer
    if cache_file is not None:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.tmp")
            payload = {"version": _CACHE_VERSION, "key": list(key), "offer": offer.to_json()}
            tmp.write_text(json.dumps(payload) + "\n")
            os.replace(tmp, cache_file)
        except OSError:
            pass  # the cache is only an optimisation
    return offer


def _ask(binary: Path, accel: str) -> QemuOffer:
    from pyvirt.drivers.qemu.qmp import Monitor  # lazy: imports qemu.qmp

    tmp = Path(tempfile.mkdtemp(prefix="pyvirt-probe-"))
    sock = tmp / "qmp.sock"
    argv = [
        str(binary), "-machine", "none", "-accel", accel, "-nodefaults", "-display", "none",
        "-S", "-qmp", f"unix:{sock},server=on,wait=off",
    ]  # fmt: skip
    try:
        proc = hostcmd.spawn(argv, what=f"probing {binary.name}")
    except (HostCommandError, UnsupportedError):
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while not sock.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                if proc.poll() is None:
                    proc.kill()
                text = (proc.communicate()[0] or "").strip().splitlines()
                raise HostCommandError(
                    f"'{binary.name} -machine none -accel {accel}' did not start: "
                    + (text[-1] if text else f"exit status {proc.returncode}"),
                    hint="check that QEMU runs ('qemu-system-x86_64 --version')",
                )
            time.sleep(0.01)
        mon = Monitor(sock, name=f"probe-{accel}")
        while True:  # the socket exists once bound; QEMU may not listen on it yet
            try:
                mon.connect()
                break
            except MonitorError as err:
                if "refused" not in str(err) or proc.poll() is not None:
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        with mon:
            offer = _collect(mon, str(binary), accel)
            mon.quit()
        return offer
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
        shutil.rmtree(tmp, ignore_errors=True)


def _collect(mon: Any, binary: str, accel: str) -> QemuOffer:
    models = tuple(mon.query_cpu_definitions())
    features: dict[str, tuple[str, ...]] = {}
    vendors: dict[str, str] = {}
    known: set[str] = set()
    for m in models:
        if m.name in NOT_MODELS or m.alias_of is not None:
            continue
        props = mon.cpu_model_expansion(m.name)
        known |= {k for k, v in props.items() if isinstance(v, bool)}
        features[m.name] = tuple(sorted(k for k, v in props.items() if v is True))
        vendors[m.name] = str(props.get("vendor") or "")
    for m in models:
        if m.alias_of is not None and m.alias_of in features:
            features[m.name] = features[m.alias_of]
            vendors[m.name] = vendors[m.alias_of]
    # the full expansion also has non-CPUID switches (check, full-cpuid-auto-level) and
    # legacy spellings (cmp_legacy): keep the features static expansions name
    own = mon.cpu_model_expansion("host" if accel == "kvm" else "max", full=True)
    return QemuOffer(
        binary=binary,
        accel=accel,
        models=models,
        features=features,
        vendors=vendors,
        known_features=tuple(sorted(known)),
        accel_features=tuple(sorted(k for k, v in own.items() if v is True and k in known)),
        machines=tuple(mon.query_machines()),
        types=tuple(sorted(mon.qom_type_names())),
        commands=tuple(sorted(mon.command_names())),
    )
