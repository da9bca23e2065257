"""Domain checkpoints and backups (virsh's ``checkpoint-*`` and ``backup-*``): metadata in
:mod:`.store`, creating and deleting checkpoints in :mod:`.create` and :mod:`.delete`, backup
jobs in :mod:`.backup`.

A checkpoint is a persistent dirty bitmap, named after it, in each covered disk's qcow2 image;
only the newest checkpoint's bitmap records writes (older ones are frozen), so the changes
since checkpoint X are the union of the bitmaps from X to the newest. Metadata lives in
``CONFIG/qemu/checkpoint/DOMAIN/NAME.xml`` (libvirt's ``<domaincheckpoint>``, written
atomically), next to the snapshot metadata.
"""
