"""Domain commands: virsh's names, options and messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from pyvirt.cli.main import connection
from pyvirt.cli.render import as_json, fields, read_input, table, warn
from pyvirt.errors import InvalidConfigError, PyvirtError

if TYPE_CHECKING:
    from pyvirt.service.domain.manager import DomainManager

DOMAIN = click.argument("domain", metavar="DOMAIN")


@click.command()
@click.argument("file", metavar="FILE")
@click.option("--force", is_flag=True, help="define even what the NUMA advisor refuses")
@click.pass_context
def define(ctx: click.Context, file: str, force: bool) -> None:
    """Define (but don't start) a domain from an XML file."""
    dom, warnings = connection(ctx).domains.define(read_input(file), force=force)
    warn(warnings)
    click.echo(f"Domain '{dom.name}' defined from {file}\n")


@click.command()
@DOMAIN
@click.option("--remove-all-storage", is_flag=True, help="also delete the domain's disk files")
@click.option("--storage", metavar="vda,...", help="delete these disks (targets or paths)")
@click.option("--nvram", is_flag=True, hidden=True)
@click.option("--managed-save", is_flag=True, hidden=True)
@click.pass_context
def undefine(
    ctx: click.Context,
    domain: str,
    remove_all_storage: bool,
    storage: str | None,
    nvram: bool,
    managed_save: bool,
) -> None:
    """Undefine a domain (a running one becomes transient)."""
    mgr = connection(ctx).domains
    name = mgr.resolve(domain)
    only = [s.strip() for s in storage.split(",") if s.strip()] if storage else []
    for path in mgr.undefine(name, remove_all_storage=remove_all_storage, storage=only):
        click.echo(f"Volume '{path}' removed.")
    click.echo(f"Domain '{name}' has been undefined\n")


@click.command()
@click.argument("file", metavar="FILE")
@click.option("--paused", is_flag=True, help="leave the guest paused after creation")
@click.option("--console", "attach", is_flag=True, help="attach to the console after creation")
@click.pass_context
def create(ctx: click.Context, file: str, paused: bool, attach: bool) -> None:
    """Create and start a transient domain from an XML file."""
    mgr = connection(ctx).domains
    st = mgr.create(read_input(file), paused=paused)
    click.echo(f"Domain '{st.name}' created from {file}\n")
    if attach:
        _console(mgr, st.name)


@click.command()
@DOMAIN
@click.option("--paused", is_flag=True, help="leave the guest paused after start")
@click.option("--console", "attach", is_flag=True, help="attach to the console after start")
@click.pass_context
def start(ctx: click.Context, domain: str, paused: bool, attach: bool) -> None:
    """Start a (previously defined) inactive domain."""
    mgr = connection(ctx).domains
    st = mgr.start(domain, paused=paused)
    click.echo(f"Domain '{st.name}' started\n")
    if attach:
        _console(mgr, st.name)


def _simple(verb: str, message: str, doc: str) -> click.Command:
    @click.command(name=verb, help=doc)
    @DOMAIN
    @click.pass_context
    def command(ctx: click.Context, domain: str) -> None:
        from pyvirt.service.domain import lifecycle

        mgr = connection(ctx).domains
        name = mgr.resolve(domain)
        getattr(lifecycle, verb)(mgr, name)
        click.echo(message.format(name=name) + "\n")

    return command


@click.command()
@DOMAIN
@click.option("--mode", default=None, help="acpi (power button, default) or agent; 'agent,acpi'")
@click.pass_context
def shutdown(ctx: click.Context, domain: str, mode: str | None) -> None:
    """Gracefully shut down a domain."""
    from pyvirt.service.domain import agent, lifecycle

    mgr = connection(ctx).domains
    name = mgr.resolve(domain)
    if mode:
        agent.shutdown_with_modes(mgr, name, [m.strip() for m in mode.split(",") if m.strip()])
    else:
        lifecycle.shutdown(mgr, name)
    click.echo(f"Domain '{name}' is being shutdown\n")


reboot = _simple("reboot", "Domain '{name}' is being rebooted", "Reboot a domain.")
reset = _simple("reset", "Domain '{name}' was reset", "Reset a domain (like the reset button).")
suspend = _simple("suspend", "Domain '{name}' suspended", "Suspend (pause) a running domain.")
resume = _simple("resume", "Domain '{name}' resumed", "Resume a previously suspended domain.")


@click.command()
@DOMAIN
@click.option("--graceful", is_flag=True, help="wait longer for QEMU to exit before SIGKILL")
@click.pass_context
def destroy(ctx: click.Context, domain: str, graceful: bool) -> None:
    """Destroy (stop) a domain immediately."""
    from pyvirt.service.domain import lifecycle

    mgr = connection(ctx).domains
    name = mgr.resolve(domain)
    lifecycle.destroy(mgr, name, graceful=graceful)
    click.echo(f"Domain '{name}' destroyed\n")


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
    json_: bool,
) -> None:
    """List domains (running ones unless --all or --inactive)."""
    from pyvirt.service.domain.types import State

    statuses = connection(ctx).domains.list_all(uuids=json_ or uuids_only)
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
    rows = [s for s in statuses if s.state in wanted]
    if persistent:
        rows = [s for s in rows if s.persistent]
    if transient:
        rows = [s for s in rows if not s.persistent]
    if autostart:
        rows = [s for s in rows if s.autostart]
    if no_autostart:
        rows = [s for s in rows if not s.autostart]
    if json_:
        as_json([s.to_json() for s in rows])
    elif names_only or uuids_only:
        for s in rows:
            click.echo(" ".join(x for x in (uuids_only and s.uuid, names_only and s.name) if x))
        click.echo()
    else:
        headers = ["Id", "Name", "State"]
        cells = [[str(s.id) if s.id is not None else "-", s.name, str(s.state)] for s in rows]
        if title:
            mgr = connection(ctx).domains
            headers.append("Title")
            for cell, s in zip(cells, rows, strict=True):
                cell.append(mgr.definition(s.name).title or "")
        table(headers, cells)


