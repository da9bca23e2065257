"""The New VM wizard of the web console over ``pyvirt install``'s code (issue 13).

The wizard's choices (:class:`WizardChoices`: an install method, media, disk, OS variant,
memory, CPUs, network, cloud-init) become the same :class:`~pyvirt.install.spec.InstallSpec`
``pyvirt install`` builds from its options, so the preview is what ``--print-xml`` prints and
"Finish" does what ``pyvirt install`` does:

>>> job = prepare(conn, WizardChoices(name="web1", method="import", disk_pool="default",
...     disk_vol="web1.qcow2", os_variant="debian12"))
>>> job.final_xml          # shown before anything changes
>>> job.run(start=False)   # "Customize configuration before install"; later job.begin()

A network install location (``http://`` or ``https://``) is fetched first
(:func:`fetch_location`: only the installer kernel and initrd of a known tree layout, plus
the release files that tell the OS), into the connection's cache; the install then uses that
local copy as ``--location`` does.
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyvirt.errors import InvalidConfigError, InvalidStateError, OperationFailedError

if TYPE_CHECKING:
    from pyvirt.api.connection import Connection
    from pyvirt.api.install import InstallJob
    from pyvirt.install.spec import InstallSpec
    from pyvirt.progress import CancelToken, Progress

__all__ = [
    "METHODS",
    "WizardChoices",
    "fetch_location",
    "fetched_location",
    "install_spec",
    "is_url",
    "os_variants",
    "prepare",
]

# lazy: function-local imports marked ``# lazy`` keep the daemon's start-up small: the install
# code (osinfo, media, specs) loads when the wizard is first used.

#: the wizard's install methods (virt-install's paths)
METHODS = ("import", "cdrom", "location", "cloud")
#: release files fetched with the kernel and initrd (OS detection reads them)
_RELEASE_FILES = (".treeinfo", ".disk/info", "version.info", "media.repo")
_CHUNK = 1 << 20
_TIMEOUT = 30.0


@dataclass
class WizardChoices:
    """What the user chose in the New VM wizard (every field optional but ``name``)."""

    name: str
    #: ``import`` (an existing disk), ``cdrom`` (local ISO), ``location`` (network install
    #: tree or a local tree/ISO) or ``cloud`` (a cloud image with a cloud-init seed)
    method: str = "import"
    #: the ISO of ``cdrom``: a path on the host, or a pool volume
    media_path: str | None = None
    media_pool: str | None = None
    media_vol: str | None = None
    #: the tree of ``location``: ``http(s)://...`` or a path on the host
    location: str | None = None
    extra_args: str | None = None
    #: the disk: an existing volume (``import``, ``cloud``) or a new one of ``disk_size_gb``
    #: in ``disk_pool`` (``cdrom``, ``location``; none when the size is 0); or a host path
    disk_pool: str | None = None
    disk_vol: str | None = None
    disk_path: str | None = None
    disk_size_gb: float | None = None
    disk_bus: str | None = None
    os_variant: str | None = None
    memory_mib: int | None = None
    vcpus: int | None = None
    #: ``NAME`` (a virtual network), ``bridge:NAME``, ``user`` or ``none``; None: the default
    network: str | None = None
    nic_model: str | None = None
    #: direct kernel boot (``--boot kernel=,initrd=,kernel_args=``), ``import`` only
    kernel: str | None = None
    initrd: str | None = None
    kernel_args: str | None = None
    uefi: bool = False
    virt_type: str | None = None
    #: cloud-init: the user to create (``root`` or empty: root's password and keys)
    cloud_user: str | None = None
    cloud_password: str | None = None
    cloud_ssh_keys: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WizardChoices:
        """From a JSON object with the field names (unknown keys refused).

        :raises InvalidConfigError: an unknown key
        """
        known = {f.name for f in fields(cls)}
        extra = sorted(set(data) - known)
        if extra:
            raise InvalidConfigError(f"unknown wizard choice '{extra[0]}'")
        return cls(**data)


def is_url(text: str | None) -> bool:
    """True for an ``http://``, ``https://`` or ``ftp://`` location."""
    return bool(text) and urllib.parse.urlsplit(str(text)).scheme in ("http", "https", "ftp")


def os_variants() -> list[dict[str, Any]]:
    """The OS variant table with each variant's defaults (``pyvirt osinfo-query``'s rows)."""
    from pyvirt.install import osinfo  # lazy

    return [
        {
            "name": v.name,
            "description": v.description,
            "family": v.family,
            "disk_bus": v.disk_bus,
            "nic_model": v.nic_model,
            "machine": v.machine,
            "firmware": v.firmware,
            "memory_mib": max(v.min_memory_mib, 1024 if v.family != "generic" else 256),
            "vcpus": 2 if v.min_memory_mib >= 2048 else 1,
        }
        for v in osinfo.VARIANTS.values()
    ]


