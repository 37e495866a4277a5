"""Consume bytes of a stream fast: the bulk of a core pipe that no backtrace needs.

Accelerated unit: _drain_c (Cython, read(2) straight into one buffer) or
_drain_py (readinto loop), same names; pure on MicroPython or CRASHKEEP_PUREPYTHON=1.
"""
from crashkeep.compat import twin

_impl = twin("crashkeep.formats", "drain")

IMPL = _impl.IMPL
LIMIT_MAX = 1 << 62     # offsets from a core header reach 2**64; no stream is that long


def drain(f, mv, limit=-1):
    """Read and drop up to `limit` bytes of f (to EOF when limit < 0); returns the count."""
    if limit > LIMIT_MAX:
        limit = LIMIT_MAX
    return _impl.drain(f, mv, limit)
