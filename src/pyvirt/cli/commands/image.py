"""Image commands: build and list the guest images pyvirt can make itself."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def image() -> None:
    """Build guest images (the tiny test guest for now)."""


@image.command()
@click.argument("kind", type=click.Choice(["tiny", "tiny-net"]))
@click.option("--output", "output", type=click.Path(path_type=Path), help="output directory")
@click.option("--force", is_flag=True, help="rebuild even if --output already holds an image")
def build(kind: str, output: Path | None, force: bool) -> None:
    """Build an image: 'tiny' is a kernel + busybox initramfs from Debian packages."""
    from pyvirt.images import tiny

    if kind == "tiny-net":  # the tiny image plus iperf3 (pyvirt.images.net)
        from pyvirt.images import net

        base = tiny.default_image()
        img = net.build(base, output) if output else net.default_image(base=base)
    else:
        img = tiny.build(output, force=force) if output else tiny.default_image()
    click.echo(f"kernel: {img.kernel}")
    click.echo(f"initrd: {img.initrd}")


@image.command(name="list")
def list_() -> None:
    """List the images built so far."""
    from pyvirt.images import tiny

    cache = tiny.default_cache_dir()
    found = sorted(p.parent for p in cache.glob("*/manifest.json")) if cache.is_dir() else []
    for directory in found:
        click.echo(f"tiny   {directory}")
