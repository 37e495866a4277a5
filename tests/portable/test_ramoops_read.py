"""The reader's rules one by one (ram_core.c validity, vsscanf header, inflate,
ECC, ftrace merge), on hand-built zones; corrupt input gives a zone marked
invalid or FormatError, never IndexError."""
import struct

from _util import raises, plant_zone

from crashkeep.formats import ramoops
from crashkeep.errors import FormatError, ConfigError

SIG = ramoops.PERSISTENT_RAM_SIG
# raw deflate (window 11) of b"Oops#1 Part1\nx\n"; its last byte is 0x00,
# which the kernel's zlib work-around supplies when it is missing
OOPS_Z = bytes.fromhex("f3cf2f2856365408482c2a31e4aae00200")
# raw deflate of b"Panic#1 Part1\nhello world\n": it starts with 0x0b (\v)
PANIC_Z = bytes.fromhex("0b48cccb4c56365408482c2a31e4ca48cdc9c95728cf2fca49e10200")
# raw deflate of b"A" * 3000
BIG_Z = bytes.fromhex("edc13101000000c2a06ceb5fca1a1e40010000ef06")


def small(ecc=0, order="6.1", ftrace=0, cpus=1, pmsg=0x400):
    # 4 dmesg zones of 0x400, console 0x400, [ftrace], pmsg 0x400
    return ramoops.Params(0x1800 + ftrace, 0x400, 0x400, ftrace, pmsg, ecc, cpus=cpus,
                          order=order)


def put(region, zone, payload, start=None, size=None, sig=SIG, big=False):
    plant_zone(region, zone, payload, start, size, sig, big)

def zone(p, kind, index=0):
    for z in ramoops.layout(p):
        if z.kind == kind and z.index == index:
            return z
    raise KeyError(kind)


def scan(region, p, **kw):
    states, recs = ramoops.scan(region, p, **kw)
    return states, dict((r.name, r) for r in recs)


def test_bad_sig_is_ignored():
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg"), b"====1.000002-D\nOops#1 Part1\nx\n", sig=SIG ^ 1)
    states, recs = scan(region, p)
    assert states[0].status == "bad-sig" and recs == {}


def test_empty_zone():
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "console"), b"", size=(0, 0))
    states, recs = scan(region, p)
    assert [s.status for s in states if s.zone.kind == "console"] == ["empty"]
    assert recs == {}


def test_size_and_start_bounds():
    p = small()
    c = zone(p, "console")
    b = c.data_size
    for start, size, status in ((0, b + 1, "invalid"), (5, 4, "invalid"), (0, -1, "invalid"),
                                (-1, 3, "invalid"), (0, 0x7fffffff, "invalid"),
                                (3, b, "valid"), (b, b, "valid"), (7, 7, "valid")):
        region = bytearray(p.mem_size)
        put(region, c, b"x" * b, size=(start, size))
        states, recs = scan(region, p)
        st = [s for s in states if s.zone is not None and s.zone.kind == "console"][0]
        assert st.status == status, (start, size, st.status)
        assert ("console-ramoops-0" in recs) == (status == "valid")
        if start == size == b:
            # the kernel accepts what no writer produces; we say so
            assert "no writer" in st.note


def test_ring_unwrap():
    p = small()
    c = zone(p, "console")
    b = c.data_size
    text = bytes((i % 251) + 1 for i in range(b + 300))
    region = bytearray(p.mem_size)
    put(region, c, text, start=100)
    states, recs = scan(region, p)
    assert recs["console-ramoops-0"].data == text[-b:]
    # not wrapped: data[0:size]
    region = bytearray(p.mem_size)
    put(region, c, b"hello console\n")
    assert scan(region, p)[1]["console-ramoops-0"].data == b"hello console\n"


def test_header_forms():
    cases = [
        (b"====1700000000.000123-D\nOops#1 Part1\n", (1700000000, 123, False, 24)),
        (b"====5.7-C\nzz", (5, 7, True, 10)),
        (b"====5.7\nabc", (5, 7, False, 8)),              # old form, no -C/-D
        (b"==== 5. 7-D\n\n\nabc", (5, 7, False, 14)),     # vsscanf skips spaces
        (b"====-5.7-D\nx", (-5, 7, False, 11)),           # %lld takes a sign
        (b"====5.7-Dabc", (5, 7, False, 9)),              # "\n" matches no space too
        (b"====5.7-", (5, 7, False, 7)),                  # no type char: old form
        (b"====5.7-\x00abc", (5, 7, False, 7)),           # NUL ends the C string
        (b"====99999999999999999999.1-D\n", (99999999999999999999 % (1 << 64), 1, False, 29)),
        (b"====18446744073709551615.1-D\n", (-1, 1, False, 29)),   # long long from u64
    ]
    for text, want in cases:
        assert ramoops.parse_header(text) == want, (text, ramoops.parse_header(text))
    for bad in (b"===5.7-D\n", b"====x.7-D\n", b"====5-7-D\n", b"====5.-7-D\n", b"",
                b"====", b"====5", b"====5.", b"\x00===5.7-D\n", b"====--5.7-D\n"):
        assert ramoops.parse_header(bad)[3] == 0, bad


