#!/usr/bin/env bash
# Run the whole test suite: lint (ruff), types (mypy --strict), unit and integration tests.
# Integration tests boot real QEMU guests under TCG; they build the tiny guest image once.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench; .venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports --no-cache | sed -n '/^Contracts/,$p'  # pipefail: a broken contract fails
echo "== pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
