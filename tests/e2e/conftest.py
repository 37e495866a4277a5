"""Fixtures of the QEMU test bed (API: the docstring of tests/e2e/harness.py).

`testbed` (per test) -> harness.Testbed with a fresh directory; the kernel,
the static binary (make -C build) and the base initramfs are built or fetched
once per session and cached under tests/e2e/work/.
`testbed_pstore` -> the same on the test kernel with the pstore console, pmsg
and ftrace front-ends (tests/e2e/kernel/build.sh; its first build takes minutes).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402


@pytest.fixture(scope="session")
def testbed_env():
    return harness.Env()


@pytest.fixture
def testbed(testbed_env, tmp_path):
    return harness.Testbed(testbed_env, tmp_path)


@pytest.fixture(scope="session")
def testbed_pstore_env():
    return harness.Env(kernel="pstore")


@pytest.fixture
def testbed_pstore(testbed_pstore_env, tmp_path):
    return harness.Testbed(testbed_pstore_env, tmp_path)
