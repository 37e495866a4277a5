"""Mutation fuzz of the keep area: whatever a crash or stray write leaves in
the region, scan() finds only records whose both CRCs match, never raises
anything but FormatError, and a put() never damages another live record.

Deterministic (seeded) so it runs the same under pytest and MicroPython;
FUZZ_ROUNDS rounds per test.
"""
from binascii import crc32

from _util import Rng

from crashkeep.system import keeparea
from crashkeep.formats import phramrec as pr
from crashkeep.errors import FormatError, NoSpaceError

FUZZ_ROUNDS = 300
FACTS = {"wall_time": 1, "uptime_ms": 2, "boot_id": ""}


class Mem:
    def __init__(self, data):
        self.data = data
        self.path = "<mem>"

    def read(self, off, n):
        return bytearray(self.data[off:off + n])

    def write(self, off, data):
        self.data[off:off + len(data)] = data

    def close(self):
        pass


def seeded_area(rnd):
    a = keeparea.KeepArea(Mem(bytearray(8192)), 8192)
    for i in range(rnd.randint(1, 4)):
        n = rnd.randint(0, 900)
        a.put("r%d" % i, bytes(rnd.getrandbits(8) for _ in range(n)), **FACTS)
    return a


def mutate(rnd, buf, headers):
    kind = rnd.randint(0, 4)
    if kind == 0:                                   # flip bits
        for _ in range(rnd.randint(1, 8)):
            i = rnd.randint(0, len(buf) - 1)
            buf[i] ^= 1 << rnd.randint(0, 7)
    elif kind == 1:                                 # a torn stretch of junk
        start = rnd.randint(0, len(buf) - 1)
        n = rnd.randint(1, 300)
        for i in range(start, min(len(buf), start + n)):
            buf[i] = rnd.getrandbits(8)
    elif kind == 2:                                 # a stale header copied elsewhere
        h = headers[rnd.randint(0, len(headers) - 1)]
        off = rnd.randint(0, (len(buf) - len(h)) // 64) * 64
        buf[off:off + len(h)] = h
    elif kind == 3:                                 # a header with lying lengths
        off = rnd.randint(2, len(buf) // 64 - 2) * 64
        fake = bytearray(pr.encode_header("fake", 99, 0, 0))
        fake[20:24] = bytes([0xFF, 0xFF, 0xFF, 0x7F])      # length: 2 GiB
        fake[4:8] = (crc32(fake[8:]) & 0xFFFFFFFF).to_bytes(4, "little")
        buf[off:off + len(fake)] = fake
    else:                                           # zero a range
        start = rnd.randint(0, len(buf) - 1)
        n = rnd.randint(1, 200)
        buf[start:start + n] = bytes(len(buf[start:start + n]))


def check_scan(buf):
    try:
        found = pr.scan(buf, 128, len(buf))
    except FormatError:
        return []
    for r in found:
        again = pr.parse_header(buf, r.offset, len(buf))
        assert pr.payload_ok(buf, again)
        assert r.offset + r.extent <= len(buf)
    return found


def test_scan_survives_mutations():
    rnd = Rng(11)
    for _ in range(FUZZ_ROUNDS):
        a = seeded_area(rnd)
        buf = a.dev.data
        headers = [bytes(buf[r.offset:r.offset + r.hdr_len]) for r in a.list()]
        for _ in range(rnd.randint(1, 5)):
            mutate(rnd, buf, headers)
        check_scan(buf)
        try:
            pr.newest_boot_state(buf)
        except FormatError:
            pass


def test_put_never_damages_other_live_records():
    rnd = Rng(12)
    for _ in range(FUZZ_ROUNDS):
        a = seeded_area(rnd)
        buf = a.dev.data
        headers = [bytes(buf[r.offset:r.offset + r.hdr_len]) for r in a.list()]
        for _ in range(rnd.randint(1, 4)):
            mutate(rnd, buf, headers)
        before = {}
        for r in a.list():
            before[r.name] = a.get(r.name)[1]
        name = "r%d" % rnd.randint(0, 5)
        new = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 1500)))
        try:
            a.put(name, new, **FACTS)
            assert a.get(name)[1] == new
        except NoSpaceError:
            pass
        for n in before:
            if n != name:
                got = a.get(n)
                assert got is not None and got[1] == before[n], n
