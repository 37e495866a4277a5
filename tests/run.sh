#!/usr/bin/env bash
# Set up (tests/setup.sh) and run every test: unit tests (compiled and pure),
# the portable tests under a real MicroPython, and the end-to-end suite on a real
# kernel under QEMU. This is what CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

bash tests/setup.sh

echo "== portable tests under MicroPython"
# One process per test module: each gets the 2 MiB heap a small board gives,
# instead of sharing one heap with every module imported before it.
mp_failed=0
for m in tests/portable/test_*.py; do
    micropython tests/mp_runner.py "$m" | tee /tmp/crashkeep-mp.$$ | grep -v '^micropython: ' || true
    tail -n 1 /tmp/crashkeep-mp.$$
    grep -q '^micropython: .* 0 failed' /tmp/crashkeep-mp.$$ || mp_failed=1
done
rm -f /tmp/crashkeep-mp.$$
[ "$mp_failed" = 0 ] || { echo "MicroPython tests failed"; exit 1; }

echo "== unit tests, pure Python"
CRASHKEEP_PUREPYTHON=1 $PY -m pytest -q -m "not e2e" tests --ignore tests/test_binary_targets.py

echo "== every target's binary under qemu-user: the CLI scenarios against the host binary"
$PY -m pytest -q tests/test_binary_targets.py

# The aarch64/armhf/mipsel VM end to end (tests/e2e/test_targets.py) is not in
# the default run yet: it has not passed on every target (issue 12 is open).
if [ "${CRASHKEEP_TARGET_TESTS:-0}" = 1 ]; then
    echo "== the targets' VMs: save, panic, boot salvage on aarch64, armhf, mipsel"
    $PY -m pytest -q tests/e2e/test_targets.py
fi

echo "== all tests, compiled accelerators, end-to-end on QEMU (x86_64)"
$PY -m pytest -q tests --ignore tests/test_binary_targets.py --ignore tests/e2e/test_targets.py
