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


class Skip(Exception):
    """Raised by skip() where there is no pytest (MicroPython): mp_runner counts it."""


def skip(reason):
    """Skip the running test, counted as skipped under pytest and under mp_runner."""
    try:
        import pytest
    except ImportError:
        raise Skip(reason)
    pytest.skip(reason)


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


class Rng:
    """xorshift32: MicroPython's random has no Random class to seed per test."""

    def __init__(self, seed):
        self.x = seed * 2654435761 % (1 << 32) or 1

    def getrandbits(self, k):
        x = self.x
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.x = x
        return x & ((1 << k) - 1)

    def randint(self, a, b):
        return a + self.getrandbits(30) % (b - a + 1)

    def choice(self, seq):
        return seq[self.getrandbits(16) % len(seq)]

    def sample(self, seq, k):
        pool = list(seq)
        out = []
        for _ in range(k):
            out.append(pool.pop(self.getrandbits(16) % len(pool)))
        return out


def plant_zone(region, zone, payload, start=None, size=None, sig=0x43474244, big=False):
    """Write a ramoops zone into `region` the way the kernel's writer leaves it
    (header, ring, and RS parity when the zone has ECC). With `start` the ring
    is full and wrapped at start, filled with the tail of `payload` repeated;
    `size=(start, size)` forces the header fields."""
    import struct
    from crashkeep.formats import rs
    b = zone.data_size
    data = bytearray(b)
    if start is None:
        payload = payload[:b]
        data[:len(payload)] = payload
        st = sz = len(payload)
    else:
        tail = (payload * (b // max(1, len(payload)) + 2))[-b:]
        data[start:] = tail[:b - start]
        data[:start] = tail[b - start:]
        st, sz = start, b
    if size is not None:
        st, sz = size
    hdr = struct.pack(">Iii" if big else "<Iii", sig, st, sz)
    o = zone.offset
    region[o:o + 12] = hdr
    region[o + 12:o + 12 + b] = data
    e = zone.ecc_size
    if e:
        par = o + 12 + b
        for i in range(zone.ecc_blocks):
            region[par + i * e:par + (i + 1) * e] = rs.encode(bytes(data[i * 128:(i + 1) * 128]), e)
        hp = par + zone.ecc_blocks * e
        region[hp:hp + e] = rs.encode(hdr, e)