def test_reason_line():
    assert ramoops.parse_reason(b"Panic#2 Part1\n<4>...") == ("Panic", 2, 1)
    assert ramoops.parse_reason(b"Oops#1 Part1") == ("Oops", 1, 1)
    for bad in (b"", b"#1 Part1\n", b"Panic#x Part1\n", b"Panic#1 Partx\n", b"\xff\xfe#1 Part1"):
        assert ramoops.parse_reason(bad) == (None, None, None), bad


def test_dmesg_without_header_is_dropped():
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 1), b"not a header\n")
    put(region, zone(p, "dmesg", 2), b"====3.000004-D\nPanic#1 Part1\nhi\n")
    states, recs = scan(region, p)
    assert states[1].status == "no-header"
    assert sorted(recs) == ["dmesg-ramoops-2"]
    r = recs["dmesg-ramoops-2"]
    assert (r.data, r.time, r.usec, r.reason, r.count) == (b"Panic#1 Part1\nhi\n", 3, 4,
                                                            "Panic", 1)


def test_header_only_record_stops_the_listing():
    # ramoops_pstore_read() returns 0 for it, and pstore stops reading there
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 0), b"====1.000001-D\nOops#1 Part1\n")
    put(region, zone(p, "dmesg", 1), b"====1.000002-D\n")
    put(region, zone(p, "dmesg", 2), b"====1.000003-D\nOops#2 Part1\n")
    put(region, zone(p, "console"), b"console\n")
    states, recs = scan(region, p)
    assert sorted(recs) == ["dmesg-ramoops-0"]
    assert states[4].status == "not-listed"


def test_compressed_records():
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 0), b"====1.000001-C\n" + OOPS_Z)
    put(region, zone(p, "dmesg", 1), b"====1.000002-C\n" + OOPS_Z[:-1])    # zero-stuffed
    put(region, zone(p, "dmesg", 2), b"====1.000003-C\n" + OOPS_Z[:-3])    # cut: .enc.z
    put(region, zone(p, "dmesg", 3), b"====1.000004-C\n" + b"\xff" * 40)   # garbage
    states, recs = scan(region, p)
    assert recs["dmesg-ramoops-0"].data == b"Oops#1 Part1\nx\n"
    assert recs["dmesg-ramoops-0"].reason == "Oops"
    assert recs["dmesg-ramoops-1"].data == b"Oops#1 Part1\nx\n"
    assert recs["dmesg-ramoops-2.enc.z"].data == OOPS_Z[:-3]
    assert recs["dmesg-ramoops-3.enc.z"].data == b"\xff" * 40
    assert recs["dmesg-ramoops-3.enc.z"].encoded and recs["dmesg-ramoops-3.enc.z"].compressed
    # a kernel without a decompressor shows every C record as .enc.z
    states, recs = scan(region, p, inflate=False)
    assert recs["dmesg-ramoops-0.enc.z"].data == OOPS_Z


def test_compressed_stream_starting_with_a_space_byte():
    # The header's "\n" in sscanf eats any whitespace after it, 0x0b (\v) of
    # the deflate stream included: the kernel then cannot inflate the record.
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 0), b"====1.000001-C\n" + PANIC_Z)
    states, recs = scan(region, p)
    assert recs["dmesg-ramoops-0.enc.z"].data == PANIC_Z[1:]
    assert ramoops.inflate_record(PANIC_Z, 100) == b"Panic#1 Part1\nhello world\n"


def test_inflate_limit():
    # 3000 bytes do not fit big_oops_buf_sz of a 0x400 zone (1012 * 100 / 56)
    p = small()
    assert ramoops.zbufsize_deflate(zone(p, "dmesg").data_size) == 1807
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 0), b"====1.000001-C\n" + BIG_Z)
    states, recs = scan(region, p)
    assert list(recs) == ["dmesg-ramoops-0.enc.z"]
    assert ramoops.inflate_record(BIG_Z, 3000) == b"A" * 3000
    assert ramoops.inflate_record(BIG_Z, 2999) is None


