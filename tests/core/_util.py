"""Helpers for core tests that run under pytest and MicroPython alike."""
import os
import sys

MICROPYTHON = sys.implementation.name == "micropython"
_here = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."
TESTS = _here + "/.."
ROOT = TESTS + "/.."
FIXTURES = TESTS + "/fixtures"
SHARED_TESTDATA = ROOT + "/../shared/testdata"

_counter = [0]


def raises(exc_type, fn, *args, **kw):
    """Call fn; return the exception if it is exc_type, else fail."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn), exc_type.__name__))


def tmpdir():
    """A fresh empty directory under $TMPDIR (or /tmp)."""
    base = os.getenv("TMPDIR") or "/tmp"
    while True:
        _counter[0] += 1
        path = "%s/ck-test-%d-%d" % (base, os.getpid() if hasattr(os, "getpid") else 0, _counter[0])
        try:
            os.mkdir(path)
            return path
        except OSError:
            continue


def write(path, data):
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with open(path, mode) as f:
        f.write(data)
    return path


def read(path):
    with open(path, "rb") as f:
        return f.read()


def exists(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
