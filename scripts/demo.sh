#!/usr/bin/env bash
# The demo: build the tiny guest, define and start domain 'demo', show its serial console
# output with the marker line, list domains, shut it down.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PYVIRT_STATE_DIR=${PYVIRT_STATE_DIR:-/tmp/pyvirt-demo}
PV=.venv/bin/pyvirt
set -x
$PV image build tiny --output /tmp/pyvirt-demo-image
{ set +x; } 2>/dev/null
cat > /tmp/pyvirt-demo.xml <<XML
<domain type='qemu'>
  <name>demo</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/tmp/pyvirt-demo-image/vmlinux</kernel>
    <initrd>/tmp/pyvirt-demo-image/initrd.img</initrd>
    <cmdline>console=ttyS0 quiet</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'><target port='0'/></serial>
  </devices>
</domain>
XML
$PV destroy demo >/dev/null 2>&1 || true
$PV undefine demo >/dev/null 2>&1 || true
set -x
$PV define /tmp/pyvirt-demo.xml
$PV start demo
$PV list --all
{ set +x; } 2>/dev/null
echo "+ waiting for the guest's marker line on its serial console"
log="$PYVIRT_STATE_DIR/log/qemu/demo/console.log"
for _ in $(seq 1 300); do grep -q PYVIRT-TINY-READY "$log" 2>/dev/null && break; sleep 0.1; done
grep -a -m1 PYVIRT-TINY-READY "$log"
set -x
$PV dominfo demo
$PV shutdown demo
{ set +x; } 2>/dev/null
for _ in $(seq 1 100); do [ "$($PV domstate demo)" = "shut off" ] && break; sleep 0.1; done
set -x
$PV domstate demo --reason
$PV list --all