@click.command()
@DOMAIN
@click.option("--json", "json_", is_flag=True, help="machine-readable output")
@click.pass_context
def dominfo(ctx: click.Context, domain: str, json_: bool) -> None:
    """Show basic information about a domain."""
    from pyvirt.service.domain import lifecycle

    mgr = connection(ctx).domains
    st = mgr.status(domain)
    dom = mgr.definition(st.name)
    cpu = lifecycle.cpu_time(st.pid) if st.pid else None
    info = {
        **st.to_json(),
        "os_type": dom.os.type,
        "vcpus": dom.vcpu.current or dom.vcpu.count,
        "cpu_time": cpu,
        "max_memory_kib": dom.memory_kib,
        "used_memory_kib": dom.current_memory_kib,
        "title": dom.title,
    }
    if json_:
        as_json(info)
        return
    pairs = [
        ("Id", str(st.id) if st.id is not None else "-"),
        ("Name", st.name),
        ("UUID", st.uuid),
    ]
    if dom.title:
        pairs.append(("Title", dom.title))
    pairs += [
        ("OS Type", dom.os.type),
        ("State", str(st.state)),
        ("CPU(s)", str(info["vcpus"])),
    ]
    if cpu is not None:
        pairs.append(("CPU time", f"{cpu:.1f}s"))
    pairs += [
        ("Max memory", f"{dom.memory_kib} KiB"),
        ("Used memory", f"{dom.current_memory_kib} KiB"),
        ("Persistent", "yes" if st.persistent else "no"),
        ("Autostart", "enable" if st.autostart else "disable"),
        ("Managed save", "no"),
        ("Security model", "none"),
        ("Security DOI", "0"),
    ]
    fields(pairs)


@click.command()
@DOMAIN
@click.option("--reason", is_flag=True, help="also print the reason for the state")
@click.pass_context
def domstate(ctx: click.Context, domain: str, reason: bool) -> None:
    """Show the state of a domain."""
    st = connection(ctx).domains.status(domain)
    click.echo(f"{st.state} ({st.reason})" if reason else str(st.state))
    click.echo()


@click.command()
@DOMAIN
@click.pass_context
def domid(ctx: click.Context, domain: str) -> None:
    """Convert a domain name or UUID to a domain id."""
    st = connection(ctx).domains.status(domain)
    click.echo(f"{st.id if st.id is not None else '-'}\n")


@click.command()
@DOMAIN
@click.pass_context
def domuuid(ctx: click.Context, domain: str) -> None:
    """Convert a domain name or id to a UUID."""
    click.echo(connection(ctx).domains.status(domain).uuid + "\n")


