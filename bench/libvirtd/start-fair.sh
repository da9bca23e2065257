#!/bin/sh
# Start libvirtd (Debian libvirt-daemon-system, TCG only) fairly on this kind of machine, for side-by-side benchmarks:
#  1. under a prompt child-subreaper (reaper.py), because this VM's PID 1 reaps orphaned
#     zombies only every ~1.7 s, which otherwise adds 0-2 s to every `virsh destroy`;
#  2. in a private mount namespace whose /dev is a tmpfs copy of the host /dev without
#     the kvm node (host /dev/shm and /dev/pts bind-mounted in), so that libvirt sees a
#     TCG-only host and its QEMU capability cache stays valid.  (Otherwise libvirt 9.0's
#     KVM check -- access("/dev/kvm") as libvirt-qemu, denied by mode 0600 root:root --
#     disagrees with its probe, which runs QEMU with CAP_DAC_OVERRIDE and gets KVM, so
#     every capabilities lookup re-probes QEMU: ~4 s each, 10 per `virsh define`.)
# Only libvirtd's view of /dev changes; the host /dev/kvm is untouched.
# KVM_MODE=standard instead keeps a kvm node in that private /dev, with the permissions a
# stock Debian host gets from udev (0660 root:kvm; libvirt-qemu is in group kvm), so libvirt
# sees and caches a KVM-capable host (cross-check that hiding KVM flatters nothing).
# Stop it by the pid it prints (the reaper then exits by itself).
# (A copy of the project's shared anchor, so that bench/ works on its own.)
set -e
KVM_MODE=${KVM_MODE:-hide}
HERE=$(cd "$(dirname "$0")" && pwd)
[ -z "$(pgrep -x libvirtd)" ] || { echo "libvirtd already running: $(pgrep -x libvirtd)" >&2; exit 1; }
mkdir -p /run/pvperf/dev
KVM_MODE=$KVM_MODE setsid -f python3 "$HERE/reaper.py" unshare --mount --propagation private sh -e -c '
  D=/run/pvperf/dev
  mount -t tmpfs -o mode=755 pvperf-dev $D
  cp -a --one-file-system /dev/. $D/
  if [ "$KVM_MODE" = standard ]; then chgrp kvm $D/kvm; chmod 0660 $D/kvm; else rm -f $D/kvm; fi
  for m in shm pts mqueue hugepages; do
    if mountpoint -q /dev/$m; then mkdir -p $D/$m; mount --bind /dev/$m $D/$m; fi
  done
  umount -l /dev
  mount --move $D /dev
  exec libvirtd -d
' </dev/null >/dev/null 2>&1
for i in $(seq 50); do [ -S /run/libvirt/libvirt-sock ] && [ -n "$(pgrep -x libvirtd)" ] && break; sleep 0.2; done
P=$(pgrep -x libvirtd)
echo "libvirtd pid $P, parent $(ps -o ppid= -p $P | tr -d ' ') ($(ps -o args= -p $(ps -o ppid= -p $P) | cut -c1-60))"
if [ -e /proc/$P/root/dev/kvm ]; then echo "libvirtd sees $(ls -l /proc/$P/root/dev/kvm)"; else echo "libvirtd sees no /dev/kvm"; fi
# virtlogd must run too, or every start fails ("Failed to connect socket to /run/libvirt/virtlogd-sock")
pgrep -x virtlogd >/dev/null || virtlogd -d
