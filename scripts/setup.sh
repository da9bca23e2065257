#!/usr/bin/env bash
# Install what pyvirt needs on Debian 12 (run as root): QEMU, the tools the tiny test guest is
# built with, and a virtualenv with pyvirt and its development tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(qemu-system-x86 qemu-utils busybox-static cpio kmod xz-utils zstd python3-venv
      python3-dev gcc ca-certificates iproute2 procps
      # storage: filesystems, partitions, LVM, iSCSI target + initiator tools, NFS (userspace)
      e2fsprogs xfsprogs parted fdisk lvm2 tgt libiscsi-bin nfs-ganesha nfs-ganesha-vfs rpcbind
      libnfs-utils fio
      # networking: DHCP/DNS, firewall, traffic generator
      dnsmasq-base nftables iperf3
      # host tools
      numactl xorriso
      # the cluster's store (issue 16; its tests start their own members)
      etcd-server etcd-client
      # the crash-point test (fault injection at system calls)
      strace
      # install: El Torito test ISOs (isolinux), UEFI firmware for --boot uefi
      isolinux syslinux-common ovmf
      # <tpm> backend type='emulator' (issue 14)
      swtpm swtpm-tools
      # the Debian guest image (pyvirt image build debian)
      debootstrap
      # QEMU block drivers for iscsi:// and nfs:// disks (libiscsi, libnfs)
      qemu-block-extra
      # pyvirt+ssh:// (the client) and its test (a private sshd on 127.0.0.1)
      openssh-client openssh-server
      # the web console's browser tests (Playwright drives Debian's chromium)
      chromium)
# the web console's build (web/: npm ci + esbuild): Debian's nodejs and npm, unless a node
# with npm is installed already (e.g. nodesource's, which conflicts with Debian's npm)
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PKGS+=(nodejs npm)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # packages such as tgt and rpcbind would start system daemons; pyvirt starts what it needs
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# the unprivileged user every QEMU runs as (docs/security.md); PYVIRT_QEMU_USER overrides it
if ! getent group pyvirt-qemu >/dev/null; then
  groupadd --system pyvirt-qemu
fi
if ! getent passwd pyvirt-qemu >/dev/null; then
  useradd --system --no-create-home --shell /usr/sbin/nologin --gid pyvirt-qemu \
    --home-dir /nonexistent --comment "pyvirt QEMU" pyvirt-qemu
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
# Ansible (its community.libvirt modules run against pyvirt through the libvirt shim; issue 14)
.venv/bin/pip install -q --disable-pip-version-check 'ansible>=10'
.venv/bin/python -m compileall -q src >/dev/null  # bytecode even under PYTHONDONTWRITEBYTECODE

# the web console: npm packages pinned by web/package-lock.json, bundled by esbuild into
# web/dist; redone only when web/ changed (a stamp of the sources' checksums)
if [ -f web/package.json ]; then
  stamp=web/node_modules/.pyvirt-stamp
  sum=$(cd web && find package.json package-lock.json tsconfig.json build.mjs src public -type f \
        -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$sum" ] || [ ! -f web/dist/app.js ]; then
    echo "setup: building the web console"
    (cd web && npm ci --no-audit --no-fund --loglevel=error && node build.mjs \
       && node_modules/.bin/tsc --noEmit)
    echo "$sum" > "$stamp"
  fi
fi
echo "setup: ready (.venv/bin/pyvirt)"
