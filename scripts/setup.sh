#!/usr/bin/env bash
# Install what pyvirt needs on Debian 12 (run as root): QEMU, the tools the tiny test guest is
# built with, and a virtualenv with pyvirt and its development tools. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(qemu-system-x86 qemu-utils busybox-static cpio kmod xz-utils zstd python3-venv
      python3-dev gcc ca-certificates iproute2 procps)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
.venv/bin/python -m compileall -q src >/dev/null  # bytecode even under PYTHONDONTWRITEBYTECODE
echo "setup: ready (.venv/bin/pyvirt)"
