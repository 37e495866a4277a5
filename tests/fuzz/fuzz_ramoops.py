"""Fuzz the ramoops region reader and the Reed-Solomon decoder.

    python tests/fuzz/fuzz_ramoops.py [-runs=N | -max_total_time=S] [corpus_dir]

Input byte 0 picks the target:
- RS (byte 0 < 64): nroots and a block length from bytes 1-2, the rest is a
  128-byte block + parity. Both twins (_rs_py, _rs_c) must agree, a block they
  call correctable must decode clean afterwards, and the count must be within
  what the code can correct.
- inflate (64 <= byte 0 < 96): the rest is a raw DEFLATE stream; the pure
  inflater (used where zlib is missing) must give zlib's verdict and bytes.
- region (else): bytes 1-7 choose the ramoops parameters (sizes, ecc, CPUs,
  zone order, even rounding); the rest is the region. scan() may raise
  FormatError (and layout() ConfigError for impossible parameters), nothing
  else; it must not touch the input; every record name must be one pstore can
  make.

Seeds: regions with valid zones (ECC on and off, compressed and plain dmesg,
wrapped console, ftrace) built the way the kernel writes them.
"""
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(HERE, "..", "portable"))

import atheris  # noqa: E402

with atheris.instrument_imports():
    from crashkeep.formats import ramoops, _rs_py  # noqa: F401
from crashkeep.errors import FormatError, ConfigError  # noqa: E402
from _util import plant_zone  # noqa: E402

try:
    from crashkeep.formats import _rs_c
except ImportError:                # pure-only build: compare the twin with itself
    _rs_c = _rs_py

ECCS = (0, 1, 4, 8, 16, 2, 32, 64)
SIZES = (0, 0x40, 0x80, 0x100, 0x200, 0x400, 0x800, 0x1000)
ORDERS = ("6.1", "6.2", "auto")


def params_from(h):
    mem = 0x400 + (h[0] | (h[1] << 8)) % 0x3C00
    p = ramoops.Params(mem, SIZES[h[2] & 7], SIZES[(h[2] >> 3) & 7], SIZES[h[3] & 7],
                       SIZES[(h[3] >> 3) & 7], ECCS[h[4] & 7], cpus=1 + (h[5] & 3),
                       order=ORDERS[((h[5] >> 2) & 3) % 3], even_round=bool(h[5] & 0x40),
                       ftrace_per_cpu=not (h[5] & 0x80))
    if h[6] & 1:
        p.linux_version = 0x0601C0
    return p


def header_for(p):
    h = bytearray(7)
    mem = p.mem_size - 0x400
    h[0], h[1] = mem & 0xFF, mem >> 8
    h[2] = SIZES.index(p.record_size) | (SIZES.index(p.console_size) << 3)
    h[3] = SIZES.index(p.ftrace_size) | (SIZES.index(p.pmsg_size) << 3)
    h[4] = ECCS.index(p.ecc)
    h[5] = (p.cpus - 1) | (ORDERS.index(p.order) << 2) | (0x40 if p.even_round else 0)
    return bytes(h)


PSTORE_NAME_KINDS = ("dmesg", "console", "pmsg", "ftrace")


def check_region(data):
    if len(data) < 7:
        return
    p = params_from(data[:7])
    region = bytes(data[7:])
    try:
        ramoops.layout(p.copy(order="6.1"))
        ramoops.layout(p.copy(order="6.2"))
    except ConfigError:
        return
    try:
        states, recs = ramoops.scan(region, p)
    except FormatError:
        return
    for r in recs:
        kind, _, rest = r.name.partition("-ramoops-")
        assert kind in PSTORE_NAME_KINDS, r.name
        assert rest.split(".")[0].isdigit(), r.name
        assert isinstance(r.data, (bytes, bytearray)), r.name
    try:
        ramoops.scan(region, p, inflate=False, correct=False)
    except FormatError:
        pass


