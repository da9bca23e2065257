"""Guest agent commands (virsh's names): guestinfo, domfsinfo, set-user-password, domfsfreeze,
domfsthaw, domtime, qemu-agent-command. They need qemu-guest-agent running in the guest and a
``<channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import table

DOMAIN = click.argument("domain", metavar="DOMAIN")
TIMEOUT = click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="seconds to wait for the guest agent",
)


@click.command()
@DOMAIN
@click.option("--user", is_flag=True, help="logged-in users")
@click.option("--os", "os_", is_flag=True, help="operating system")
@click.option("--timezone", is_flag=True, help="time zone")
@click.option("--hostname", is_flag=True, help="host name")
@click.option("--filesystem", is_flag=True, help="mounted filesystems")
@TIMEOUT
@click.pass_context
def guestinfo(
    ctx: click.Context,
    domain: str,
    user: bool,
    os_: bool,
    timezone: bool,
    hostname: bool,
    filesystem: bool,
    timeout: float,
) -> None:
    """Information from the guest agent (all groups unless some are named)."""
    picked = {"user": user, "os": os_, "timezone": timezone, "hostname": hostname}
    picked["filesystem"] = filesystem
    groups = [g for g, on in picked.items() if on]
    pairs = api(ctx).domains.get(domain).guest_info(groups, timeout=timeout)
    for key, value in pairs:
        click.echo(f"{key:<20}: {value}")
    click.echo()


@click.command()
@DOMAIN
@TIMEOUT
@click.pass_context
def domfsinfo(ctx: click.Context, domain: str, timeout: float) -> None:
    """The guest's mounted filesystems and the domain disks they are on."""
    rows = api(ctx).domains.get(domain).fs_info(timeout=timeout)
    table(
        ["Mountpoint", "Name", "Type", "Target"],
        [[f.mountpoint, f.name, f.type, ",".join(f.targets)] for f in rows],
    )


@click.command("set-user-password")
@DOMAIN
@click.argument("user", metavar="USER")
@click.argument("password", metavar="PASSWORD")
@click.option("--encrypted", is_flag=True, help="PASSWORD is already a crypt(3) hash")
@TIMEOUT
@click.pass_context
def set_user_password(
    ctx: click.Context, domain: str, user: str, password: str, encrypted: bool, timeout: float
) -> None:
    """Set a user's password in the guest."""
    dom = api(ctx).domains.get(domain)
    dom.set_user_password(user, password, encrypted=encrypted, timeout=timeout)
    click.echo(f"Password set successfully for {user} in {dom.name}\n")


@click.command()
@DOMAIN
@click.option("--mountpoint", "mountpoints", multiple=True, help="freeze only this mount point")
@TIMEOUT
@click.pass_context
def domfsfreeze(
    ctx: click.Context, domain: str, mountpoints: tuple[str, ...], timeout: float
) -> None:
    """Freeze the guest's filesystems (writes block until domfsthaw)."""
    count = api(ctx).domains.get(domain).fs_freeze(mountpoints, timeout=timeout)
    click.echo(f"Froze {count} filesystem(s)\n")


@click.command()
@DOMAIN
@TIMEOUT
@click.pass_context
def domfsthaw(ctx: click.Context, domain: str, timeout: float) -> None:
    """Thaw the guest's frozen filesystems."""
    count = api(ctx).domains.get(domain).fs_thaw(timeout=timeout)
    click.echo(f"Thawed {count} filesystem(s)\n")


@click.command()
@DOMAIN
@click.option("--now", is_flag=True, help="set the guest's clock to the host's time")
@click.option("--pretty", is_flag=True, help="print the time as a date")
@click.option("--sync", is_flag=True, help="set the guest's clock from its RTC")
@click.option("--time", "seconds", type=int, default=None, help="set to SECONDS since the epoch")
@TIMEOUT
@click.pass_context
def domtime(
    ctx: click.Context,
    domain: str,
    now: bool,
    pretty: bool,
    sync: bool,
    seconds: int | None,
    timeout: float,
) -> None:
    """Show or set the guest's clock."""
    from pyvirt.errors import InvalidConfigError

    if sum((now, sync, seconds is not None)) > 1:
        raise InvalidConfigError("--now, --sync and --time are mutually exclusive")
    dom = api(ctx).domains.get(domain)
    if now or sync or seconds is not None:
        ns = None if sync else (time.time_ns() if now else (seconds or 0) * 1_000_000_000)
        dom.set_guest_time(ns, timeout=timeout)
        return
    ns = dom.guest_time(timeout=timeout)
    if pretty:
        stamp = datetime.fromtimestamp(ns // 1_000_000_000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(f"Time: {stamp}")
    else:
        click.echo(f"Time: {ns // 1_000_000_000}")


@click.command("qemu-agent-command")
@DOMAIN
@click.argument("cmd", metavar="CMD", nargs=-1, required=True)
@click.option("--pretty", is_flag=True, help="indent the JSON reply")
@TIMEOUT
@click.pass_context
def qemu_agent_command(
    ctx: click.Context, domain: str, cmd: tuple[str, ...], pretty: bool, timeout: float
) -> None:
    """Send a raw JSON command to the guest agent and print its reply."""
    from pyvirt.errors import InvalidConfigError

    text = " ".join(cmd)
    try:
        request = json.loads(text)
    except ValueError as err:
        raise InvalidConfigError(f"the agent command is not valid JSON: {err}") from None
    result = api(ctx).domains.get(domain).agent_command(request, timeout=timeout)
    reply = {"return": result}
    click.echo(json.dumps(reply, indent=2) if pretty else json.dumps(reply, separators=(",", ":")))
