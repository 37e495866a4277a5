"""Both twins of the drain unit: same counts on a real pipe, a buffered reader, with limits."""
import io
import os
import threading

import pytest

from crashkeep.formats import _drain_py

try:
    from crashkeep.formats import _drain_c
except ImportError:  # the run with CRASHKEEP_PUREPYTHON=1 builds no extension
    _drain_c = None

TWINS = [_drain_py] + ([_drain_c] if _drain_c is not None else [])


def test_compiled_twin_is_built():
    if os.environ.get("CRASHKEEP_PUREPYTHON") != "1":
        assert _drain_c is not None and _drain_c.IMPL == "c"


def feed(data):
    r, w = os.pipe()

    def writer():
        with os.fdopen(w, "wb") as f:
            f.write(data)
    t = threading.Thread(target=writer)
    t.start()
    return io.FileIO(r, "rb"), t


@pytest.mark.parametrize("impl", TWINS, ids=lambda m: m.IMPL)
def test_pipe_all_then_limit(impl):
    data = os.urandom(3 << 20) + b"tail"
    f, t = feed(data)
    mv = memoryview(bytearray(65536))
    assert impl.drain(f, mv, 1000) == 1000
    assert impl.drain(f, mv, 0) == 0
    assert impl.drain(f, mv) == len(data) - 1000
    assert impl.drain(f, mv) == 0
    t.join()
    f.close()


@pytest.mark.parametrize("impl", TWINS, ids=lambda m: m.IMPL)
def test_buffered_reader_keeps_its_buffered_bytes(impl):
    data = bytes(range(256)) * 1000
    f, t = feed(data)
    b = io.BufferedReader(f, 8192)
    assert b.read(10) == data[:10]          # the reader now holds buffered bytes
    mv = memoryview(bytearray(4096))
    assert impl.drain(b, mv, 5000) == 5000
    assert b.read(3) == data[5010:5013]
    assert impl.drain(b, mv) == len(data) - 5013
    t.join()
    b.close()


def test_dispatcher_takes_offsets_beyond_64_bits():
    """A core header may put a segment at 2**64 - 1: the drain stops at EOF (fuzzer find)."""
    from crashkeep.formats import drain
    f, t = feed(b"x" * 1000)
    assert drain.drain(f, memoryview(bytearray(256)), (1 << 64) - 1) == 1000
    t.join()
    f.close()
