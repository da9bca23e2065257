"""Image commands: build and list the guest images pyvirt can make itself."""

from __future__ import annotations

from pathlib import Path

import click

from pyvirt.cli.main import api


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
@click.pass_context
def build(
    ctx: click.Context,
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
    host = api(ctx).host
    if kind == "debian":
        from pyvirt.api.values import parse_size

        img = host.build_debian_image(
            output,
            force=force,
            size=parse_size(size, what="--size"),
            suite=suite,
            mirror=mirror,
            hostname=hostname,
            root_password=root_password,
            ssh_key=ssh_key.read_text() if ssh_key else None,
            extra_packages=extra,
        )
        click.echo(f"disk:   {img.disk}")
        click.echo(f"kernel: {img.kernel}")
        click.echo(f"initrd: {img.initrd}")
        click.echo(f"domain: {img.domain_xml}  (pyvirt define {img.domain_xml})")
        return
    if kind == "tiny-net":  # the tiny image plus iperf3
        img = host.build_net_image(output)
    else:
        img = host.build_tiny_image(output, force=force)
    click.echo(f"kernel: {img.kernel}")
    click.echo(f"initrd: {img.initrd}")


@image.command(name="list")
@click.pass_context
def list_(ctx: click.Context) -> None:
    """List the images built so far (tiny and debian), with their paths and sizes."""
    from pyvirt.cli.render import table

    rows = [
        [
            i.kind,
            i.directory,
            "-" if i.disk_size is None else _human(i.disk_size),
            _human(i.used),
        ]
        for i in api(ctx).host.images()
    ]
    table(["Kind", "Path", "Disk size", "Used"], rows)


def _human(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.2f} {unit}" if unit != "B" else f"{n} B"
        value /= 1024
    return f"{n} B"