def check_rs(data):
    if len(data) < 4:
        return
    nroots = 1 + data[1] % 64
    n = 1 + data[2] % min(128, 255 - nroots)
    body = bytes(data[3:3 + n + nroots])
    if len(body) < n + nroots:
        body = body + bytes(n + nroots - len(body))
    a = bytearray(body)
    b = bytearray(body)
    ra = _rs_py.decode(a, 0, n, n, nroots)
    rb = _rs_c.decode(b, 0, n, n, nroots)
    assert ra == rb and a == b, (nroots, n, ra, rb)
    assert -1 <= ra <= nroots, ra
    if ra < 0:
        assert a == bytearray(body)          # uncorrectable: nothing changed
    else:
        assert _rs_py.decode(bytearray(a), 0, n, n, nroots) == 0


def check_inflate(data):
    z = bytes(data)
    try:
        d = zlib.decompressobj(-15)
        want = d.decompress(z, 1 << 16)
        want = want if d.eof else None
    except zlib.error:
        want = None
    try:
        got = ramoops.inflate_raw(z, 1 << 16)
    except ValueError:
        got = None
    if want is not None or got is None:
        assert got == want, (want, got)
    else:
        # zlib stopped at the output limit before the end: we agree on the prefix
        assert len(got) == 1 << 16


def one(data):
    if not data:
        return
    if data[0] < 64:
        check_rs(data)
    elif data[0] < 96:
        check_inflate(data[1:])
    else:
        before = bytes(data)
        check_region(data[1:])
        assert bytes(data) == before


def _plant(region, zone, payload, start=None, big=False, sig=ramoops.PERSISTENT_RAM_SIG):
    plant_zone(region, zone, payload, start, None, sig, big)

def seeds():
    out = []
    text = b"<4>[   12.345678] Oops: something went wrong\n" * 12
    c = zlib.compressobj(6, zlib.DEFLATED, -11)
    packed = c.compress(b"Oops#1 Part1\n" + text) + c.flush()
    for ecc, order, big in ((0, "6.1", False), (1, "6.2", False), (4, "6.1", True),
                            (16, "auto", False)):
        p = ramoops.Params(0x2000, 0x400, 0x400, 0x200, 0x200, ecc, cpus=2, order=order,
                           even_round=True)
        zones = ramoops.layout(p if order != "auto" else p.copy(order="6.2"))
        region = bytearray(p.mem_size)
        for z in zones:
            if z.kind == "dmesg" and z.index == 0:
                _plant(region, z, b"====1700000000.000123-C\n" + packed, big=big)
            elif z.kind == "dmesg" and z.index == 1:
                _plant(region, z, b"====1700000001.5-D\nPanic#2 Part1\n" + text, big=big)
            elif z.kind == "console":
                _plant(region, z, b"console line\n" * 20, start=7, big=big)
            elif z.kind == "pmsg":
                _plant(region, z, b"pmsg\x00\x01\x02", big=big)
            elif z.kind == "ftrace":
                recs = b"".join(struct.pack("<QQQ", 0xffffffff81000000 + i, 0, (i * 3 + z.index) << 8)
                                for i in range(6))
                _plant(region, z, recs[3:], big=big, sig=ramoops.PERSISTENT_RAM_SIG ^ 0x0601C0)
        out.append(b"\xc0" + header_for(p) + bytes(region))
    for lvl, w in ((6, -11), (9, -15), (1, -15), (0, -15)):
        c = zlib.compressobj(lvl, zlib.DEFLATED, w)
        out.append(b"\x50" + c.compress(b"Oops#1 Part1\n" + text) + c.flush())
    for nroots in (16, 8, 4):
        msg = bytes(range(100))
        out.append(bytes([1, nroots - 1, 99]) + msg + _rs_py.encode(msg, nroots))
    return out


def main():
    argv = list(sys.argv)
    if not any(not a.startswith("-") for a in argv[1:]):
        corpus = os.path.join(os.environ.get("TMPDIR", "/tmp"), "crashkeep-ramoops-corpus")
        os.makedirs(corpus, exist_ok=True)
        argv.append(corpus)
    corpus = [a for a in argv[1:] if not a.startswith("-")][0]
    for i, s in enumerate(seeds()):
        with open(os.path.join(corpus, "seed%d" % i), "wb") as f:
            f.write(s)
    for s in seeds():
        one(s)
    if not any(a.startswith("-max_len") for a in argv):
        argv.append("-max_len=12000")
    atheris.Setup(argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
