"""QEMU's firmware descriptors (``docs/interop/firmware.json``) and the choice among them.

A descriptor is a JSON file describing one firmware build: its interface (``uefi``, ``bios``),
how it is mapped (``flash`` in ``split``/``combined``/``stateless`` mode, ``memory``,
``kernel``), the code file and NVRAM template with their formats, the architectures and
machine types it boots, and its features (``secure-boot``, ``enrolled-keys``,
``requires-smm``, ``amd-sev``...). Distributions install them with the firmware (Debian's
``ovmf`` puts three in ``/usr/share/qemu/firmware``).

The search path is libvirt's: ``$XDG_CONFIG_HOME/qemu/firmware`` (``~/.config``), then
``/etc/qemu/firmware``, then ``/usr/share/qemu/firmware``; a file in an earlier directory hides
one of the same name in a later one (an empty file just hides it), and the survivors are tried
in the order of their file names. ``$PYVIRT_FIRMWARE_PATH`` (directories separated by ``:``)
replaces the whole path (tests, hosts with firmware elsewhere).

:func:`select` is pure: it takes what the domain asks for (:class:`Wanted`) and returns the
first descriptor that fits, or raises naming the first requirement no descriptor meets.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pyvirt.errors import InvalidConfigError

__all__ = ["Descriptor", "Wanted", "load_descriptors", "search_dirs", "select"]

SYSTEM_DIRS = (Path("/etc/qemu/firmware"), Path("/usr/share/qemu/firmware"))
ENV_PATH = "PYVIRT_FIRMWARE_PATH"


@dataclass(frozen=True)
class Descriptor:
    """One firmware descriptor (the parts the choice needs)."""

    name: str  # the file name, which orders descriptors
    interfaces: tuple[str, ...]
    device: str  # flash, memory, kernel
    mode: str  # split, combined, stateless (flash only)
    executable: str
    executable_format: str = "raw"
    nvram_template: str | None = None
    nvram_format: str = "raw"
    targets: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (architecture, machine globs)
    features: frozenset[str] = frozenset()

    def boots(self, arch: str, machine: str) -> bool:
        """Whether a target of this firmware is ``arch`` with a glob matching ``machine``."""
        return any(
            a == arch and any(fnmatch.fnmatchcase(machine, g) for g in globs)
            for a, globs in self.targets
        )


def search_dirs(env: dict[str, str] | None = None) -> list[Path]:
    """The descriptor directories, the one that wins first (see the module docstring)."""
    env = dict(os.environ) if env is None else env
    custom = env.get(ENV_PATH)
    if custom:
        return [Path(p) for p in custom.split(":") if p]
    config = env.get("XDG_CONFIG_HOME") or (
        str(Path(env["HOME"]) / ".config") if env.get("HOME") else ""
    )
    user = [Path(config) / "qemu" / "firmware"] if config else []
    return [*user, *SYSTEM_DIRS]


def _parse(name: str, data: object) -> Descriptor:
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    mapping = data["mapping"]
    device = str(mapping.get("device", "flash"))
    mode = str(mapping.get("mode", "split")) if device == "flash" else ""
    execu = mapping["executable"] if device == "flash" else mapping
    nvram = mapping.get("nvram-template") if device == "flash" else None
    return Descriptor(
        name=name,
        interfaces=tuple(str(i) for i in data.get("interface-types") or ()),
        device=device,
        mode=mode,
        executable=str(execu["filename"]),
        executable_format=str(execu.get("format", "raw")),
        nvram_template=str(nvram["filename"]) if nvram else None,
        nvram_format=str(nvram.get("format", "raw")) if nvram else "raw",
        targets=tuple(
            (str(t["architecture"]), tuple(str(m) for m in t.get("machines") or ()))
            for t in data.get("targets") or ()
        ),
        features=frozenset(str(f) for f in data.get("features") or ()),
    )


def load_descriptors(dirs: Iterable[Path] | None = None) -> list[Descriptor]:
    """The descriptors of ``dirs`` (default :func:`search_dirs`) in the order they are tried.

    Unreadable or malformed files are skipped, as QEMU's consumers skip them.
    """
    chosen: dict[str, Path] = {}
    for d in search_dirs() if dirs is None else dirs:
        try:
            files = sorted(p for p in d.iterdir() if p.name.endswith(".json"))
        except OSError:
            continue
        for path in files:
            chosen.setdefault(path.name, path)
    out: list[Descriptor] = []
    for name in sorted(chosen):
        try:
            text = chosen[name].read_text()
            if not text.strip():
                continue  # an empty file hides a system descriptor
            out.append(_parse(name, json.loads(text)))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


@dataclass(frozen=True)
class Wanted:
    """What a domain asks of its firmware (None: no preference)."""

    interface: str  # uefi, bios
    arch: str
    machine: str  # as written: aliases (pc, q35) match the family's versioned names
    loader: str | None = None
    loader_format: str | None = None
    readonly: bool | None = None
    secure: bool | None = None
    stateless: bool | None = None
    nvram_template: str | None = None
    nvram_format: str | None = None
    features: dict[str, bool] = field(default_factory=dict)  # secure-boot, enrolled-keys
    smm: bool | None = None
    sev: bool = False


#: machine alias -> a name of its family that descriptor globs (``pc-q35-*``) match
_ALIASES = {"pc": "pc-i440fx-", "q35": "pc-q35-"}


Requirement = tuple[str, Callable[[Descriptor], bool]]


def _requirements(w: Wanted) -> list[Requirement]:
    """(what is required, predicate on a descriptor), in the order they are reported."""
    machine = _ALIASES.get(w.machine, w.machine)
    flash = w.interface == "uefi"
    reqs: list[Requirement] = [
        (f"interface '{w.interface}'", lambda d: w.interface in d.interfaces),
        (f"architecture {w.arch} and machine {w.machine}", lambda d: d.boots(w.arch, machine)),
    ]
    if flash:
        reqs.append(("a flash (pflash) mapping", lambda d: d.device == "flash"))
    if w.loader:
        reqs.append((f"the loader {w.loader}", lambda d: d.executable == w.loader))
    if w.loader_format:
        reqs.append(
            (
                f"a loader in {w.loader_format} format",
                lambda d: d.executable_format == w.loader_format,
            )
        )
    if flash and w.readonly is False:
        reqs.append(
            ("a writable loader (readonly='no', combined mode)", lambda d: d.mode == "combined")
        )
    if flash and w.stateless is True:
        reqs.append(("a stateless loader", lambda d: d.mode == "stateless"))
    elif flash:
        reqs.append(("a loader with NVRAM (not stateless)", lambda d: d.mode != "stateless"))
    if w.nvram_template:
        reqs.append(
            (
                f"the NVRAM template {w.nvram_template}",
                lambda d: d.nvram_template == w.nvram_template,
            )
        )
    if w.nvram_format:
        reqs.append(
            (
                f"an NVRAM template in {w.nvram_format} format",
                lambda d: d.nvram_template is not None and d.nvram_format == w.nvram_format,
            )
        )
    if w.secure is True:
        reqs.append(("a secure loader (requires-smm)", lambda d: "requires-smm" in d.features))
    elif w.secure is False:
        reqs.append(
            ("a loader without SMM (secure='no')", lambda d: "requires-smm" not in d.features)
        )
    for feat in ("secure-boot", "enrolled-keys"):
        on = w.features.get(feat)
        if on is not None:
            reqs.append(
                (
                    f"feature {feat} {'enabled' if on else 'disabled'}",
                    _has_feature(feat, on),
                )
            )
    if w.smm is False:
        reqs.append(("no SMM (<smm state='off'/>)", lambda d: "requires-smm" not in d.features))
    if w.sev:
        reqs.append(("AMD SEV (<launchSecurity type='sev'>)", lambda d: "amd-sev" in d.features))
    return reqs


def _has_feature(name: str, on: bool) -> Callable[[Descriptor], bool]:
    return lambda d: (name in d.features) == on


def select(descriptors: Sequence[Descriptor], wanted: Wanted, *, kind: str = "efi") -> Descriptor:
    """The first descriptor meeting every requirement of ``wanted``.

    :param kind: the ``<os firmware>`` value, for the message
    :raises InvalidConfigError: names the first requirement no remaining descriptor meets
    """
    left = list(descriptors)
    for what, pred in _requirements(wanted):
        fits = [d for d in left if pred(d)]
        if not fits:
            have = f"{len(descriptors)} descriptor{'s' if len(descriptors) != 1 else ''}"
            raise InvalidConfigError(
                f"<os firmware='{kind}'>: unable to find '{kind}' firmware compatible with the "
                f"current configuration: none of the {have} offers {what}",
                hint="the firmware descriptors in "
                + ", ".join(str(p) for p in search_dirs())
                + " list what this host has; relax the <os> requirements or install the firmware",
            )
        left = fits
    return left[0]
