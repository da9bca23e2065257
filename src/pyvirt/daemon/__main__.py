"""``python -m pyvirt.daemon`` runs pyvirtd."""

from pyvirt.daemon.main import main

main()
