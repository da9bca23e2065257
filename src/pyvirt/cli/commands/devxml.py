"""Device XML and guest input commands: attach-device, detach-device, change-media,
send-key, desc, metadata, domblkerror, domcontrol (virsh's names, options and messages)."""

from __future__ import annotations

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import as_json
from pyvirt.errors import InvalidConfigError

DOMAIN = click.argument("domain", metavar="DOMAIN")


def _flags(fn: click.decorators.FC, *, persistent: bool = True) -> click.decorators.FC:
    opts = [
        click.option("--current", is_flag=True, help="affect the current domain state"),
        click.option("--config", is_flag=True, help="affect the next boot (the definition)"),
        click.option("--live", is_flag=True, help="affect the running domain"),
    ]
    if persistent:
        helptext = "affect the definition (and live)"
        opts.insert(1, click.option("--persistent", is_flag=True, help=helptext))
    for opt in opts:
        fn = opt(fn)
    return fn


def _no_persistent(fn: click.decorators.FC) -> click.decorators.FC:
    return _flags(fn, persistent=False)


@click.command("attach-device")
@DOMAIN
@click.argument("file", metavar="FILE")
@_flags
@click.pass_context
def attach_device(
    ctx: click.Context, domain: str, file: str, live: bool, config: bool, persistent: bool,
    current: bool,
) -> None:  # fmt: skip
    """Attach a device (disk, NIC, controller, input, serial, hostdev, rng, watchdog) from XML."""
    from pyvirt.cli.render import read_input

    dom = api(ctx).domains.get(domain)
    dom.attach_device(
        read_input(file), live=live, config=config, current=current, persistent=persistent
    )
    click.echo("Device attached successfully\n")


@click.command("detach-device")
@DOMAIN
@click.argument("file", metavar="FILE")
@_flags
@click.pass_context
def detach_device(
    ctx: click.Context, domain: str, file: str, live: bool, config: bool, persistent: bool,
    current: bool,
) -> None:  # fmt: skip
    """Detach the device an XML file describes."""
    from pyvirt.cli.render import read_input

    dom = api(ctx).domains.get(domain)
    dom.detach_device(
        read_input(file), live=live, config=config, current=current, persistent=persistent
    )
    click.echo("Device detached successfully\n")


@click.command("change-media")
@DOMAIN
@click.argument("path", metavar="PATH|TARGET")
@click.argument("source", metavar="[SOURCE]", required=False)
@click.option("--eject", is_flag=True, help="eject the medium")
@click.option("--insert", is_flag=True, help="insert SOURCE into an empty drive")
@click.option("--update", is_flag=True, help="replace the medium with SOURCE (none: eject)")
@click.option("--force", is_flag=True, help="eject even if the guest locked the tray")
@click.option("--block", is_flag=True, hidden=True, help="the source is a block device")
@click.option("--print-xml", is_flag=True, help="print the drive's new XML; change nothing")
@_no_persistent
@click.pass_context
def change_media(
    ctx: click.Context, domain: str, path: str, source: str | None, eject: bool, insert: bool,
    update: bool, force: bool, block: bool, print_xml: bool, live: bool, config: bool,
    current: bool,
) -> None:  # fmt: skip
    """Change the medium of a CD-ROM or floppy drive."""
    chosen = [name for name, on in (("eject", eject), ("insert", insert), ("update", update)) if on]
    if len(chosen) > 1:
        raise InvalidConfigError(
            f"options --{chosen[0]} and --{chosen[1]} are mutually exclusive",
            hint="give one of --eject, --insert, --update",
        )
    dom = api(ctx).domains.get(domain)
    done = dom.change_media(
        path, source, action=chosen[0] if chosen else "update", force=force, live=live,
        config=config, current=current, print_xml=print_xml,
    )  # fmt: skip
    if print_xml:
        click.echo(done)
        return
    click.echo(f"Successfully {done} media.")