def test_ecc_notice_and_correction():
    p = small(ecc=16)
    region = bytearray(p.mem_size)
    d0 = zone(p, "dmesg", 0)
    text = b"====1.000001-D\nOops#1 Part1\n" + bytes(range(32, 127)) * 4
    put(region, d0, text)
    put(region, zone(p, "console"), b"console text\n" * 30)
    clean = bytes(region)
    states, recs = scan(region, p)
    assert recs["dmesg-ramoops-0"].data == text[15:] + b"\nECC: No errors detected\n"
    assert recs["console-ramoops-0"].data.endswith(b"\nECC: No errors detected\n")
    # 8 errors in block 1, 2 in the header's size field, 1 in block 0's parity
    for i in range(8):
        region[d0.offset + 12 + 128 + 5 * i] ^= 0x5A
    region[d0.offset + 8] ^= 0x01
    region[d0.offset + 9] ^= 0x80
    region[d0.offset + 12 + d0.data_size] ^= 0xFF
    before = bytes(region)
    states, recs = scan(region, p)
    assert bytes(region) == before                      # the source is never corrected
    r = recs["dmesg-ramoops-0"]
    assert r.data == text[15:] + b"\nECC: 11 Corrected bytes, 0 unrecoverable blocks\n"
    assert (r.ecc.corrected, r.ecc.bad_blocks) == (11, 0)
    # 9 errors in block 2: beyond RS(16); the block stays as read
    region = bytearray(clean)
    for i in range(9):
        region[d0.offset + 12 + 256 + 3 * i] ^= 0x11
    states, recs = scan(region, p)
    r = recs["dmesg-ramoops-0"]
    assert r.data.endswith(b"\nECC: 0 Corrected bytes, 1 unrecoverable blocks\n")
    assert r.data[:-len(b"\nECC: 0 Corrected bytes, 1 unrecoverable blocks\n")] != text[15:]
    # correct=False: no decoding, no notice (what U-Boot shows)
    states, recs = scan(clean, p, correct=False)
    assert recs["dmesg-ramoops-0"].data == text[15:]


def test_ecc_header_beyond_repair():
    p = small(ecc=4)
    region = bytearray(p.mem_size)
    c = zone(p, "console")
    put(region, c, b"abc\n")
    for i in range(6):
        region[c.offset + 12 + c.data_size + c.ecc_blocks * 4 + (i % 4)] ^= 0x33 + i
    region[c.offset + 4] ^= 0x01      # start 4 -> 5: start > size
    states, recs = scan(region, p)
    st = [s for s in states if s.zone.kind == "console"][0]
    assert st.status == "invalid" and st.ecc.bad_blocks == 1


def test_big_endian_zone():
    p = small()
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 0), b"====7.000001-D\nOops#1 Part1\nbe\n", big=True)
    states, recs = scan(region, p)
    assert states[0].endian == ">" and recs["dmesg-ramoops-0"].data == b"Oops#1 Part1\nbe\n"


def ftrace_rec(ip, ts, cpu):
    return struct.pack("<QQQ", ip, 0x1000 + ip, (ts << 8) | cpu)


def test_ftrace_merge_and_order_detection():
    p = small(ftrace=0x400, cpus=2, order="6.1")
    fsig = SIG ^ 0x0601C0
    region = bytearray(p.mem_size)
    cpu0 = ftrace_rec(1, 10, 0) + ftrace_rec(2, 30, 0) + ftrace_rec(3, 50, 0)
    cpu1 = ftrace_rec(4, 20, 1) + ftrace_rec(5, 30, 1) + ftrace_rec(6, 60, 1)
    put(region, zone(p, "ftrace", 0), b"PARTIAL" + cpu0, sig=fsig)   # 7 stray bytes
    put(region, zone(p, "ftrace", 1), cpu1, sig=fsig)
    put(region, zone(p, "pmsg"), b"pmsg here\n")
    states, recs = scan(region, p)
    # sorted by ts, the later CPU's record first on a tie (the kernel's "<")
    want = ftrace_rec(1, 10, 0) + ftrace_rec(4, 20, 1) + ftrace_rec(5, 30, 1) + \
        ftrace_rec(2, 30, 0) + ftrace_rec(3, 50, 0) + ftrace_rec(6, 60, 1)
    assert recs["ftrace-ramoops-0"].data == want
    assert recs["pmsg-ramoops-0"].data == b"pmsg here\n"
    # auto: the 6.1 layout has 3 good signatures more than the 6.2 one
    states, recs2 = scan(region, p.copy(order="auto"))
    assert sorted(recs2) == sorted(recs)
    # in the 6.2 order pmsg and ftrace trade places: nothing valid there
    states, recs3 = scan(region, p.copy(order="6.2"))
    assert "pmsg-ramoops-0" not in recs3
    # a pinned kernel version refuses ftrace zones of another kernel
    p.linux_version = 0x060C75
    assert "ftrace-ramoops-0" not in scan(region, p)[1]


