"""The Debian guest image: a debootstrapped Debian 12 in a qcow2, booted by direct kernel boot.

``pyvirt image build debian`` makes a realistic guest for the network and disk benchmarks and
the guest agent: systemd, a serial console login on ``ttyS0``, ``qemu-guest-agent``, ``iperf3``,
``fio``, DHCP on the first NIC (systemd-networkd), optionally ``openssh-server``.

How it is built, without loop mounts or a bootloader:

1. **Base tree** (cached under ``CACHE/rootfs-<suite>-<key>/``, keyed by the suite, the
   package list and a hash of the configuration files in ``images/debian/``):
   ``debootstrap --variant=minbase --include=...`` into a directory, with its ``.deb`` cache in
   ``CACHE/debs/`` (``--cache-dir``) so rebuilds download nothing; then configured in a
   ``chroot``: fstab, networkd, masked units that slow a TCG boot, a small initramfs
   (``MODULES=list``: virtio, ext4), an empty ``/etc/machine-id``, no SSH host keys.
2. **Image** (per output): a hard-link copy of the tree gets the per-image files (host name,
   root password, SSH key; each replaced by unlink + write, so the cached tree never
   changes), ``mke2fs -t ext4 -d TREE`` makes the filesystem image of the requested size,
   ``qemu-img convert -O qcow2`` the disk. The kernel (plus an uncompressed ``vmlinux`` for
   a faster TCG boot) and the initramfs are copied out next to it, with a ready-to-define
   ``domain.xml``.

The whole disk is the ext4 filesystem (no partition table): boot it with ``<kernel>``,
``<initrd>`` and ``<cmdline>root=/dev/vda rw console=ttyS0</cmdline>``. Both stages build
into a temporary sibling directory renamed into place under a lock.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pyvirt import hostcmd
from pyvirt.errors import HostCommandError, InvalidConfigError, UnsupportedError
from pyvirt.images import kernel as kernel_mod
from pyvirt.state.locks import file_lock

log = logging.getLogger(__name__)

DEFAULT_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_HOSTNAME = "pyvirt-debian"
DEFAULT_SIZE = 4 * 1024**3
#: Packages on top of debootstrap's minbase.
PACKAGES = (
    "linux-image-amd64",
    "initramfs-tools",
    "zstd",
    "systemd-sysv",
    "udev",
    "dbus",
    "kmod",
    "iproute2",
    "qemu-guest-agent",
    "iperf3",
    "fio",
)
SSH_PACKAGES = ("openssh-server",)
#: Kernel command line of the generated domain XML.
CMDLINE = "root=/dev/vda rw console=ttyS0 quiet"
#: Bumped whenever the base tree changes in a way the key would not see.
FORMAT = 1
_DATA: tuple[str, ...] = ("fstab", "20-pyvirt-dhcp.network", "initramfs-modules")
_DATA += ("initramfs.conf", "pyvirt-ssh-keygen.service", "masked-units")
_BUILD_TIMEOUT = 3600.0
_SUITE_RE = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class DebianImage:
    """A built Debian image directory: ``disk.qcow2``, the kernel, the initramfs, domain XML."""

    directory: Path

    @property
    def disk(self) -> Path:
        """The qcow2 disk whose whole device is the ext4 root filesystem."""
        return self.directory / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        """``vmlinux`` (PVH, loads fast under TCG) when extracted, else the bzImage."""
        vmlinux = self.directory / "vmlinux"
        return vmlinux if vmlinux.is_file() else self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        """The initramfs built by the guest's initramfs-tools."""
        return self.directory / "initrd.img"

    @property
    def domain_xml(self) -> Path:
        """A domain definition that boots this image (``pyvirt define`` it)."""
        return self.directory / "domain.xml"

    @property
    def manifest(self) -> dict[str, object]:
        """What went into the image (suite, packages, kernel, sizes)."""
        data: dict[str, object] = json.loads((self.directory / "manifest.json").read_text())
        return data


