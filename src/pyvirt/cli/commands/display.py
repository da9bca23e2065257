"""Console commands beyond the serial line: ``screenshot`` and ``update-device``."""

from __future__ import annotations

import time
from pathlib import Path

import click

from pyvirt.cli.main import api


@click.command()
@click.argument("domain", metavar="DOMAIN")
@click.argument("file", metavar="FILE", required=False)
@click.option("--screen", type=int, default=0, help="the display head to capture")
@click.pass_context
def screenshot(ctx: click.Context, domain: str, file: str | None, screen: int) -> None:
    """Save the guest's screen as a PNG file."""
    dom = api(ctx).domains.get(domain)
    path = Path(file or f"{dom.name}-{time.strftime('%Y-%m-%d-%H:%M:%S')}.png")
    shot = dom.screenshot(path, screen=screen)
    click.echo(f"Screenshot saved to {path}, with type of image/png ({shot.width}x{shot.height})\n")


@click.command(name="update-device")
@click.argument("domain", metavar="DOMAIN")
@click.argument("file", metavar="FILE")
@click.option("--live", is_flag=True, help="change the running domain")
@click.option("--config", is_flag=True, help="change the persistent definition")
@click.option("--current", is_flag=True, help="live if running, else config (the default)")
@click.option("--persistent", is_flag=True, help="config, and live when running")
@click.option("--force", is_flag=True, hidden=True)
@click.pass_context
def update_device(
    ctx: click.Context,
    domain: str,
    file: str,
    live: bool,
    config: bool,
    current: bool,
    persistent: bool,
    force: bool,
) -> None:
    """Update a device (graphics, CD-ROM media, NIC link, other devices' definition) from XML."""
    from pyvirt.cli.render import read_input

    dom = api(ctx).domains.get(domain)
    dom.update_device(
        read_input(file), live=live, config=config, current=current, persistent=persistent
    )
    click.echo("Device updated successfully\n")