def test_ftrace_single_zone_is_raw():
    p = small(ftrace=0x400, cpus=2)
    p.ftrace_per_cpu = False
    region = bytearray(p.mem_size)
    put(region, zone(p, "ftrace", 0), b"PARTIAL" + ftrace_rec(1, 10, 0), sig=SIG ^ 0x0601C0)
    assert scan(region, p)[1]["ftrace-ramoops-0"].data == b"PARTIAL" + ftrace_rec(1, 10, 0)


def test_short_and_wrong_inputs():
    p = small()
    raises(FormatError, ramoops.scan, b"", p)
    raises(FormatError, ramoops.scan, b"\x00" * 11, p)
    raises(FormatError, ramoops.scan, "text", p)
    raises(FormatError, ramoops.scan, b"\x00" * 0x100, p)      # smaller than zone 0
    region = bytearray(0x900)                                  # zones 0, 1 only
    put(region, zone(p, "dmesg", 1), b"====1.2-D\nOops#1 Part1\n")
    states, recs = scan(region, p)
    assert list(recs) == ["dmesg-ramoops-1"]
    assert [s.status for s in states][2:] == ["missing"] * 4
    raises(ConfigError, ramoops.layout, ramoops.Params(0x1000, 0x100, 0, 0, 0, 127))


def test_every_byte_flip_is_clean():
    # the whole reader on every single-byte corruption of an ECC region
    p = small(ecc=8)
    region = bytearray(p.mem_size)
    put(region, zone(p, "dmesg", 0), b"====1.000001-C\n" + OOPS_Z)
    put(region, zone(p, "console"), b"console\n" * 10, start=3)
    for off in list(range(0, 40)) + list(range(0x400 - 60, 0x400)) + \
            list(range(0x1000, 0x1000 + 30)):
        for x in (0x01, 0x80, 0xFF):
            bad = bytearray(region)
            bad[off] ^= x
            states, recs = ramoops.scan(bad, p)
            # one flipped byte is always within what RS(8) corrects
            assert "console-ramoops-0" in dict((r.name, r) for r in recs), (off, x)


def test_pure_inflater():
    # the inflater used where zlib is missing (MicroPython), on fixed streams
    assert ramoops.inflate_raw(OOPS_Z, 100) == b"Oops#1 Part1\nx\n"
    assert ramoops.inflate_raw(BIG_Z, 5000) == b"A" * 3000
    assert ramoops.inflate_raw(BIG_Z, 10) == b"A" * 10           # stops at the limit
    stored = b"\x01\x05\x00\xfa\xffhello"                          # final stored block
    assert ramoops.inflate_raw(stored + b"trailing", 100) == b"hello"
    for bad in (OOPS_Z[:-3], b"", b"\x07", b"\x01\x05\x00\xfa\xfehello", b"\x01\x05\x00\xfa\xffhel",
                b"\x03\x02\x00",                       # distance before the first byte
                b"\xff" * 8):
        raises(ValueError, ramoops.inflate_raw, bad, 100)


def test_pure_inflater_against_zlib():
    try:
        import zlib
        zlib.decompressobj
    except (ImportError, AttributeError):
        return                   # the oracle is CPython's zlib
    rnd = __import__("random").Random(8)
    for t in range(200):
        d = b"".join(rnd.choice((b"abc", b"<4>[ 1.2] hello\n", bytes([rnd.getrandbits(8)])))
                     for _ in range(rnd.randint(0, 800)))
        c = zlib.compressobj(rnd.choice((0, 1, 6, 9)), zlib.DEFLATED, -rnd.choice((9, 11, 15)))
        z = bytearray(c.compress(d) + c.flush())
        assert ramoops.inflate_raw(bytes(z), len(d) + 1) == d
        for _ in range(rnd.randint(1, 3)):
            z[rnd.randrange(len(z))] ^= 1 << rnd.randrange(8)
        try:
            o = zlib.decompressobj(-15)
            want = o.decompress(bytes(z))
            want = want if o.eof else None
        except zlib.error:
            want = None
        try:
            got = ramoops.inflate_raw(bytes(z), 1 << 20)
        except ValueError:
            got = None
        assert got == want, t
