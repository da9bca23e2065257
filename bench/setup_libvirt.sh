#!/bin/sh
# Install Debian's libvirt (libvirt-daemon-system, libvirt-clients) for bench/daemon_latency.py's
# virsh column. Not a dependency of pyvirt or of its test suite.
#  - Services are not started by the install (a temporary policy-rc.d): the benchmark starts
#    libvirtd itself, TCG only, the fair way (/work/shared/anchors/libvirt/start-libvirtd-fair.sh).
#  - libvirt's `default` network is not autostarted (it would add virbr0 and firewall rules on
#    this host whenever libvirtd starts).
set -e
if command -v virsh >/dev/null && command -v libvirtd >/dev/null; then
    echo "libvirt is installed: $(virsh --version)"
    exit 0
fi
POLICY=/usr/sbin/policy-rc.d
CREATED=
if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    CREATED=1
fi
trap '[ -z "$CREATED" ] || rm -f "$POLICY"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libvirt-daemon-system libvirt-clients >/dev/null
rm -f /etc/libvirt/qemu/networks/autostart/default.xml
echo "libvirt installed: $(virsh --version)"
