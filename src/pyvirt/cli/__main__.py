"""``python -m pyvirt.cli`` runs the CLI."""

from pyvirt.cli.main import main

main()
