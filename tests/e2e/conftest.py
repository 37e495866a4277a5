"""Fixtures of the QEMU test bed (API: the docstring of tests/e2e/harness.py).

`testbed` (per test) -> harness.Testbed on the x86_64 reference board with a
fresh directory; `target_testbed` the same for the test's `target` parameter
(aarch64, armhf, mipsel, x86_64). The kernel, the static binary (make -C build
[TARGET=..]) and the base initramfs are built or fetched once per session and
target, and cached (kernels outside the repo, tests/e2e/kernels.py).
`testbed_pstore` -> the x86_64 board on the test kernel with the pstore console,
pmsg and ftrace front-ends (tests/e2e/kernel/build.sh; its first build takes minutes).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

_ENVS = {}


def _env(target):
    if target not in _ENVS:
        _ENVS[target] = harness.Env(target=target)
    return _ENVS[target]


@pytest.fixture(scope="session")
def testbed_env():
    return _env("x86_64")


@pytest.fixture
def testbed(testbed_env, tmp_path):
    return harness.Testbed(testbed_env, tmp_path)


@pytest.fixture(scope="session")
def testbed_pstore_env():
    return harness.Env(kernel="pstore")


@pytest.fixture
def testbed_pstore(testbed_pstore_env, tmp_path):
    return harness.Testbed(testbed_pstore_env, tmp_path)


@pytest.fixture
def target_testbed(target, tmp_path):
    return harness.Testbed(_env(target), tmp_path)
