"""Reed-Solomon (GF(2^8), poly 0x11d, fcr 0, prim 1) for ramoops ECC.

Accelerated unit: _rs_c (Cython) or _rs_py (pure), same names; pure on
MicroPython or CRASHKEEP_PUREPYTHON=1, or when the extension is missing.

    encode(msg, nroots) -> parity bytes
    decode(buf, off, n, poff, nroots) -> corrected count, or -1 (uncorrectable)
    decode_blocks(buf, data_off, size, cap, par_off, nroots, block=128)
        -> (corrected, bad_blocks) over the blocks covering [0, size)
"""
from crashkeep.compat import twin

_impl = twin("crashkeep.formats", "rs")

IMPL = _impl.IMPL
encode = _impl.encode
decode = _impl.decode
decode_blocks = _impl.decode_blocks
