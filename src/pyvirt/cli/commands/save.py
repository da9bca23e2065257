"""Save and restore commands: virsh's ``save``, ``restore``, ``managedsave``,
``managedsave-remove``, ``managedsave-dumpxml``, ``managedsave-define``, ``managedsave-edit``,
``save-image-dumpxml``, ``save-image-define`` and ``save-image-edit``, with virsh's options and
messages."""

from __future__ import annotations

import sys
from collections.abc import Callable

import click

from pyvirt.cli.main import api
from pyvirt.cli.render import read_input
from pyvirt.errors import InvalidConfigError

DOMAIN = click.argument("domain", metavar="DOMAIN")
FILE = click.argument("file", metavar="FILE")
RUNNING = click.option("--running", is_flag=True, help="be running when restored")
PAUSED = click.option("--paused", is_flag=True, help="be paused when restored")
BYPASS = click.option("--bypass-cache", is_flag=True, help="keep the file out of the page cache")
VERBOSE = click.option("--verbose", is_flag=True, help="display the progress")


def run_state(running: bool, paused: bool) -> bool | None:
    """``--running`` -> True, ``--paused`` -> False, neither -> None (as saved).

    :raises InvalidConfigError: both given
    """
    if running and paused:
        raise InvalidConfigError("options --running and --paused are mutually exclusive")
    return True if running else False if paused else None


def progress_printer(label: str) -> Callable[[int, int], None]:
    """virsh's ``--verbose`` progress on stderr: ``\\rSave: [ 42 %]``, a newline at 100 %."""
    last = [-1]

    def show(done: int, total: int) -> None:
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        if percent == last[0]:
            return
        last[0] = percent
        end = "\n" if percent == 100 else ""
        sys.stderr.write(f"\r{label}: [{percent:3d} %]{end}")
        sys.stderr.flush()

    return show


@click.command()
@DOMAIN
@FILE
@BYPASS
@click.option("--xml", "xml_file", metavar="FILE", help="alternative XML (other disk paths)")
@RUNNING
@PAUSED
@VERBOSE
@click.pass_context
def save(
    ctx: click.Context,
    domain: str,
    file: str,
    bypass_cache: bool,
    xml_file: str | None,
    running: bool,
    paused: bool,
    verbose: bool,
) -> None:
    """Save a running domain's state to a file and stop it."""
    state = run_state(running, paused)
    dom = api(ctx).domains.get(domain)
    xml = read_input(xml_file).decode() if xml_file else None
    dom.save(file, xml=xml, running=state, bypass_cache=bypass_cache,
             progress=progress_printer("Save") if verbose else None)  # fmt: skip
    click.echo(f"\nDomain '{dom.name}' saved to {file}\n")


@click.command()
@FILE
@BYPASS
@click.option("--xml", "xml_file", metavar="FILE", help="alternative XML (other disk paths)")
@RUNNING
@PAUSED
@click.pass_context
def restore(
    ctx: click.Context,
    file: str,
    bypass_cache: bool,
    xml_file: str | None,
    running: bool,
    paused: bool,
) -> None:
    """Restore a domain from a saved state file."""
    state = run_state(running, paused)
    xml = read_input(xml_file).decode() if xml_file else None
    api(ctx).domains.restore(file, xml=xml, running=state, bypass_cache=bypass_cache)
    click.echo(f"Domain restored from {file}\n")


@click.command()
@DOMAIN
@BYPASS
@RUNNING
@PAUSED
@VERBOSE
@click.pass_context
def managedsave(
    ctx: click.Context, domain: str, bypass_cache: bool, running: bool, paused: bool, verbose: bool
) -> None:
    """Save a domain's state where 'start' resumes it."""
    state = run_state(running, paused)
    dom = api(ctx).domains.get(domain)
    dom.managed_save(running=state, bypass_cache=bypass_cache,
                     progress=progress_printer("Managedsave") if verbose else None)  # fmt: skip
    click.echo(f"\nDomain '{dom.name}' state saved by pyvirt\n")


@click.command(name="managedsave-remove")
@DOMAIN
@click.pass_context
def managedsave_remove(ctx: click.Context, domain: str) -> None:
    """Remove a domain's managed save image (the next start boots)."""
    dom = api(ctx).domains.get(domain)
    if dom.managed_save_remove():
        click.echo(f"Removed managedsave image for domain '{dom.name}'\n")
    else:
        click.echo(f"Domain '{dom.name}' has no manage save image; removal skipped\n")


