"""Image commands: build and list the guest images pyvirt can make itself."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def image() -> None:
    """Build guest images: the tiny test guest and a Debian guest."""


@image.command()
@click.argument("kind", type=click.Choice(["tiny", "tiny-net", "debian"]))
@click.option("--output", "output", type=click.Path(path_type=Path), help="output directory")
@click.option("--force", is_flag=True, help="rebuild even if --output already holds an image")
@click.option("--size", default="4G", show_default=True, help="debian: disk size (qcow2)")
@click.option("--suite", default="bookworm", show_default=True, help="debian: Debian suite")
@click.option("--mirror", default=None, help="debian: Debian mirror URL")
@click.option("--hostname", default=None, help="debian: the guest's host name")
@click.option("--root-password", default=None, help="debian: root's password (default: locked)")
@click.option(
    "--ssh-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="debian: install openssh-server with this public key for root",
)
@click.option("--include", "extra", multiple=True, help="debian: one more package (repeatable)")
def build(
    kind: str,
    output: Path | None,
    force: bool,
    size: str,
    suite: str,
    mirror: str | None,
    hostname: str | None,
    root_password: str | None,
    ssh_key: Path | None,
    extra: tuple[str, ...],
) -> None:
    """Build an image: 'tiny' is a kernel + busybox initramfs from Debian packages, 'debian' a
    debootstrapped Debian with systemd and qemu-guest-agent in a qcow2."""
    from pyvirt.images import tiny

    if kind == "debian":  # pyvirt.images.debian_image
        _build_debian(output, force, size, suite, mirror, hostname, root_password, ssh_key, extra)
        return
    if kind == "tiny-net":  # the tiny image plus iperf3 (pyvirt.images.net)
        from pyvirt.images import net

        base = tiny.default_image()
        img = net.build(base, output) if output else net.default_image(base=base)
    else:
        img = tiny.build(output, force=force) if output else tiny.default_image()
    click.echo(f"kernel: {img.kernel}")
    click.echo(f"initrd: {img.initrd}")


def _build_debian(
    output: Path | None,
    force: bool,
    size: str,
    suite: str,
    mirror: str | None,
    hostname: str | None,
    root_password: str | None,
    ssh_key: Path | None,
    extra: tuple[str, ...],
) -> None:
    from pyvirt.images import debian_image as deb
    from pyvirt.model.volume import parse_size

    recipe = deb.Recipe(
        suite=suite,
        mirror=mirror or deb.DEFAULT_MIRROR,
        size=parse_size(size, what="--size"),
        hostname=hostname or deb.DEFAULT_HOSTNAME,
        root_password=root_password,
        ssh_key=ssh_key.read_text() if ssh_key else None,
        extra_packages=extra,
    )
    img = deb.build(recipe, output, force=force)
    click.echo(f"disk:   {img.disk}")
    click.echo(f"kernel: {img.kernel}")
    click.echo(f"initrd: {img.initrd}")
    click.echo(f"domain: {img.domain_xml}  (pyvirt define {img.domain_xml})")


@image.command(name="list")
def list_() -> None:
    """List the images built so far (tiny and debian), with their paths and sizes."""
    from pyvirt.images import debian_image, tiny

    rows: list[list[str]] = []
    cache = tiny.default_cache_dir()
    found = sorted(p.parent for p in cache.glob("*/manifest.json")) if cache.is_dir() else []
    for directory in found:
        used = sum(f.stat().st_size for f in directory.iterdir() if f.is_file())
        rows.append(["tiny", str(directory), "-", _human(used)])
    for img in debian_image.built_images():
        size = int(str(img.manifest.get("size", 0)))
        used = sum(f.stat().st_blocks * 512 for f in img.directory.iterdir() if f.is_file())
        rows.append(["debian", str(img.directory), _human(size), _human(used)])
    from pyvirt.cli.render import table

    table(["Kind", "Path", "Disk size", "Used"], rows)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.2f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"