@click.command("send-key")
@DOMAIN
@click.argument("keycodes", nargs=-1, required=True, metavar="KEYCODE...")
@click.option(
    "--codeset",
    default="linux",
    show_default=True,
    help="linux, xt, atset1, atset2, atset3, os_x, xt_kbd, win32, usb, qnum, rfb",
)
@click.option("--holdtime", type=int, help="milliseconds to hold the keys")
@click.pass_context
def send_key(
    ctx: click.Context, domain: str, keycodes: tuple[str, ...], codeset: str,
    holdtime: int | None,
) -> None:  # fmt: skip
    """Send keystrokes (pressed together) to the guest."""
    api(ctx).domains.get(domain).send_key(list(keycodes), codeset=codeset, holdtime=holdtime)


@click.command()
@DOMAIN
@click.option("--title", is_flag=True, help="the title instead of the description")
@click.option("--new-desc", "new_desc", metavar="TEXT", help="set the text (empty: remove)")
@click.option("--edit", is_flag=True, help="edit the text in $EDITOR")
@_no_persistent
@click.pass_context
def desc(
    ctx: click.Context, domain: str, title: bool, new_desc: str | None, edit: bool, live: bool,
    config: bool, current: bool,
) -> None:  # fmt: skip
    """Show or change a domain's description or title."""
    if edit and new_desc is not None:
        raise InvalidConfigError("options --edit and --new-desc are mutually exclusive")
    dom = api(ctx).domains.get(domain)
    what = "title" if title else "description"
    if edit:
        old = dom.desc(title=title, config=config)
        text = click.edit(old, extension=".txt")
        if text is None or text == old:
            click.echo(f"Domain {what} not changed")
            return
        new_desc = text.rstrip("\n") if title else text
    if new_desc is None:
        text = dom.desc(title=title, config=config)
        click.echo(text if text else f"No {what} for domain: {dom.name}")
        return
    dom.set_desc(new_desc, title=title, live=live, config=config, current=current)
    click.echo(f"Domain {what} updated successfully")


@click.command()
@DOMAIN
@click.argument("uri", metavar="URI")
@click.option("--key", metavar="KEY", help="the namespace prefix (needed with --set)")
@click.option("--set", "set_xml", metavar="XML", help="new metadata element")
@click.option("--remove", is_flag=True, help="remove the element of the namespace")
@click.option("--edit", is_flag=True, help="edit the element in $EDITOR")
@_no_persistent
@click.pass_context
def metadata(
    ctx: click.Context, domain: str, uri: str, key: str | None, set_xml: str | None,
    remove: bool, edit: bool, live: bool, config: bool, current: bool,
) -> None:  # fmt: skip
    """Show or change a domain's custom XML metadata of one namespace."""
    if sum((set_xml is not None, remove, edit)) > 1:
        raise InvalidConfigError("options --set, --remove and --edit are mutually exclusive")
    dom = api(ctx).domains.get(domain)
    if edit:
        from pyvirt.errors import NotFoundError

        try:
            old = dom.metadata(uri, config=config)
        except NotFoundError:
            old = ""
        text = click.edit(old, extension=".xml")
        if text is None or text == old:
            click.echo("Metadata not changed")
            return
        set_xml = text
    if set_xml is None and not remove:
        click.echo(dom.metadata(uri, config=config))
        return
    dom.set_metadata(
        uri, None if remove else set_xml, key=key, live=live, config=config, current=current
    )
    click.echo("Metadata removed" if remove else "Metadata modified")


@click.command()
@DOMAIN
@click.option("--json", "as_json_", is_flag=True, help="print JSON")
@click.pass_context
def domblkerror(ctx: click.Context, domain: str, as_json_: bool) -> None:
    """Show the disks of a running domain with I/O errors."""
    errors = api(ctx).domains.get(domain).blkerror()
    if as_json_:
        as_json([e.to_json() for e in errors])
        return
    if not errors:
        click.echo("No errors found")
    for err in errors:
        click.echo(f"{err.target}: {err.error}")


@click.command()
@DOMAIN
@click.pass_context
def domcontrol(ctx: click.Context, domain: str) -> None:
    """Show whether the domain can be controlled now (ok, occupied, error)."""
    info = api(ctx).domains.get(domain).control_info()
    if info.state == "ok":
        click.echo("ok")
    elif info.state == "error":
        click.echo(f"error: {info.reason}")
    else:
        click.echo(f"{info.state} ({info.reason})")
