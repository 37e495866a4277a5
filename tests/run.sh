#!/usr/bin/env bash
# Set up (tests/setup.sh) and run every test: unit tests (compiled and pure),
# the portable tests under a real MicroPython, and the end-to-end suite on a real
# kernel under QEMU. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

bash tests/setup.sh

echo "== portable tests under MicroPython"
micropython tests/mp_runner.py

echo "== unit tests, pure Python"
CRASHKEEP_PUREPYTHON=1 $PY -m pytest -q -m "not e2e" tests

echo "== all tests, compiled accelerators, end-to-end on QEMU"
$PY -m pytest -q tests
