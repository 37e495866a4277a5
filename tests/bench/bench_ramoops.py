#!/usr/bin/env python3
"""Benchmark: read a full 1 MiB ramoops region with ECC verification (ecc=1,
i.e. 16 parity bytes per 128-byte block; every zone full), compiled RS twin
vs the pure one, in one run. Baselines in the same run: the same read without
ECC decoding (correct=False, what U-Boot's reader does), and the RS syndrome
pass alone.

    python3 tests/bench/bench_ramoops.py [--runs N]

Region: 1 MiB, record_size = console_size = pmsg_size = 64 KiB, ftrace 0:
14 dmesg zones with plain (D) records filling each ring, a wrapped console,
a full pmsg zone; parity written by the encoder. Times are medians.
"""
import os
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from crashkeep.formats import ramoops, rs, _rs_py  # noqa: E402

try:
    from crashkeep.formats import _rs_c
except ImportError:
    _rs_c = None


def build_region():
    p = ramoops.Params(0x100000, 0x10000, 0x10000, 0, 0x10000, ecc=1, order="6.1")
    region = bytearray(p.mem_size)
    enc = (_rs_c or _rs_py).encode
    line = b"<4>[  177.564500] CPU: 0 PID: 1 Comm: init Tainted: G  D  6.1.0 #1\n"
    for z in ramoops.layout(p):
        b = z.data_size
        body = b"====1700000000.%06d-D\nOops#1 Part1\n" % z.index if z.kind == "dmesg" else b""
        body = (body + line * (b // len(line) + 1))[:b]
        # a full ring: dmesg written once to the end (start wrapped to 0),
        # the console wrapped with its oldest byte at 1234
        start = 1234 if z.kind == "console" else 0
        data = body[b - start:] + body[:b - start]
        hdr = struct.pack("<Iii", ramoops.PERSISTENT_RAM_SIG, start, b)
        o = z.offset
        region[o:o + 12] = hdr
        region[o + 12:o + 12 + b] = data
        e = z.ecc_size
        par = o + 12 + b
        for i in range(z.ecc_blocks):
            region[par + i * e:par + (i + 1) * e] = enc(bytes(data[i * 128:(i + 1) * 128]), e)
        region[par + z.ecc_blocks * e:par + (z.ecc_blocks + 1) * e] = enc(hdr, e)
    return p, bytes(region)


def median_ms(fn, runs):
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2]


def use(impl):
    rs.decode = impl.decode
    rs.decode_blocks = impl.decode_blocks


def main(argv):
    runs = 15
    if "--runs" in argv:
        runs = int(argv[argv.index("--runs") + 1])
    p, region = build_region()
    rows = []
    if _rs_c is not None:
        use(_rs_c)
        recs = ramoops.read_region(region, p)
        assert len(recs) == 16 and all(r.data.endswith(b"No errors detected\n") for r in recs)
        rows.append(("read_region, ECC verified, compiled RS", median_ms(
            lambda: ramoops.read_region(region, p), runs)))
    use(_rs_py)
    recs = ramoops.read_region(region, p)
    assert len(recs) == 16 and all(r.data.endswith(b"No errors detected\n") for r in recs)
    rows.append(("read_region, ECC verified, pure RS", median_ms(
        lambda: ramoops.read_region(region, p), max(3, runs // 5))))
    rows.append(("read_region, no ECC decoding (correct=False)", median_ms(
        lambda: ramoops.read_region(region, p, correct=False), runs)))
    if _rs_c is not None:
        zones = ramoops.layout(p)
        buf = bytearray(region)

        def syndromes_only():
            for z in zones:
                _rs_c.decode_blocks(buf, z.offset + 12, z.data_size, z.data_size,
                                    z.offset + 12 + z.data_size, z.ecc_size)
        rows.append(("compiled RS decode_blocks alone (all zones)",
                     median_ms(syndromes_only, runs)))
    base = rows[0][1]
    print("1 MiB region, ecc=16, 16 full zones; median of %d runs" % runs)
    print("%-48s %10s %8s" % ("variant", "ms", "x first"))
    for name, ms in rows:
        print("%-48s %10.2f %8.2f" % (name, ms, ms / base))
    if _rs_c is None:
        print("(compiled twin not built: python3 setup.py build_ext --inplace)")


if __name__ == "__main__":
    main(sys.argv[1:])