@dataclass(frozen=True)
class Recipe:
    """Everything that decides an image's content."""

    suite: str = DEFAULT_SUITE
    mirror: str = DEFAULT_MIRROR
    size: int = DEFAULT_SIZE
    hostname: str = DEFAULT_HOSTNAME
    root_password: str | None = None
    ssh_key: str | None = None
    extra_packages: tuple[str, ...] = field(default=())

    @property
    def packages(self) -> tuple[str, ...]:
        """The ``--include`` list (sorted, without duplicates)."""
        ssh = SSH_PACKAGES if self.ssh_key else ()
        return tuple(sorted({*PACKAGES, *ssh, *self.extra_packages}))

    def check(self) -> None:
        """:raises InvalidConfigError: a bad suite, host name, size or package name."""
        if not _SUITE_RE.match(self.suite):
            raise InvalidConfigError(f"suite '{self.suite}' is not a Debian suite name")
        if not _HOST_RE.match(self.hostname):
            raise InvalidConfigError(f"host name '{self.hostname}' is not valid")
        if self.size < 256 * 1024**2:
            raise InvalidConfigError(
                f"image size {self.size} is too small", hint="use at least 1G (e.g. --size 4G)"
            )
        for p in self.extra_packages:
            if not re.match(r"^[a-z0-9][a-z0-9+.-]+$", p):
                raise InvalidConfigError(f"'{p}' is not a Debian package name")
        if self.ssh_key is not None and not self.ssh_key.strip().startswith(("ssh-", "ecdsa-")):
            raise InvalidConfigError("the SSH key does not look like an OpenSSH public key")

    def base_key(self) -> str:
        """Cache key of the base tree: suite + packages + configuration files."""
        digest = hashlib.sha256(f"{FORMAT}\n{self.suite}\n{self.mirror}\n".encode())
        digest.update(" ".join(self.packages).encode())
        for name in _DATA:
            digest.update(hashlib.sha256(_data(name)).digest())
        return f"{self.suite}-{digest.hexdigest()[:12]}"

    def image_key(self) -> str:
        """Cache key of a whole image: the base key plus the per-image settings."""
        digest = hashlib.sha256(self.base_key().encode())
        for part in (self.hostname, self.root_password, self.ssh_key, str(self.size)):
            digest.update(b"\0" + (part or "").encode() + (b"1" if part is not None else b"0"))
        return f"{self.base_key()}-{digest.hexdigest()[:8]}"


def _data(name: str) -> bytes:
    return resources.files("pyvirt.images").joinpath("debian", name).read_bytes()


def default_cache_dir() -> Path:
    """``$PYVIRT_CACHE_DIR/debian``, else ``/var/cache/pyvirt/images/debian`` for root."""
    env = os.environ.get("PYVIRT_CACHE_DIR")
    if env:
        return Path(env) / "debian"
    if os.geteuid() == 0:
        return Path("/var/cache/pyvirt/images/debian")
    return Path.home() / ".cache" / "pyvirt" / "images" / "debian"


def _run(argv: Sequence[str], what: str, *, timeout: float = _BUILD_TIMEOUT) -> str:
    tool = hostcmd.tool(argv[0], {"mke2fs": "e2fsprogs"}.get(argv[0]))
    log.info("running %s", " ".join(argv))
    env = {"DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    return hostcmd.run([tool, *argv[1:]], what=what, env=env, timeout=timeout).stdout


# -- stage 1: the base tree -----------------------------------------------------------------
def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace *path* by a new file (unlink first: never write through a hard link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        path.unlink()
    path.write_bytes(data)
    path.chmod(mode)


def _configure_base(root: Path) -> None:
    """Guest configuration applied once to the cached tree (in a chroot where needed)."""
    _write(root / "etc/fstab", _data("fstab"))
    _write(root / "etc/systemd/network/20-pyvirt-dhcp.network", _data("20-pyvirt-dhcp.network"))
    _write(root / "etc/initramfs-tools/modules", _data("initramfs-modules"))
    _write(root / "etc/initramfs-tools/conf.d/pyvirt", _data("initramfs.conf"))
    _write(root / "etc/resolv.conf", b"")  # not the build host's resolvers
    units = root / "etc/systemd/system"
    for unit in _data("masked-units").decode().split():
        if not unit.startswith("#"):
            link = units / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
    _run(["chroot", str(root), "systemctl", "enable", "systemd-networkd"], "enabling networkd")
    if (root / "usr/sbin/sshd").exists():
        _write(units / "pyvirt-ssh-keygen.service", _data("pyvirt-ssh-keygen.service"))
        _run(["chroot", str(root), "systemctl", "enable", "pyvirt-ssh-keygen"], "enabling keygen")
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
    _run(["chroot", str(root), "update-initramfs", "-u", "-k", "all"], "building the initramfs")
    _run(["chroot", str(root), "apt-get", "clean"], "cleaning apt's cache")
    _write(root / "etc/machine-id", b"", 0o444)  # a fresh id on each image's first boot
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)


def _debootstrap(recipe: Recipe, root: Path, debs: Path) -> None:
    debs.mkdir(parents=True, exist_ok=True)
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(recipe.packages)}",
        f"--cache-dir={debs}",
        recipe.suite,
        str(root),
        recipe.mirror,
    ]
    _run(argv, f"debootstrap of Debian '{recipe.suite}'")