# -- network install trees -------------------------------------------------------------------
def _fetch_root(conn: Connection) -> Path:
    return Path(conn.cache_dir) / "install" / "fetched"


def _tree_dir(conn: Connection, url: str) -> Path:
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return _fetch_root(conn) / digest


def fetched_location(conn: Connection, url: str) -> str | None:
    """The local copy of ``url``'s kernel and initrd, if :func:`fetch_location` made it."""
    tree = _tree_dir(conn, url)
    return str(tree) if (tree / ".complete").exists() else None


def _open(url: str) -> Any:
    req = urllib.request.Request(url, headers={"User-Agent": "pyvirt"})
    return urllib.request.urlopen(req, timeout=_TIMEOUT)


def _size(url: str) -> int | None:
    """The size of ``url`` (None: not there)."""
    req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "pyvirt"})
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as resp:
            return int(resp.headers.get("Content-Length") or 0)
    except urllib.error.HTTPError:
        return None
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        raise OperationFailedError(
            f"cannot reach the install location '{url}': {reason}",
            hint="check the URL and that the host can reach it",
        ) from None


def fetch_location(
    conn: Connection,
    url: str,
    *,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> str:
    """Fetch the installer kernel and initrd of the tree at ``url`` (the first of the layouts
    ``--location`` knows that the server has) and its release files; returns the local tree
    (reused when it was fetched before). ``progress`` hears (bytes fetched, bytes to fetch).

    :raises InvalidConfigError: not a URL, or no known layout at ``url``
    :raises OperationFailedError: the server cannot be reached or a download failed
    """
    from pyvirt.install.media import KERNEL_LAYOUTS  # lazy
    from pyvirt.progress import checkpoint  # lazy

    if not is_url(url):
        raise InvalidConfigError(f"install location '{url}' is not an http(s) or ftp URL")
    done_before = fetched_location(conn, url)
    if done_before:
        return done_before
    base = url.rstrip("/") + "/"
    pair: tuple[str, str] | None = None
    sizes: dict[str, int] = {}
    for kernel, initrd in KERNEL_LAYOUTS:
        k = _size(base + kernel)
        if k is None:
            continue
        i = _size(base + initrd)
        if i is not None:
            pair, sizes = (kernel, initrd), {kernel: k, initrd: i}
            break
    if pair is None:
        raise InvalidConfigError(
            f"no installer kernel and initrd found at '{url}'",
            hint="known layouts: " + ", ".join(k for k, _ in KERNEL_LAYOUTS[:6]),
        )
    tree = _tree_dir(conn, url)
    shutil.rmtree(tree, ignore_errors=True)
    tree.mkdir(parents=True)
    total = sum(sizes.values())
    done = 0
    try:
        for rel in pair:
            dest = tree / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with _open(base + rel) as resp, open(dest, "wb") as out:
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    checkpoint(progress, cancel, done, max(total, done))
        for rel in _RELEASE_FILES:
            try:
                with _open(base + rel) as resp:
                    data = resp.read(64 * 1024)
            except (urllib.error.URLError, OSError):
                continue
            (tree / rel).parent.mkdir(parents=True, exist_ok=True)
            (tree / rel).write_bytes(data)
    except (urllib.error.URLError, OSError) as err:
        shutil.rmtree(tree, ignore_errors=True)
        raise OperationFailedError(
            f"cannot fetch the installer from '{url}': {getattr(err, 'reason', err)}"
        ) from None
    except BaseException:
        shutil.rmtree(tree, ignore_errors=True)
        raise
    (tree / ".complete").write_text(url + "\n")
    return str(tree)


# -- choices -> spec -------------------------------------------------------------------------
def _volume_path(conn: Connection, pool: str, vol: str) -> str:
    return conn.pools.get(pool).volume(vol).path


def install_spec(conn: Connection, c: WizardChoices) -> InstallSpec:
    """The :class:`InstallSpec` of the choices (what ``pyvirt install`` builds from its
    options).

    :raises InvalidConfigError: a missing or conflicting choice
    :raises InvalidStateError: a network location that is not fetched yet
    :raises NotFoundError: an unknown pool or volume
    """
    from pyvirt.api.install import build_install_spec  # lazy
    from pyvirt.install.spec import CloudInitSpec, DiskSpec, NicSpec  # lazy

    if c.method not in METHODS:
        raise InvalidConfigError(
            f"install method '{c.method}' is not known", hint="one of: " + ", ".join(METHODS)
        )
    values: dict[str, Any] = {"name": c.name, "virt_type": c.virt_type or None}
    if c.memory_mib is not None:
        values["memory"] = str(int(c.memory_mib))
    if c.vcpus is not None:
        values["vcpus"] = str(int(c.vcpus))
    if c.os_variant:
        values["os_variant"] = c.os_variant
    spec = build_install_spec(values)
    spec.check.path_in_use = True
    bus = c.disk_bus or None

    def existing_disk() -> DiskSpec:
        if c.disk_pool and c.disk_vol:
            return DiskSpec(pool=c.disk_pool, vol=c.disk_vol, bus=bus)
        if c.disk_path:
            return DiskSpec(path=c.disk_path, bus=bus)
        raise InvalidConfigError(
            "choose the disk image to use", hint="pick a pool and a volume (or give a path)"
        )

    if c.method in ("import", "cloud"):
        spec.import_ = True
        spec.disks.append(existing_disk())
    else:
        if c.method == "cdrom":
            if c.media_pool and c.media_vol:
                spec.cdrom = _volume_path(conn, c.media_pool, c.media_vol)
            elif c.media_path:
                spec.cdrom = c.media_path
            else:
                raise InvalidConfigError(
                    "choose the install media", hint="pick an ISO volume (or give a path)"
                )
        else:
            if not c.location:
                raise InvalidConfigError(
                    "give the install location",
                    hint="e.g. http://deb.debian.org/debian/dists/"
                    "bookworm/main/installer-amd64/current/images/netboot/",
                )
            spec.location = c.location
            if is_url(c.location):
                local = fetched_location(conn, c.location)
                if local is None:
                    raise InvalidStateError(
                        f"the installer at '{c.location}' is not fetched yet",
                        hint="fetch it first (POST /api/v1/install/fetch)",
                    )
                spec.location = local
            spec.extra_args = c.extra_args or None
        if c.disk_size_gb:
            if c.disk_pool:
                spec.disks.append(DiskSpec(pool=c.disk_pool, size_gb=c.disk_size_gb, bus=bus))
            elif c.disk_path:
                spec.disks.append(DiskSpec(path=c.disk_path, size_gb=c.disk_size_gb, bus=bus))
            else:
                raise InvalidConfigError("choose the pool of the new disk")
    if c.kernel:
        if c.method != "import":
            raise InvalidConfigError("direct kernel boot goes with 'import existing disk image'")
        spec.boot.kernel, spec.boot.initrd = c.kernel, c.initrd or None
        spec.boot.kernel_args = c.kernel_args or None
    spec.boot.uefi = c.uefi
    net = (c.network or "").strip()
    if net == "none":
        spec.no_network = True
    elif net:
        if net == "user":
            nic = NicSpec(type="user")
        elif net.startswith("bridge:"):
            nic = NicSpec(type="bridge", source=net.split(":", 1)[1])
        else:
            nic = NicSpec(type="network", source=net)
        nic.model = c.nic_model or None
        spec.nics.append(nic)
    if c.method == "cloud":
        user = (c.cloud_user or "").strip()
        keys = [k.strip() for k in c.cloud_ssh_keys if k.strip()]
        if user in ("", "root"):
            spec.cloud_init = CloudInitSpec(root_password=c.cloud_password or None, ssh_keys=keys)
        else:
            spec.cloud_init = CloudInitSpec(user_data=_user_data(user, c.cloud_password, keys))
    return spec


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _user_data(user: str, password: str | None, keys: list[str]) -> str:
    """A ``#cloud-config`` creating ``user`` (sudo, the password and SSH keys)."""
    if not user.replace("-", "").replace("_", "").isalnum():
        raise InvalidConfigError(f"cloud-init user name '{user}' is not valid")
    lines = ["#cloud-config", "users:", "  - default", f"  - name: {user}",
             "    shell: /bin/bash", "    sudo: ALL=(ALL) NOPASSWD:ALL"]  # fmt: skip
    if password:
        lines += ["    lock_passwd: false", f"    plain_text_passwd: {_quote(password)}"]
    if keys:
        lines.append("    ssh_authorized_keys:")
        lines += [f"      - {_quote(k)}" for k in keys]
    if password:
        lines.append("ssh_pwauth: true")
    return "\n".join(lines) + "\n"


def prepare(conn: Connection, choices: WizardChoices) -> InstallJob:
    """Plan the install the choices describe; nothing changes until ``job.run()``.

    :raises InvalidConfigError: see :func:`install_spec` and ``prepare_install``
    """
    return conn.domains.prepare_install(install_spec(conn, choices))


def location_is_local(choices: WizardChoices) -> bool:
    """False when the install must fetch its location first."""
    return not (choices.method == "location" and is_url(choices.location))
