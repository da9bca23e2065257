"""``libvirt-shim-path``: where the ``libvirt`` module for unmodified libvirt-python programs
lives (docs/libvirt-python.md)."""

from __future__ import annotations

from pathlib import Path

import click

import pyvirt


def shim_dir() -> Path:
    """The directory holding ``libvirt.py`` (it makes ``import libvirt`` load
    :mod:`pyvirt.libvirt`)."""
    return Path(pyvirt.__file__).resolve().parent / "libvirt_shim"


@click.command("libvirt-shim-path")
def libvirt_shim_path() -> None:
    """Print the directory to put on PYTHONPATH so that 'import libvirt' is pyvirt's."""
    click.echo(str(shim_dir()))
