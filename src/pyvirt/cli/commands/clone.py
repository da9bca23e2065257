"""``pyvirt clone``: virt-clone's options (plus ``--linked`` and ``--force``)."""

from __future__ import annotations

import click

from pyvirt.cli.main import api


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--connect", "uri", metavar="URI", help="hypervisor connection URI")
@click.option("--original", "-o", metavar="DOMAIN", help="the domain to clone")
@click.option("--original-xml", metavar="FILE", help="clone from this XML file instead")
@click.option("--name", "-n", help="name of the clone")
@click.option("--auto-clone", is_flag=True, help="pick the name and disk paths automatically")
@click.option("--file", "-f", "files", multiple=True, help="new disk path (one per disk, in order)")
@click.option("--mac", "-m", "macs", multiple=True, help="MAC of the n-th NIC (or RANDOM)")
@click.option("--uuid", "-u", help="UUID of the clone")
@click.option("--preserve-data", is_flag=True, help="use the --file paths as they are (no copy)")
@click.option("--nonsparse", is_flag=True, help="fully allocate the copies")
@click.option("--reflink", is_flag=True, help="copy-on-write copies (btrfs, XFS reflink=1)")
@click.option("--linked", is_flag=True, help="qcow2 overlays backed by the original's disks")
@click.option("--force", is_flag=True, help="clone a running (not paused) domain anyway")
@click.option("--skip-copy", multiple=True, metavar="TARGET", help="do not copy this disk")
@click.option("--check", metavar="path_in_use=off,...", help="turn checks off")
@click.option("--print-xml", is_flag=True, help="print the clone's XML, change nothing")
@click.option("--quiet", "-q", is_flag=True, help="print only errors")
@click.pass_context
def clone(
    ctx: click.Context,
    uri: str | None,
    original: str | None,
    original_xml: str | None,
    name: str | None,
    auto_clone: bool,
    files: tuple[str, ...],
    macs: tuple[str, ...],
    uuid: str | None,
    preserve_data: bool,
    nonsparse: bool,
    reflink: bool,
    linked: bool,
    force: bool,
    skip_copy: tuple[str, ...],
    check: str | None,
    print_xml: bool,
    quiet: bool,
) -> None:
    """Clone a domain: new name, UUID, MACs and disk copies (virt-clone)."""
    from pyvirt.api.install import CloneRequest, parse_check
    from pyvirt.cli.render import read_input

    if uri:
        ctx.find_root().obj = {"uri": uri}
    req = CloneRequest(
        original=original,
        original_xml=read_input(original_xml).decode() if original_xml else None,
        name=name,
        auto_clone=auto_clone,
        files=list(files),
        macs=list(macs),
        uuid=uuid,
        preserve_data=preserve_data,
        nonsparse=nonsparse,
        reflink=reflink,
        linked=linked,
        force=force,
        skip_copy=list(skip_copy),
    )
    if check:
        req.check = parse_check(check)
    job = api(ctx).domains.prepare_clone(req)
    for w in job.warnings:
        click.echo(f"warning: {w}", err=True)
    if print_xml:
        click.echo(job.xml, nl=False)
        return
    if not quiet:
        for c in job.copies:
            verb = {"linked": "Linking", "reflink": "Reflinking", "preserve": "Keeping"}
            click.echo(f"{verb.get(c.mode, 'Cloning')} '{c.src}' -> '{c.dst}'")
    from pyvirt.cli.commands.job import daemon_bar

    bar = daemon_bar(ctx, "clone")
    dom = job.run() if bar is None else job.run(progress=bar)  # a pyvirtd job; Ctrl-C cancels
    if not quiet:
        click.echo(f"\nClone '{dom.name}' created successfully.")
