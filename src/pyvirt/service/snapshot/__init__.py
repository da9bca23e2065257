"""Domain snapshots (virsh's ``snapshot-*``): metadata in :mod:`.store`, taking them in
:mod:`.create`, reverting and deleting in :mod:`.revert` and :mod:`.delete`.

Metadata lives in ``CONFIG/qemu/snapshot/DOMAIN/NAME.xml`` (libvirt's ``<domainsnapshot>``,
written atomically) and the current snapshot's name in ``.current`` next to them.
"""
