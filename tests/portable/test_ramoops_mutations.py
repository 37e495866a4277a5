"""Deterministic mutation run over the reader (runs on MicroPython too):
valid ECC and plain regions with random byte edits, header rewrites and
truncations. Only FormatError may come out; the input is never changed."""
from crashkeep.formats import ramoops
from crashkeep.errors import FormatError

from test_ramoops_read import small, put, zone, OOPS_Z
from _util import Rng


def base_regions():
    out = []
    for ecc in (0, 8, 16):
        p = small(ecc=ecc, ftrace=0x400, cpus=2)
        region = bytearray(p.mem_size)
        put(region, zone(p, "dmesg", 0), b"====1700000000.000001-C\n" + OOPS_Z)
        put(region, zone(p, "dmesg", 1), b"====1700000001.000002-D\nPanic#2 Part1\nx\n")
        put(region, zone(p, "console"), b"console line\n" * 90, start=77)
        put(region, zone(p, "pmsg"), bytes(range(256)))
        put(region, zone(p, "ftrace", 1), b"\x01" * 100, sig=ramoops.PERSISTENT_RAM_SIG ^ 0x0601C0)
        out.append((p, bytes(region)))
    return out


def test_mutations():
    rnd = Rng(99)
    n = 0
    for p, region in base_regions():
        for order in ("6.1", "6.2", "auto"):
            q = p.copy(order=order)
            for trial in range(60):
                buf = bytearray(region)
                kind = rnd.getrandbits(2)
                if kind == 0:
                    for _ in range(1 + rnd.getrandbits(4)):
                        buf[rnd.getrandbits(16) % len(buf)] ^= 1 + rnd.getrandbits(8) % 255
                elif kind == 1:
                    # rewrite a header field of some zone with an edge value
                    z = rnd.choice(ramoops.layout(p))
                    v = rnd.choice((0, 1, -1, z.data_size, z.data_size + 1, 0x7FFFFFFF,
                                    -0x80000000, rnd.getrandbits(32) - (1 << 31)))
                    off = z.offset + 4 + 4 * rnd.getrandbits(1)
                    buf[off:off + 4] = (v & 0xFFFFFFFF).to_bytes(4, "little")
                elif kind == 2:
                    buf = buf[:rnd.getrandbits(16) % len(buf)]
                else:
                    z = rnd.choice(ramoops.layout(p))
                    o = z.offset + 12
                    buf[o:o + 8] = rnd.choice((b"====1.2-C", b"==== -1. 3\n", b"====\x00\x00\x00",
                                               b"====9" * 2))[:8]
                before = bytes(buf)
                try:
                    states, recs = ramoops.scan(buf, q)
                    for r in recs:
                        assert r.name.split("-")[0] in ("dmesg", "console", "pmsg", "ftrace")
                except FormatError:
                    pass
                assert bytes(buf) == before
                n += 1
    assert n == 3 * 3 * 60