def base_tree(recipe: Recipe, cache_dir: Path) -> Path:
    """The configured root tree for *recipe*, debootstrapped once into the cache."""
    final = cache_dir / f"rootfs-{recipe.base_key()}"
    if (final / "base.json").is_file():
        return final / "root"
    cache_dir.mkdir(parents=True, exist_ok=True)
    with file_lock(cache_dir / ".base.lock", timeout=_BUILD_TIMEOUT, what="the debian cache"):
        if (final / "base.json").is_file():
            return final / "root"
        for old in cache_dir.glob(f".{final.name}.new-*"):
            shutil.rmtree(old, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(dir=cache_dir, prefix=f".{final.name}.new-"))
        try:
            _debootstrap(recipe, staging / "root", cache_dir / "debs")
            _configure_base(staging / "root")
            manifest = {"format": FORMAT, "suite": recipe.suite, "packages": recipe.packages}
            (staging / "base.json").write_text(json.dumps(manifest, indent=2) + "\n")
            staging.chmod(0o755)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return final / "root"


# -- stage 2: the image ------------------------------------------------------------------
def _hash_password(password: str) -> str:
    argv = ["openssl", "passwd", "-6", "-stdin"]
    return hostcmd.run(argv, what="hashing the root password", input=password).stdout.strip()