@click.command()
@DOMAIN
@click.pass_context
def domname(ctx: click.Context, domain: str) -> None:
    """Convert a domain id or UUID to a domain name."""
    click.echo(connection(ctx).domains.status(domain).name + "\n")


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
    mgr = connection(ctx).domains
    if xpath:
        for item in mgr.xpath(domain, xpath, inactive=inactive):
            click.echo(item)
        return
    xml = mgr.dumpxml(domain, inactive=inactive)
    click.echo(xml.rstrip("\n"))


@click.command()
@DOMAIN
@click.pass_context
def edit(ctx: click.Context, domain: str) -> None:
    """Edit the domain's XML in $EDITOR; invalid XML re-prompts or aborts."""
    from pyvirt.cli.editing import edit_loop

    mgr = connection(ctx).domains
    name = mgr.resolve(domain)

    def apply(text: str) -> tuple[str, list[str]]:
        new = mgr.parse(text)
        if new.name != name:
            raise InvalidConfigError(
                f"edit must not change the name ('{name}' -> '{new.name}')",
                hint="use 'domrename' to rename a domain",
            )
        dom, warnings = mgr.define(text)
        return dom.name, list(warnings)

    edit_loop("Domain", name, mgr.dumpxml(name, inactive=True), apply)


@click.command()
@DOMAIN
@click.argument("new_name", metavar="NEW_NAME")
@click.pass_context
def domrename(ctx: click.Context, domain: str, new_name: str) -> None:
    """Rename a shut-off domain."""
    connection(ctx).domains.rename(domain, new_name)
    click.echo("Domain successfully renamed\n")


@click.command()
@DOMAIN
@click.option("--disable", is_flag=True, help="disable autostarting")
@click.pass_context
def autostart(ctx: click.Context, domain: str, disable: bool) -> None:
    """Mark a domain to start when the host (daemon) starts."""
    mgr = connection(ctx).domains
    name = mgr.resolve(domain)
    mgr.set_autostart(name, not disable)
    verb = "unmarked as autostarted" if disable else "marked as autostarted"
    click.echo(f"Domain '{name}' {verb}\n")


def _console(mgr: DomainManager, name: str) -> None:
    from pyvirt.service.domain import lifecycle

    name, _ = lifecycle.console_socket(mgr, name)
    click.echo(f"Connected to domain '{name}'")
    click.echo("Escape character is ^] (Ctrl + ])")
    lifecycle.attach_console(mgr, name)
    click.echo()


@click.command()
@DOMAIN
@click.option("--force", is_flag=True, hidden=True)
@click.pass_context
def console(ctx: click.Context, domain: str, force: bool) -> None:
    """Connect to the guest's serial console (escape with ^])."""
    _console(connection(ctx).domains, domain)


@click.command()
@DOMAIN
@click.pass_context
def vncdisplay(ctx: click.Context, domain: str) -> None:
    """Print the VNC display of a running domain."""
    display = _vnc(ctx, domain)
    click.echo(f"{display[0]}:{display[1]}\n")


def _vnc(ctx: click.Context, domain: str) -> tuple[str, int]:
    mgr = connection(ctx).domains
    name, rec = mgr.running(domain)
    if rec.vnc_display is None:
        raise PyvirtError(f"domain '{name}' has no VNC display")
    listen = "127.0.0.1"
    for g in mgr.definition(name).devices.graphics:
        if g.type == "vnc" and g.listen:
            listen = g.listen
    return listen, rec.vnc_display


@click.command()
@DOMAIN
@click.option("--type", "type_", default=None, help="only this graphics type (vnc)")
@click.pass_context
def domdisplay(ctx: click.Context, domain: str, type_: str | None) -> None:
    """Print the URI to connect to the domain's display."""
    listen, display = _vnc(ctx, domain)
    host = "localhost" if listen in ("0.0.0.0", "::", "127.0.0.1") else listen
    click.echo(f"vnc://{host}:{display}\n")


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
    from pyvirt.service.domain import lifecycle

    mgr = connection(ctx).domains
    if domain:
        dom = mgr.definition(domain, inactive=True)
    else:
        source = file or xml_file
        if not source:
            raise InvalidConfigError("give a domain XML FILE, --xml FILE or --domain DOMAIN")
        dom = mgr.parse(read_input(source))
    argv = lifecycle.native_argv(mgr, dom)
    import shlex

    click.echo(" ".join(shlex.quote(a) for a in argv))