@click.command(name="managedsave-dumpxml")
@DOMAIN
@click.option("--security-info", is_flag=True, help="include security-sensitive information")
@click.pass_context
def managedsave_dumpxml(ctx: click.Context, domain: str, security_info: bool) -> None:
    """Print the domain XML of a managed save image."""
    xml = api(ctx).domains.get(domain).managed_save_xml(security_info=security_info)
    click.echo(xml.rstrip("\n"))


@click.command(name="save-image-dumpxml")
@FILE
@click.option("--security-info", is_flag=True, help="include security-sensitive information")
@click.pass_context
def save_image_dumpxml(ctx: click.Context, file: str, security_info: bool) -> None:
    """Print the domain XML of a saved state file."""
    xml = api(ctx).domains.save_image_xml(file, security_info=security_info)
    click.echo(xml.rstrip("\n"))


@click.command(name="save-image-define")
@FILE
@click.argument("xml_file", metavar="XMLFILE")
@RUNNING
@PAUSED
@click.pass_context
def save_image_define(
    ctx: click.Context, file: str, xml_file: str, running: bool, paused: bool
) -> None:
    """Replace the domain XML of a saved state file (same hardware; other disk paths)."""
    state = run_state(running, paused)
    api(ctx).domains.save_image_define(file, read_input(xml_file).decode(), running=state)
    click.echo(f"State file {file} updated.\n")


@click.command(name="save-image-edit")
@FILE
@RUNNING
@PAUSED
@click.pass_context
def save_image_edit(ctx: click.Context, file: str, running: bool, paused: bool) -> None:
    """Edit the domain XML of a saved state file in $EDITOR (same hardware)."""
    from pathlib import Path

    from pyvirt.cli.editing import edit_loop

    state = run_state(running, paused)
    domains = api(ctx).domains
    original = domains.save_image_xml(file, security_info=True)

    def apply(text: str) -> tuple[str, list[str]]:
        domains.save_image_define(file, text, running=state)
        return Path(file).name, []

    edited = _edit_or_state(original, edit_loop, "Saved image", Path(file).name, apply)
    if not edited and state is not None:
        domains.save_image_define(file, None, running=state)
        click.echo(f"State file {file} updated.\n")


@click.command(name="managedsave-define")
@DOMAIN
@click.argument("xml_file", metavar="XMLFILE")
@RUNNING
@PAUSED
@click.pass_context
def managedsave_define(
    ctx: click.Context, domain: str, xml_file: str, running: bool, paused: bool
) -> None:
    """Replace the domain XML of a managed save image (same hardware; other disk paths)."""
    state = run_state(running, paused)
    dom = api(ctx).domains.get(domain)
    dom.managed_save_define(read_input(xml_file).decode(), running=state)
    click.echo(f"Managed save state file of domain '{dom.name}' updated.\n")


@click.command(name="managedsave-edit")
@DOMAIN
@RUNNING
@PAUSED
@click.pass_context
def managedsave_edit(ctx: click.Context, domain: str, running: bool, paused: bool) -> None:
    """Edit the domain XML of a managed save image in $EDITOR (same hardware)."""
    from pyvirt.cli.editing import edit_loop

    state = run_state(running, paused)
    dom = api(ctx).domains.get(domain)
    original = dom.managed_save_xml(security_info=True)

    def apply(text: str) -> tuple[str, list[str]]:
        dom.managed_save_define(text, running=state)
        return dom.name, []

    edited = _edit_or_state(original, edit_loop, "Managed save image of domain", dom.name, apply)
    if not edited and state is not None:
        dom.managed_save_define(None, running=state)
        click.echo(f"Managed save state file of domain '{dom.name}' updated.\n")


def _edit_or_state(
    original: str,
    edit_loop: Callable[..., None],
    kind: str,
    name: str,
    apply: Callable[[str], tuple[str, list[str]]],
) -> bool:
    """Run the edit loop; False when the XML came back unchanged (the caller then applies
    ``--running``/``--paused`` alone, as virsh does)."""
    changed = [False]

    def wrapped(text: str) -> tuple[str, list[str]]:
        changed[0] = True
        return apply(text)

    edit_loop(kind, name, original, wrapped)
    return changed[0]