def _customize(tree: Path, recipe: Recipe) -> None:
    """Write the per-image files into the hard-linked *tree*."""
    _write(tree / "etc/hostname", f"{recipe.hostname}\n".encode())
    hosts = f"127.0.0.1\tlocalhost\n127.0.1.1\t{recipe.hostname}\n::1\tlocalhost ip6-localhost\n"
    _write(tree / "etc/hosts", hosts.encode())
    if recipe.root_password is not None:
        shadow = tree / "etc/shadow"
        st = shadow.stat()
        hashed = _hash_password(recipe.root_password) if recipe.root_password else ""
        lines = [
            f"root:{hashed}:" + line.split(":", 2)[2] if line.startswith("root:") else line
            for line in shadow.read_text().splitlines()
        ]
        _write(shadow, ("\n".join(lines) + "\n").encode(), st.st_mode & 0o777)
        os.chown(shadow, st.st_uid, st.st_gid)
    if recipe.ssh_key:
        (tree / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
        _write(tree / "root/.ssh/authorized_keys", recipe.ssh_key.strip().encode() + b"\n", 0o600)


def _boot_files(tree: Path, out: Path) -> str:
    """Copy the kernel and initramfs out of *tree*; returns the kernel release."""
    kernels = sorted((tree / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise HostCommandError("the debootstrapped tree has no kernel in /boot")
    vmlinuz = kernels[-1]
    release = vmlinuz.name.removeprefix("vmlinuz-")
    shutil.copyfile(vmlinuz, out / "vmlinuz")
    shutil.copyfile(tree / "boot" / f"initrd.img-{release}", out / "initrd.img")
    config = tree / "boot" / f"config-{release}"
    if config.is_file() and kernel_mod.pvh_enabled(config):
        kernel_mod.extract_vmlinux(vmlinuz, out / "vmlinux")
    return release


def _make_disk(tree: Path, size: int, out: Path) -> None:
    from pyvirt.storage import qemu_img

    raw = out / "root.ext4"
    with raw.open("wb") as f:
        f.truncate(size)
    argv = ["mke2fs", "-q", "-F", "-t", "ext4", "-L", "pyvirt-root", "-d", str(tree), str(raw)]
    try:
        _run(argv, "making the ext4 filesystem (mke2fs -d)")
    except HostCommandError as err:
        if "No space" in str(err) or "Could not allocate" in str(err):
            raise InvalidConfigError(
                f"image size {size} bytes is too small for the Debian tree",
                hint="use a larger --size (2G fits the default package set)",
            ) from err
        raise
    qemu_img.convert(str(raw), "raw", str(out / "disk.qcow2"), "qcow2")
    raw.unlink()


def build(
    recipe: Recipe,
    output: Path | None = None,
    *,
    cache_dir: Path | None = None,
    force: bool = False,
) -> DebianImage:
    """Build (or reuse) the Debian image for *recipe* in *output* (default: in the cache).

    :raises InvalidConfigError: a bad recipe
    :raises UnsupportedError: debootstrap, mke2fs, chroot or qemu-img is missing
    :raises HostCommandError: one of them failed (the message has its stderr tail)
    """
    recipe.check()
    if shutil.which("debootstrap") is None:
        raise UnsupportedError(
            "debootstrap is needed to build the Debian image but is not installed",
            hint="apt-get install debootstrap",
        )
    cache_dir = (cache_dir or default_cache_dir()).absolute()
    output = (output or cache_dir / "images" / recipe.image_key()).absolute()
    output.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(output.parent / f".{output.name}.lock", timeout=_BUILD_TIMEOUT, what="image"):
        if (output / "manifest.json").is_file() and not force:
            return DebianImage(output)
        tree = base_tree(recipe, cache_dir)
        staging = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.new-"))
        try:
            work = staging / "tree"
            _run(["cp", "-al", str(tree), str(work)], "copying the base tree (hard links)")
            _customize(work, recipe)
            release = _boot_files(work, staging)
            _make_disk(work, recipe.size, staging)
            shutil.rmtree(work)
            kernel = output / ("vmlinux" if (staging / "vmlinux").is_file() else "vmlinuz")
            xml = domain_xml(DebianImage(output), "debian", kernel=kernel)
            (staging / "domain.xml").write_text(xml)
            manifest = {
                "format": FORMAT,
                "kind": "debian",
                "suite": recipe.suite,
                "packages": recipe.packages,
                "kernel_release": release,
                "size": recipe.size,
                "hostname": recipe.hostname,
                "ssh": bool(recipe.ssh_key),
                "root_password": recipe.root_password is not None,
                "cmdline": CMDLINE,
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
            staging.chmod(0o755)
            if output.exists():
                trash = Path(tempfile.mkdtemp(dir=output.parent, prefix=f".{output.name}.old-"))
                output.rename(trash / "image")
                staging.rename(output)
                shutil.rmtree(trash, ignore_errors=True)
            else:
                staging.rename(output)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    _remember(cache_dir, output)
    return DebianImage(output)


def domain_xml(
    image: DebianImage,
    name: str,
    *,
    memory_mib: int = 512,
    vcpus: int = 2,
    kernel: Path | None = None,
) -> str:
    """A libvirt domain definition that boots *image*: direct kernel boot, virtio disk, a
    serial console, the guest agent channel and a NIC on the ``default`` network."""
    from xml.sax.saxutils import escape, quoteattr

    def q(value: object) -> str:
        return quoteattr(str(value))

    def t(value: object) -> str:
        return escape(str(value))

    return f"""<domain type='qemu'>
  <name>{t(name)}</name>
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>{vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{t(kernel or image.kernel)}</kernel>
    <initrd>{t(image.initrd)}</initrd>
    <cmdline>{CMDLINE}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file={q(image.disk)}/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='network'>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='pty'><target port='0'/></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
  </devices>
</domain>
"""


def _remember(cache_dir: Path, output: Path) -> None:
    """Record an image built outside the cache so ``image list`` finds it."""
    if output.parent == cache_dir / "images":
        return
    index = cache_dir / "outputs"
    index.mkdir(parents=True, exist_ok=True)
    link = index / hashlib.sha256(str(output).encode()).hexdigest()[:16]
    tmp = index / f".{link.name}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(output)
    tmp.rename(link)


def built_images(cache_dir: Path | None = None) -> list[DebianImage]:
    """Every complete Debian image in the cache or built elsewhere (still present)."""
    cache_dir = (cache_dir or default_cache_dir()).absolute()
    found = {p.parent for p in (cache_dir / "images").glob("*/manifest.json")}
    index = cache_dir / "outputs"
    if index.is_dir():
        for link in index.iterdir():
            if link.is_symlink() and (link / "manifest.json").is_file():
                found.add(Path(os.readlink(link)))
            elif link.is_symlink():
                link.unlink(missing_ok=True)  # the image was deleted
    return [DebianImage(p) for p in sorted(found)]
