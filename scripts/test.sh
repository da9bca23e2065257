#!/usr/bin/env bash
# Run the whole test suite: lint (ruff), types (mypy --strict), unit and integration tests.
# Integration tests boot real QEMU guests under TCG; they build the tiny guest image once.
# pytest runs in PYVIRT_TEST_JOBS worker processes (pytest-xdist, default 2; tests that use
# host-wide resources stay in one worker, see tests/conftest.py). Serially:
#   PYVIRT_TEST_JOBS=1 ./scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
echo "== ruff"; .venv/bin/ruff check src tests bench; .venv/bin/ruff format --check src tests bench
echo "== mypy"; .venv/bin/mypy
echo "== import contracts"; .venv/bin/lint-imports --no-cache | sed -n '/^Contracts/,$p'  # pipefail: a broken contract fails
jobs=${PYVIRT_TEST_JOBS:-2}
parallel=()
if [ "$jobs" -gt 1 ]; then parallel=(-n "$jobs" --dist loadgroup); fi
# -r fER: the summary names failures, errors and reruns (a failed guest test runs once more,
# see tests/conftest.py; a rerun is a race to chase even when the second run passed)
echo "== pytest"; .venv/bin/python -m pytest -q -p no:cacheprovider -r fER --durations=15 "${parallel[@]}" "$@"
