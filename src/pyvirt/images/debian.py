"""Fetching Debian packages without installing them: resolve, ``apt-get download``, unpack."""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pyvirt.errors import HostCommandError, NotFoundError
from pyvirt.hostcmd import run

log = logging.getLogger(__name__)

_SAFE = re.compile(r"[^A-Za-z0-9.+~-]")


@dataclass(frozen=True)
class Package:
    """A Debian binary package at the version apt would install."""

    name: str
    version: str

    @property
    def spec(self) -> str:
        """``name=version``, as ``apt-get download`` takes it."""
        return f"{self.name}={self.version}"

    @property
    def slug(self) -> str:
        """``name_version`` with only file-name-safe characters (the epoch colon becomes '_')."""
        return _SAFE.sub("_", f"{self.name}_{self.version}")


def _show(name: str) -> dict[str, str]:
    """Return the control fields of the candidate version of package *name*."""
    out = run(
        ["apt-cache", "show", "--no-all-versions", name],
        what=f"looking up Debian package '{name}'",
    ).stdout
    fields: dict[str, str] = {}
    key = ""
    for line in out.splitlines():
        if not line.strip():
            if fields:
                break
            continue
        if line[0].isspace() and key:
            fields[key] += "\n" + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    if "Version" not in fields:
        raise NotFoundError(
            f"Debian package '{name}' has no installable version",
            hint="check /etc/apt/sources.list and run apt-get update",
        )
    return fields


def _update() -> None:
    log.warning("running apt-get update: the package lists look stale or missing")
    run(["apt-get", "update"], what="apt-get update", timeout=None)


def _resolve_once(name: str, follow_prefix: str | None) -> Package:
    fields = _show(name)
    if follow_prefix is None:
        return Package(name, fields["Version"])
    for alternatives in fields.get("Depends", "").split(","):
        target = alternatives.split("|")[0].split("(")[0].strip()
        if target.startswith(follow_prefix):
            return Package(target, _show(target)["Version"])
    raise NotFoundError(
        f"Debian package '{name}' does not depend on any '{follow_prefix}*' package",
        hint="the package name is probably wrong for this Debian release",
    )


def resolve(name: str, *, follow_prefix: str | None = None) -> Package:
    """Return the candidate version of *name*, or of the package it stands for.

    A metapackage such as ``linux-image-amd64`` is followed to the first dependency whose name
    starts with *follow_prefix* (``linux-image-6.1.0-56-amd64``). When apt knows nothing about
    the package, ``apt-get update`` is run once and the lookup retried.

    :raises NotFoundError: apt has no such package, even after ``apt-get update``.
    :raises HostCommandError: apt failed.
    """
    try:
        return _resolve_once(name, follow_prefix)
    except (HostCommandError, NotFoundError):
        _update()
        return _resolve_once(name, follow_prefix)


def download(package: Package, directory: Path) -> Path:
    """Download the ``.deb`` of *package* into *directory* (reused if already there).

    ``apt-get update`` is run, with a warning in the log, only if the first download fails.

    :returns: the path of the ``.deb`` file.
    :raises HostCommandError: the download failed even after ``apt-get update``.
    """
    target = directory / f"{package.slug}.deb"
    if target.is_file():
        log.debug("reusing %s", target)
        return target
    directory.mkdir(parents=True, exist_ok=True)
    argv = ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package.spec]
    what = f"downloading Debian package '{package.spec}'"
    # Download into a private directory, then rename: concurrent builders never see half a file.
    with tempfile.TemporaryDirectory(dir=directory, prefix=".download-") as tmp:
        try:
            run(argv, cwd=Path(tmp), what=what, timeout=None)
        except HostCommandError:
            _update()
            run(argv, cwd=Path(tmp), what=what, timeout=None)
        found = list(Path(tmp).glob(f"{package.name}_*.deb"))
        if len(found) != 1:
            raise NotFoundError(f"apt-get download left no .deb for '{package.spec}'")
        found[0].rename(target)
    return target


def extract(deb: Path, destination: Path) -> None:
    """Unpack the files of *deb* under *destination* with ``dpkg-deb -x`` (no maintainer scripts).

    :raises HostCommandError: dpkg-deb failed.
    """
    destination.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(destination)], what=f"unpacking {deb.name}")
