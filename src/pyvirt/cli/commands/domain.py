"""Domain commands: virsh's names, options and messages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from pyvirt.cli.formats import domain_cells, dominfo_pairs, format_names
from pyvirt.cli.main import api
from pyvirt.cli.render import as_json, fields, read_input, table, warn
from pyvirt.errors import InvalidConfigError, InvalidStateError

if TYPE_CHECKING:
    from pyvirt.api.domains import Domain

DOMAIN = click.argument("domain", metavar="DOMAIN")


@click.command()
@click.argument("file", metavar="FILE")
@click.option(
    "--force", is_flag=True, help="define even what the NUMA advisor or the host-path checks refuse"
)
@click.pass_context
def define(ctx: click.Context, file: str, force: bool) -> None:
    """Define (but don't start) a domain from an XML file."""
    dom, warnings = api(ctx).domains.define(read_input(file), force=force)
    warn(warnings)
    click.echo(f"Domain '{dom.name}' defined from {file}\n")


@click.command()
@DOMAIN
@click.option("--remove-all-storage", is_flag=True, help="also delete the domain's disk files")
@click.option("--storage", metavar="vda,...", help="delete these disks (targets or paths)")
@click.option("--nvram", is_flag=True, help="also delete its UEFI variables file")
@click.option("--keep-nvram", is_flag=True, help="keep its UEFI variables file")
@click.option("--tpm", is_flag=True, help="delete its TPM state even if persistent_state='yes'")
@click.option("--keep-tpm", is_flag=True, help="keep its emulated TPM's state")
@click.option("--managed-save", is_flag=True, help="also remove its managed save image")
@click.option("--force", is_flag=True, help="remove even a definition pyvirt cannot read")
@click.option("--snapshots-metadata", is_flag=True, help="also remove its snapshots' metadata")
@click.option("--checkpoints-metadata", is_flag=True, help="also remove its checkpoints' metadata")
@click.pass_context
def undefine(
    ctx: click.Context,
    domain: str,
    remove_all_storage: bool,
    storage: str | None,
    nvram: bool,
    keep_nvram: bool,
    tpm: bool,
    keep_tpm: bool,
    managed_save: bool,
    force: bool,
    snapshots_metadata: bool,
    checkpoints_metadata: bool,
) -> None:
    """Undefine a domain (a running one becomes transient)."""
    dom = api(ctx).domains.get(domain)
    only = [s.strip() for s in storage.split(",") if s.strip()] if storage else []
    removed = dom.undefine(
        remove_all_storage=remove_all_storage,
        storage=only,
        force=force,
        snapshots_metadata=snapshots_metadata,
        managed_save=managed_save,
        checkpoints_metadata=checkpoints_metadata,
        nvram=nvram,
        keep_nvram=keep_nvram,
        tpm=tpm,
        keep_tpm=keep_tpm,
    )
    for path in removed:
        click.echo(f"Volume '{path}' removed.")
    click.echo(f"Domain '{dom.name}' has been undefined\n")


@click.command()
@click.argument("file", metavar="FILE")
@click.option("--paused", is_flag=True, help="leave the guest paused after creation")
@click.option("--console", "attach", is_flag=True, help="attach to the console after creation")
@click.pass_context
def create(ctx: click.Context, file: str, paused: bool, attach: bool) -> None:
    """Create and start a transient domain from an XML file."""
    dom = api(ctx).domains.create(read_input(file), paused=paused)
    click.echo(f"Domain '{dom.name}' created from {file}\n")
    if attach:
        _console(dom)


@click.command()
@DOMAIN
@click.option("--paused", is_flag=True, help="leave the guest paused after start")
@click.option("--console", "attach", is_flag=True, help="attach to the console after start")
@click.option("--force-boot", is_flag=True, help="discard any managed save image and boot")
@click.pass_context
def start(ctx: click.Context, domain: str, paused: bool, attach: bool, force_boot: bool) -> None:
    """Start a (previously defined) inactive domain."""
    dom = api(ctx).domains.get(domain)
    st = dom.start(paused=paused, force_boot=force_boot)
    click.echo(f"Domain '{st.name}' started\n")
    if attach:
        _console(dom)


def _simple(name: str, verb: Callable[[Domain], None], message: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @DOMAIN
    @click.pass_context
    def command(ctx: click.Context, domain: str) -> None:
        dom = api(ctx).domains.get(domain)
        verb(dom)
        click.echo(message.format(name=dom.name) + "\n")

    return command


@click.command()
@DOMAIN
@click.option("--mode", default=None, help="acpi (power button, default) or agent; 'agent,acpi'")
@click.pass_context
def shutdown(ctx: click.Context, domain: str, mode: str | None) -> None:
    """Gracefully shut down a domain."""
    dom = api(ctx).domains.get(domain)
    dom.shutdown([m.strip() for m in mode.split(",") if m.strip()] if mode else None)
    click.echo(f"Domain '{dom.name}' is being shutdown\n")


reboot = _simple(
    "reboot", lambda d: d.reboot(), "Domain '{name}' is being rebooted", "Reboot a domain."
)
reset = _simple(
    "reset",
    lambda d: d.reset(),
    "Domain '{name}' was reset",
    "Reset a domain (like the reset button).",
)
suspend = _simple(
    "suspend",
    lambda d: d.suspend(),
    "Domain '{name}' suspended",
    "Suspend (pause) a running domain.",
)
resume = _simple(
    "resume",
    lambda d: d.resume(),
    "Domain '{name}' resumed",
    "Resume a previously suspended domain.",
)


@click.command()
@DOMAIN
@click.option("--graceful", is_flag=True, help="wait longer for QEMU to exit before SIGKILL")
@click.pass_context
def destroy(ctx: click.Context, domain: str, graceful: bool) -> None:
    """Destroy (stop) a domain immediately."""
    dom = api(ctx).domains.get(domain)
    dom.destroy(graceful=graceful)
    click.echo(f"Domain '{dom.name}' destroyed\n")


@click.command(name="list")
@click.option("--all", "all_", is_flag=True, help="list inactive and active domains")
@click.option("--inactive", is_flag=True, help="list inactive domains only")
@click.option("--name", "names_only", is_flag=True, help="list domain names only")
@click.option("--uuid", "uuids_only", is_flag=True, help="list domain UUIDs only")
@click.option("--state-running", is_flag=True, help="list running domains")
@click.option("--state-paused", is_flag=True, help="list paused domains")
@click.option("--state-shutoff", is_flag=True, help="list shut-off domains")
@click.option("--persistent", is_flag=True, help="list persistent domains")
@click.option("--transient", is_flag=True, help="list transient domains")
@click.option("--autostart", is_flag=True, help="list domains with autostart enabled")
@click.option("--no-autostart", is_flag=True, help="list domains with autostart disabled")
@click.option("--title", is_flag=True, help="show domain titles")
@click.option("--managed-save", is_flag=True, help="show 'saved' for domains with a managed save")
@click.option("--with-managed-save", "--with-managedsave", "with_ms", is_flag=True,
              help="list domains with a managed save image")  # fmt: skip
@click.option("--without-managed-save", "--without-managedsave", "without_ms", is_flag=True,
              help="list domains without a managed save image")  # fmt: skip
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def list_(
    ctx: click.Context,
    all_: bool,
    inactive: bool,
    names_only: bool,
    uuids_only: bool,
    state_running: bool,
    state_paused: bool,
    state_shutoff: bool,
    persistent: bool,
    transient: bool,
    autostart: bool,
    no_autostart: bool,
    title: bool,
    managed_save: bool,
    with_ms: bool,
    without_ms: bool,
    json_: bool,
) -> None:
    """List domains (running ones unless --all or --inactive)."""
    from pyvirt.api.domains import State

    conn = api(ctx)
    wanted: set[State] = set()
    if state_running:
        wanted.add(State.RUNNING)
    if state_paused:
        wanted.add(State.PAUSED)
    if state_shutoff:
        wanted.add(State.SHUTOFF)
    if not wanted:
        if inactive:
            wanted = {State.SHUTOFF}
        elif all_:
            wanted = set(State)
        else:
            wanted = {State.RUNNING, State.PAUSED}
    rows = conn.domains.list(states=wanted, with_uuids=json_ or uuids_only)
    for s in rows:
        if s.problem:
            click.echo(f"warning: domain '{s.name}': {s.problem}", err=True)
    if persistent:
        rows = [s for s in rows if s.persistent]
    if transient:
        rows = [s for s in rows if not s.persistent]
    if autostart:
        rows = [s for s in rows if s.autostart]
    if no_autostart:
        rows = [s for s in rows if not s.autostart]
    ms_flags = managed_save or with_ms or without_ms
    saved = conn.domains.managed_save_names() if ms_flags else set()
    if with_ms:
        rows = [s for s in rows if s.name in saved]
    if without_ms:
        rows = [s for s in rows if s.name not in saved]
    if json_:
        as_json([{**s.to_json(), "managed_save": s.name in saved} if ms_flags else s.to_json()
                 for s in rows])  # fmt: skip
    elif names_only or uuids_only:
        text = format_names(((s.uuid, s.name) for s in rows), uuids=uuids_only, names=names_only)
        click.echo(text, nl=False)
    else:
        headers = ["Id", "Name", "State"]
        cells = domain_cells(
            (
                s.id,
                s.name,
                "saved" if s.name in saved and s.state is State.SHUTOFF else str(s.state),
            )
            for s in rows
        )
        if title:
            headers.append("Title")
            for cell, s in zip(cells, rows, strict=True):
                cell.append(conn.domains.get(s.name).info().title or "")
        table(headers, cells)


@click.command()
@DOMAIN
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def dominfo(ctx: click.Context, domain: str, json_: bool) -> None:
    """Show basic information about a domain."""
    info = api(ctx).domains.get(domain).info().to_json()
    if json_:
        as_json(info)
        return
    pairs = dominfo_pairs(info)
    fields(pairs)


@click.command()
@DOMAIN
@click.option("--reason", is_flag=True, help="also print the reason for the state")
@click.pass_context
def domstate(ctx: click.Context, domain: str, reason: bool) -> None:
    """Show the state of a domain."""
    st = api(ctx).domains.get(domain).status()
    click.echo(f"{st.state} ({st.reason})" if reason else str(st.state))
    click.echo()


@click.command()
@DOMAIN
@click.pass_context
def domid(ctx: click.Context, domain: str) -> None:
    """Convert a domain name or UUID to a domain id."""
    st = api(ctx).domains.get(domain).status()
    click.echo(f"{st.id if st.id is not None else '-'}\n")


@click.command()
@DOMAIN
@click.pass_context
def domuuid(ctx: click.Context, domain: str) -> None:
    """Convert a domain name or id to a UUID."""
    click.echo(api(ctx).domains.get(domain).status().uuid + "\n")


@click.command()
@DOMAIN
@click.pass_context
def domname(ctx: click.Context, domain: str) -> None:
    """Convert a domain id or UUID to a domain name."""
    click.echo(api(ctx).domains.get(domain).status().name + "\n")


@click.command()
@DOMAIN
@click.option("--inactive", is_flag=True, help="show the persistent (not the live) definition")
@click.option("--security-info", is_flag=True, help="include security-sensitive information")
@click.option("--xpath", metavar="EXPR", help="print only the nodes matching EXPR")
@click.pass_context
def dumpxml(
    ctx: click.Context, domain: str, inactive: bool, security_info: bool, xpath: str | None
) -> None:
    """Print the domain's XML definition."""
    dom = api(ctx).domains.get(domain)
    if xpath:
        for item in dom.xpath(xpath, inactive=inactive):
            click.echo(item)
        return
    xml = dom.xml_desc(inactive=inactive, security_info=security_info)
    click.echo(xml.rstrip("\n"))


@click.command()
@DOMAIN
@click.pass_context
def edit(ctx: click.Context, domain: str) -> None:
    """Edit the domain's XML in $EDITOR; invalid XML re-prompts or aborts."""
    from pyvirt.cli.editing import edit_loop

    dom = api(ctx).domains.get(domain)
    try:
        revision: str | None = dom.revision()  # read first: a change meanwhile is refused
    except InvalidStateError:
        revision = None  # transient: editing defines it

    def apply(text: str) -> tuple[str, list[str]]:
        return dom.name, dom.redefine(text, expect_revision=revision)

    # with the secrets, as virsh edit: saving must not drop the VNC password (the temporary
    # file is private to root)
    edit_loop("Domain", dom.name, dom.xml_desc(inactive=True, security_info=True), apply)


@click.command()
@DOMAIN
@click.argument("new_name", metavar="NEW_NAME")
@click.pass_context
def domrename(ctx: click.Context, domain: str, new_name: str) -> None:
    """Rename a shut-off domain."""
    api(ctx).domains.get(domain).rename(new_name)
    click.echo("Domain successfully renamed\n")


@click.command()
@DOMAIN
@click.option("--disable", is_flag=True, help="disable autostarting")
@click.pass_context
def autostart(ctx: click.Context, domain: str, disable: bool) -> None:
    """Mark a domain to start when the host (daemon) starts."""
    dom = api(ctx).domains.get(domain)
    dom.set_autostart(not disable)
    verb = "unmarked as autostarted" if disable else "marked as autostarted"
    click.echo(f"Domain '{dom.name}' {verb}\n")


def _console(dom: Domain, force: bool = False) -> None:
    """Attach the terminal to ``dom``'s serial console with virsh's banner."""
    dom.console_socket()  # refuse before the banner when there is no console
    click.echo(f"Connected to domain '{dom.name}'")
    click.echo("Escape character is ^] (Ctrl + ])")
    dom.attach_console(force=force)
    click.echo()


@click.command()
@DOMAIN
@click.option("--force", is_flag=True, help="take the console over from another session")
@click.pass_context
def console(ctx: click.Context, domain: str, force: bool) -> None:
    """Connect to the guest's serial console (escape with ^])."""
    _console(api(ctx).domains.get(domain), force)


@click.command()
@DOMAIN
@click.pass_context
def vncdisplay(ctx: click.Context, domain: str) -> None:
    """Print the VNC display of a running domain."""
    vnc = api(ctx).domains.get(domain).vnc_display()
    click.echo(f"{vnc.listen}:{vnc.display}\n")


@click.command()
@DOMAIN
@click.option("--type", "type_", default=None, help="only this graphics type (vnc)")
@click.pass_context
def domdisplay(ctx: click.Context, domain: str, type_: str | None) -> None:
    """Print the URI to connect to the domain's display."""
    click.echo(api(ctx).domains.get(domain).vnc_display().uri + "\n")


@click.command(name="domxml-to-native")
@click.argument("format_", metavar="FORMAT", type=click.Choice(["qemu-argv"]))
@click.argument("file", metavar="FILE", required=False)
@click.option("--xml", "xml_file", metavar="FILE", help="domain XML file")
@click.option("--domain", "domain", metavar="DOMAIN", help="use a defined domain's XML")
@click.pass_context
def domxml_to_native(
    ctx: click.Context, format_: str, file: str | None, xml_file: str | None, domain: str | None
) -> None:
    """Convert domain XML to a QEMU command line."""
    domains = api(ctx).domains
    if domain:
        argv = domains.get(domain).native_argv()
    else:
        source = file or xml_file
        if not source:
            raise InvalidConfigError("give a domain XML FILE, --xml FILE or --domain DOMAIN")
        argv = domains.native_argv(read_input(source))
    import shlex

    click.echo(" ".join(shlex.quote(a) for a in argv))
