"""ramoops reserved-memory region: zone layout, zone headers, records.

Layout source: Linux fs/pstore/ram.c (ramoops_probe, ramoops_init_przs,
ramoops_pstore_read), fs/pstore/ram_core.c (persistent_ram_buffer,
persistent_ram_init_ecc, persistent_ram_post_init, persistent_ram_save_old),
fs/pstore/platform.c (decompress_record), fs/pstore/inode.c (file names),
fs/pstore/ftrace.c (pstore_ftrace_combine_log); 6.1.192 and 6.12.

The region is carved from mem_address upward, zones packed with no padding:

| group   | count                 | zone size                       |
|---------|-----------------------|---------------------------------|
| dmesg   | cnt = D // R          | Z = D // cnt (even-rounded)     |
| console | 1 if C                | C                               |
| pmsg    | 1 if P (6.2+: here)   | P                               |
| ftrace  | cpus (per-CPU flag)   | F // cpus (even-rounded)        |
| pmsg    | 1 if P (6.1: here)    | P                               |

with D = mem_size - C - F - P and R, C, F, P rounded down to powers of two.

Every zone (struct persistent_ram_buffer, CPU byte order):

| offset        | size | field                                            |
|---------------|------|--------------------------------------------------|
| 0             | 4    | sig: 0x43474244 "DBGC" (ftrace: ^ LINUX_VERSION)  |
| 4             | 4    | start: signed, next write position in data        |
| 8             | 4    | size: signed, valid bytes in data (<= B)          |
| 12            | B    | data: the ring; logical = data[start:size] + data[:start] |
| 12+B          | n*E  | ECC only: RS parity of data block i (128 bytes)  |
| 12+B+n*E      | E    | ECC only: RS parity of the 12 header bytes       |

A dmesg ring starts with "====<sec>.<usec>-<C|D>\n", then (inflated when C)
"<Why>#<N> Part1\n" and the tail of the kernel log.
"""
from crashkeep.errors import ConfigError, FormatError
from crashkeep.limits import ZONES_MAX, RECORD_INFLATED_MAX

# Module-parameter defaults (fs/pstore/ram.c: MIN_MEM_SIZE for each size).
DEFAULT_RECORD_SIZE = 4096
DEFAULT_CONSOLE_SIZE = 4096
DEFAULT_FTRACE_SIZE = 4096
DEFAULT_PMSG_SIZE = 4096
DEFAULT_MAX_REASON = 2
ECC_BLOCK_SIZE = 128
PRZ_HEADER_SIZE = 12            # struct persistent_ram_buffer: sig, start, size

ORDER_6_1 = "6.1"               # dmesg, console, ftrace, pmsg
ORDER_6_2 = "6.2"               # dmesg, console, pmsg, ftrace
ORDER_AUTO = "auto"             # read_region: the order with more valid signatures


def rounddown_pow_of_two(n):
    if n <= 0:
        return 0
    p = 1
    while p * 2 <= n:
        p *= 2
    return p


def ecc_bytes(ecc):
    """The module parameter `ecc=1` means 16 parity bytes (ramoops_register_dummy)."""
    return 16 if ecc == 1 else ecc


def ecc_geometry(zone_size, ecc_size):
    """(B, nblocks): the ring capacity and the parity block count of one zone.

    persistent_ram_init_ecc: nblocks = ceil((B0 - E) / (128 + E)) with
    B0 = zone_size - 12; parity for every block plus one for the header.
    """
    b0 = zone_size - PRZ_HEADER_SIZE
    if ecc_size == 0:
        return b0, 0
    nblocks = (b0 + ECC_BLOCK_SIZE - 1) // (ECC_BLOCK_SIZE + ecc_size)
    total = (nblocks + 1) * ecc_size
    if total >= b0:
        raise ConfigError("zone of %d bytes is too small for ecc=%d" % (zone_size, ecc_size))
    return b0 - total, nblocks


class Zone:
    """One persistent_ram_zone: where it is and how big its ring is."""

    def __init__(self, kind, index, count, offset, size, ecc_size):
        self.kind = kind          # "dmesg", "console", "ftrace", "pmsg"
        self.index = index        # index within its group
        self.count = count        # zones in its group
        self.offset = offset      # from mem_address
        self.size = size
        self.ecc_size = ecc_size
        self.data_size, self.ecc_blocks = ecc_geometry(size, ecc_size)

    @property
    def label(self):
        # ramoops_init_przs/prz labels, as in /proc/iomem
        if self.kind in ("dmesg", "ftrace") and (self.kind == "dmesg" or self.count > 1):
            return "ramoops:%s(%d/%d)" % (self.kind, self.index, self.count - 1)
        return "ramoops:" + self.kind

    def as_dict(self):
        return {"kind": self.kind, "index": self.index, "offset": self.offset,
                "size": self.size, "data_size": self.data_size, "label": self.label}


class Params:
    """The ramoops module parameters that decide a layout (module defaults)."""

    def __init__(self, mem_size, record_size=DEFAULT_RECORD_SIZE,
                 console_size=DEFAULT_CONSOLE_SIZE, ftrace_size=DEFAULT_FTRACE_SIZE,
                 pmsg_size=DEFAULT_PMSG_SIZE, ecc=0, cpus=1, order=ORDER_6_2,
                 even_round=True, ftrace_per_cpu=True, mem_address=0,
                 linux_version=None, ftrace_record_size=24, ftrace_cpu_in_ip=False):
        self.mem_address = mem_address
        self.mem_size = mem_size
        self.record_size = record_size
        self.console_size = console_size
        self.ftrace_size = ftrace_size
        self.pmsg_size = pmsg_size
        self.ecc = ecc
        self.cpus = cpus
        self.order = order
        self.even_round = even_round
        self.ftrace_per_cpu = ftrace_per_cpu
        # LINUX_VERSION_CODE of the kernel that wrote the ftrace zones (their
        # sig is DBGC ^ it); None accepts any plausible version.
        self.linux_version = linux_version
        # struct pstore_ftrace_record: 24 bytes on 64-bit, 16 on 32-bit; the
        # CPU number sits in the low bits of ip on 32-bit ARM, else of ts.
        self.ftrace_record_size = ftrace_record_size
        self.ftrace_cpu_in_ip = ftrace_cpu_in_ip

    def copy(self, **changes):
        p = Params(self.mem_size)
        for k in self.__dict__:
            setattr(p, k, getattr(self, k))
        for k in changes:
            setattr(p, k, changes[k])
        return p


def layout(p):
    """Zones exactly as ramoops_probe() carves them; ConfigError where probe fails."""
    if p.mem_size <= 0:
        raise ConfigError("mem_size is 0: ramoops ignores the region")
    if p.cpus < 1 or p.cpus > ZONES_MAX:
        raise ConfigError("cpus must be 1..%d, not %d" % (ZONES_MAX, p.cpus))
    r = rounddown_pow_of_two(p.record_size)
    c = rounddown_pow_of_two(p.console_size)
    f = rounddown_pow_of_two(p.ftrace_size)
    pm = rounddown_pow_of_two(p.pmsg_size)
    if not (r or c or f or pm):
        raise ConfigError("every ramoops zone size is 0")
    e = ecc_bytes(p.ecc)
    if e < 0 or e > ECC_BLOCK_SIZE - 1:
        raise ConfigError("ecc must be 0..127 parity bytes, not %d" % e)
    dmesg_area = p.mem_size - c - f - pm
    if dmesg_area < 0:
        raise ConfigError("console + ftrace + pmsg (0x%x) exceed mem_size (0x%x)"
                          % (c + f + pm, p.mem_size))
    zones = []
    cursor = 0

    def group(kind, total, n):
        nonlocal cursor
        if total == 0 or n == 0:
            return
        zsize = total // n
        if p.even_round:
            zsize &= ~1
        if cursor + zsize * n > p.mem_size:
            raise ConfigError("no room for %s mem region (0x%x@0x%x) in 0x%x"
                              % (kind, zsize * n, cursor, p.mem_size))
        for i in range(n):
            zones.append(Zone(kind, i, n, cursor, zsize, e))
            cursor += zsize

    if r and dmesg_area:
        cnt = dmesg_area // r
        if cnt > ZONES_MAX:
            raise ConfigError("%d dmesg zones: more than the %d we handle" % (cnt, ZONES_MAX))
        if cnt == 0:
            raise ConfigError("record_size 0x%x does not fit the 0x%x left for dmesg"
                              % (r, dmesg_area))
        group("dmesg", dmesg_area, cnt)
    group("console", c, 1)
    nftrace = p.cpus if p.ftrace_per_cpu else 1
    if p.order == ORDER_6_1:
        group("ftrace", f, nftrace)
        group("pmsg", pm, 1)
    else:
        group("pmsg", pm, 1)
        group("ftrace", f, nftrace)
    return zones


# ---------------------------------------------------------------------------
# Reading a region: headers, ECC, rings, records

PERSISTENT_RAM_SIG = 0x43474244     # "DBGC"
RAMOOPS_KERNMSG_HDR = b"===="
# kmsg_dump_reason_str() (6.1); pre-5.8 kernels also had Restart/Halt/Poweroff
REASONS = ("Panic", "Oops", "Emergency", "Shutdown", "Unknown", "Restart", "Halt", "Poweroff")

ST_VALID = "valid"          # signed, sane, holds data
ST_EMPTY = "empty"          # signed, start == size == 0
ST_BAD_SIG = "bad-sig"      # never initialised, other layout, or lost
ST_INVALID = "invalid"      # signed but size > B or start > size: the kernel zaps it
ST_NO_HEADER = "no-header"  # dmesg data without a ==== header: the kernel zaps it on read
ST_MISSING = "missing"      # past the end of the bytes we were given
ST_UNREAD = "not-listed"    # after an empty dmesg record the kernel lists nothing more

_U64 = (1 << 64) - 1


class EccInfo:
    """What RS decoding of one zone found (header and the data blocks in use)."""

    def __init__(self, corrected=0, bad_blocks=0):
        self.corrected = corrected
        self.bad_blocks = bad_blocks

    def notice(self):
        # persistent_ram_ecc_string(): appended to every record of an ECC zone
        if self.corrected or self.bad_blocks:
            return b"\nECC: %d Corrected bytes, %d unrecoverable blocks\n" % (
                self.corrected, self.bad_blocks)
        return b"\nECC: No errors detected\n"

    def as_dict(self):
        return {"corrected": self.corrected, "bad_blocks": self.bad_blocks}

    def __repr__(self):
        return "EccInfo(%d corrected, %d bad)" % (self.corrected, self.bad_blocks)


class Record:
    """One file of /sys/fs/pstore, rebuilt from the raw region."""

    def __init__(self, name, data, kind, zone, time=0, usec=0, reason=None, count=None,
                 part=None, compressed=False, encoded=False, ecc=None):
        self.name = name            # dmesg-ramoops-0, console-ramoops-0, ... (+ .enc.z)
        self.data = data            # the file's bytes (a bytearray), ECC notice included
        self.kind = kind            # dmesg, console, pmsg, ftrace
        self.zone = zone            # the Zone it came from (ftrace: CPU 0's)
        self.time = time            # seconds of the ==== header (0: none)
        self.usec = usec
        self.reason = reason        # "Panic", "Oops", ... from "Why#N PartK"
        self.count = count          # N: the boot's dump counter
        self.part = part
        self.compressed = compressed  # the header said C
        self.encoded = encoded        # still compressed: the file is .enc.z
        self.ecc = ecc                # EccInfo, None without ECC

    def __repr__(self):
        return "Record(%s, %d bytes)" % (self.name, len(self.data))


class ZoneState:
    """One zone as read: header fields, verdict, ECC result, its record."""

    def __init__(self, zone):
        self.zone = zone
        self.endian = None          # "<" or ">" once the sig matched
        self.sig = None
        self.start = None
        self.size = None
        self.status = ST_MISSING
        self.ecc = None
        self.note = ""
        self.record = None
        self.logical = None         # unwrapped ring bytes (valid zones)

    def as_dict(self):
        z = self.zone
        r = self.record
        return {"kind": z.kind, "index": z.index, "offset": z.offset, "size": z.size,
                "data_size": z.data_size, "label": z.label, "status": self.status,
                "sig": self.sig, "endian": {"<": "little", ">": "big"}.get(self.endian),
                "start": self.start, "used": self.size,
                "ecc": self.ecc.as_dict() if self.ecc else None, "note": self.note,
                "record": r.name if r else None, "time": r.time if r else 0,
                "compressed": r.compressed if r else False,
                "reason": r.reason if r else None}


def _u32(b, off, big):
    v = (b[off] | (b[off + 1] << 8) | (b[off + 2] << 16) | (b[off + 3] << 24)) if not big else \
        ((b[off] << 24) | (b[off + 1] << 16) | (b[off + 2] << 8) | b[off + 3])
    return v


def _s32(v):
    return v - (1 << 32) if v & 0x80000000 else v


def _sig_ok(kind, sig, p):
    if kind != "ftrace":
        return sig == PERSISTENT_RAM_SIG
    v = sig ^ PERSISTENT_RAM_SIG
    if p.linux_version is not None:
        return v == p.linux_version
    # LINUX_VERSION_CODE: (major << 16) | (minor << 8) | sublevel, major 2..31
    return 2 <= (v >> 16) <= 31


def _zone_bytes(data, zone, ecc_on):
    end = zone.offset + zone.size
    if end > len(data):
        return None
    chunk = data[zone.offset:end]
    # ECC corrects a private copy: the caller's bytes are never written
    return bytearray(chunk) if ecc_on else chunk


def read_zone(data, zone, p, correct=True):
    """ZoneState for one zone of `data` (the whole region)."""
    from crashkeep.formats import rs
    st = ZoneState(zone)
    e = zone.ecc_size
    zb = _zone_bytes(data, zone, e and correct)
    if zb is None:
        st.note = "region ends at 0x%x" % len(data)
        return st
    b = zone.data_size
    if e and correct:
        st.ecc = EccInfo()
        par_header = PRZ_HEADER_SIZE + b + zone.ecc_blocks * e
        # persistent_ram_init_ecc: the header is decoded before the sig check
        r = rs.decode(zb, 0, PRZ_HEADER_SIZE, par_header, e)
        if r > 0:
            st.ecc.corrected += r
        elif r < 0:
            st.ecc.bad_blocks += 1
    endian = None
    for big in (False, True):
        if _sig_ok(zone.kind, _u32(zb, 0, big), p):
            endian = ">" if big else "<"
            break
    big = endian == ">"
    st.sig = _u32(zb, 0, big)
    st.start = _s32(_u32(zb, 4, big))
    st.size = _s32(_u32(zb, 8, big))
    if endian is None:
        st.status = ST_BAD_SIG
        st.start = st.size = None
        return st
    st.endian = endian
    start, size = st.start, st.size
    if size == 0 and start == 0:
        st.status = ST_EMPTY
        return st
    # persistent_ram_post_init, with size_t comparisons: negatives are huge
    if size < 0 or start < 0 or size > b or start > size:
        st.status = ST_INVALID
        st.note = "size %d, start %d, capacity %d" % (size, start, b)
        return st
    if start == b:
        st.note = "start == size == capacity: no writer leaves this (the kernel accepts it)"
    if e and correct:
        # persistent_ram_ecc_old: every block covering [0, size)
        c, bad = rs.decode_blocks(zb, PRZ_HEADER_SIZE, size, b, PRZ_HEADER_SIZE + b, e,
                                  ECC_BLOCK_SIZE)
        st.ecc.corrected += c
        st.ecc.bad_blocks += bad
    d0 = PRZ_HEADER_SIZE
    # one copy: a memoryview slices without copying (MicroPython heaps are small)
    mv = memoryview(zb)
    logical = bytearray(mv[d0 + start:d0 + size])
    logical += mv[d0:d0 + start]
    st.logical = logical
    st.status = ST_VALID
    return st


# --- the ==== header, parsed the way the kernel's vsscanf does it

_SPACES = b" \t\n\x0b\x0c\r\xa0"    # the kernel's isspace(), Latin-1 NBSP included


def _ch(buf, i):
    return buf[i] if i < len(buf) else 0       # the C string ends at NUL or the end


def _skip(buf, i):
    while True:
        c = _ch(buf, i)
        if c == 0 or c not in _SPACES:
            return i
        i += 1


def _number(buf, i, signed):
    """(value, next index) for %lld / %lu at buf[i], or None (no conversion)."""
    if _ch(buf, i) == 0:
        return None
    i = _skip(buf, i)
    c = _ch(buf, i)
    neg = False
    digit = c
    if signed and c == 0x2D:                    # '-'
        digit = _ch(buf, i + 1)
        neg = True
    if not 0x30 <= digit <= 0x39:
        return None
    if neg:
        i += 1
    v = 0
    while True:
        c = _ch(buf, i)
        if not 0x30 <= c <= 0x39:
            break
        v = (v * 10 + c - 0x30) & _U64       # simple_strntoull wraps on overflow
        i += 1
    if neg:
        v = (-v) & _U64
    if signed and v >> 63:
        v -= 1 << 64
    return v, i


def _scan_header(buf, typed):
    """One kernel sscanf of "====%lld.%lu-%c\\n%n" (typed) or "====%lld.%lu\\n%n".
    Returns (matched conversions, sec, usec, type char, header length)."""
    i = 0
    for k in range(4):
        if _ch(buf, i) != 0x3D:
            return 0, 0, 0, 0, 0
        i += 1
    r = _number(buf, i, True)
    if r is None:
        return 0, 0, 0, 0, 0
    sec, i = r
    if _ch(buf, i) != 0x2E:
        return 1, sec, 0, 0, 0
    r = _number(buf, i + 1, False)
    if r is None:
        return 1, sec, 0, 0, 0
    usec, i = r
    kind = 0
    if typed:
        if _ch(buf, i) != 0x2D:
            return 2, sec, usec, 0, 0
        i += 1
        kind = _ch(buf, i)
        if kind == 0:
            return 2, sec, usec, 0, 0
        i += 1
    return (3 if typed else 2), sec, usec, kind, _skip(buf, i)


def parse_header(buf):
    """ramoops_read_kmsg_hdr(): (sec, usec, compressed, header length);
    length 0 when the kernel would find no header (and zap the zone)."""
    n, sec, usec, kind, hl = _scan_header(buf, True)
    if n == 3:
        return sec, usec, kind == 0x43, hl       # 'C'
    n, sec, usec, kind, hl = _scan_header(buf, False)
    if n == 2:
        return sec, usec, False, hl
    return 0, 0, False, 0


def parse_reason(text):
    """("Panic", 2, 1) from b"Panic#2 Part1\\n...", else (None, None, None)."""
    nl = text.find(b"\n", 0, 64)
    line = bytes(text[:nl if nl >= 0 else min(len(text), 64)])
    hash_ = line.find(b"#")
    sp = line.find(b" Part")
    if hash_ <= 0 or sp <= hash_ + 1:
        return None, None, None
    why = line[:hash_]
    num = line[hash_ + 1:sp]
    part = line[sp + 5:]
    if not (num.isdigit() and part.isdigit() and why.isalpha()):
        return None, None, None
    return why.decode(), int(num), int(part)


def zbufsize_deflate(size):
    """platform.c zbufsize_deflate(): the most an inflated 6.1 record may hold."""
    if 1000 <= size <= 2000:
        cmpr = 56
    elif 2001 <= size <= 3000:
        cmpr = 54
    elif 3001 <= size <= 3999:
        cmpr = 52
    elif 4000 <= size <= 10000:
        cmpr = 45
    else:
        cmpr = 60
    return size * 100 // cmpr


def inflate_record(payload, limit, wbits=15):
    """Inflate like crypto/deflate.c: the stream must end within `limit` output
    bytes; a stream short by its last bits may be finished by one zero byte
    (the kernel's zlib work-around). None when the kernel would fail.

    Without zlib (MicroPython) the pure inflater below is used: DeflateIO
    does not refuse a distance reaching before the first output byte, which
    the kernel's zlib does."""
    if limit > RECORD_INFLATED_MAX:
        limit = RECORD_INFLATED_MAX
    payload = bytes(payload)
    try:
        import zlib
        inflate = None if hasattr(zlib, "decompressobj") else inflate_raw
    except ImportError:
        inflate = inflate_raw
    if inflate is None:
        from crashkeep.compat import raw_inflate

        def inflate(data, lim):
            return raw_inflate(data, lim, wbits)
    for extra in (b"", b"\x00"):
        try:
            out = inflate(payload + extra, limit + 1)
        except (ValueError, MemoryError, OSError, EOFError):
            continue
        return out if len(out) <= limit else None
    return None


# --- raw DEFLATE (RFC 1951), refusing what zlib's inflate refuses

_LEN_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
             99, 115, 131, 163, 195, 227, 258)
_LEN_EXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5,
              5, 5, 0)
_DIST_BASE = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
              1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577)
_DIST_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11,
               11, 12, 12, 13, 13)
_CL_ORDER = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)


class _Bits:
    def __init__(self, data):
        self.data = data
        self.pos = 0          # next byte
        self.buf = 0
        self.cnt = 0

    def need(self, n):
        while self.cnt < n:
            if self.pos >= len(self.data):
                raise ValueError("truncated deflate stream")
            self.buf |= self.data[self.pos] << self.cnt
            self.pos += 1
            self.cnt += 8
        v = self.buf & ((1 << n) - 1)
        self.buf >>= n
        self.cnt -= n
        return v


def _huffman(lengths, kind):
    """(counts, symbols) of a canonical code; ValueError where zlib's
    inflate_table refuses it (over-subscribed, or incomplete unless it is a
    single one-bit literal/distance code)."""
    counts = [0] * 16
    for n in lengths:
        counts[n] += 1
    left = 1
    for n in range(1, 16):
        left = (left << 1) - counts[n]
        if left < 0:
            raise ValueError("over-subscribed %s code" % kind)
    used = len(lengths) - counts[0]
    if left > 0 and (kind == "code-length" or not (used == 1 and counts[1] == 1)):
        raise ValueError("incomplete %s code" % kind)
    offs = [0] * 16
    for n in range(1, 15):
        offs[n + 1] = offs[n] + counts[n]
    symbols = [0] * len(lengths)
    for sym in range(len(lengths)):
        if lengths[sym]:
            symbols[offs[lengths[sym]]] = sym
            offs[lengths[sym]] += 1
    counts[0] = 0
    return counts, symbols


def _decode(bits, table):
    counts, symbols = table
    code = first = index = 0
    for n in range(1, 16):
        code |= bits.need(1)
        c = counts[n]
        if code - first < c:
            return symbols[index + code - first]
        index += c
        first = (first + c) << 1
        code <<= 1
    raise ValueError("invalid code")


_FIXED = []


def _fixed_tables():
    if not _FIXED:
        lens = [8] * 144 + [9] * 112 + [7] * 24 + [8] * 8
        _FIXED.append(_huffman_fixed(lens))
        _FIXED.append(_huffman_fixed([5] * 30))
    return _FIXED[0], _FIXED[1]


def _huffman_fixed(lengths):
    # the fixed codes are complete or (distance: 30 of 32) known-incomplete
    counts = [0] * 16
    for n in lengths:
        counts[n] += 1
    offs = [0] * 16
    for n in range(1, 15):
        offs[n + 1] = offs[n] + counts[n]
    symbols = [0] * len(lengths)
    for sym in range(len(lengths)):
        symbols[offs[lengths[sym]]] = sym
        offs[lengths[sym]] += 1
    counts[0] = 0
    return counts, symbols


def _dynamic_tables(bits):
    nlen = bits.need(5) + 257
    ndist = bits.need(5) + 1
    ncode = bits.need(4) + 4
    if nlen > 286 or ndist > 30:
        raise ValueError("too many length or distance symbols")
    cl = [0] * 19
    for i in range(ncode):
        cl[_CL_ORDER[i]] = bits.need(3)
    cltab = _huffman(cl, "code-length")
    lengths = []
    while len(lengths) < nlen + ndist:
        sym = _decode(bits, cltab)
        if sym < 16:
            lengths.append(sym)
            continue
        if sym == 16:
            if not lengths:
                raise ValueError("invalid bit length repeat")
            val, rep = lengths[-1], 3 + bits.need(2)
        elif sym == 17:
            val, rep = 0, 3 + bits.need(3)
        else:
            val, rep = 0, 11 + bits.need(7)
        if len(lengths) + rep > nlen + ndist:
            raise ValueError("invalid bit length repeat")
        lengths.extend([val] * rep)
    if lengths[256] == 0:
        raise ValueError("invalid code -- missing end-of-block")
    return _huffman(lengths[:nlen], "literal/length"), _huffman(lengths[nlen:], "distance")


def inflate_raw(data, limit):
    """Inflate a raw DEFLATE stream in pure Python; at most `limit` bytes come
    out (then it stops, like a full output buffer). ValueError on a broken or
    truncated stream. Bytes after the final block are ignored."""
    bits = _Bits(data)
    out = bytearray()
    while True:
        final = bits.need(1)
        btype = bits.need(2)
        if btype == 0:
            bits.buf = bits.cnt = 0          # to a byte boundary
            if bits.pos + 4 > len(data):
                raise ValueError("truncated deflate stream")
            n = data[bits.pos] | (data[bits.pos + 1] << 8)
            nn = data[bits.pos + 2] | (data[bits.pos + 3] << 8)
            if n != nn ^ 0xFFFF:
                raise ValueError("invalid stored block lengths")
            bits.pos += 4
            if bits.pos + n > len(data):
                raise ValueError("truncated deflate stream")
            out += data[bits.pos:bits.pos + n]
            bits.pos += n
        elif btype == 3:
            raise ValueError("invalid block type")
        else:
            lit, dist = _fixed_tables() if btype == 1 else _dynamic_tables(bits)
            while True:
                if len(out) > limit:
                    return bytes(out[:limit])
                sym = _decode(bits, lit)
                if sym < 256:
                    out.append(sym)
                    continue
                if sym == 256:
                    break
                sym -= 257
                if sym >= 29:
                    raise ValueError("invalid literal/length code")
                length = _LEN_BASE[sym] + bits.need(_LEN_EXTRA[sym])
                dsym = _decode(bits, dist)
                if dsym >= 30:
                    raise ValueError("invalid distance code")
                d = _DIST_BASE[dsym] + bits.need(_DIST_EXTRA[dsym])
                if d > len(out):
                    raise ValueError("invalid distance too far back")
                start = len(out) - d
                if d >= length:
                    out += out[start:start + length]
                else:
                    for i in range(length):
                        out.append(out[start + i])
        if len(out) > limit:
            return bytes(out[:limit])
        if final:
            return bytes(out)


def _ftrace_ts(rec, big, cpu_in_ip, recsize):
    # struct pstore_ftrace_record {ulong ip; ulong parent_ip; u64 ts}
    off = recsize - 8
    if big:
        ts = int.from_bytes(rec[off:off + 8], "big")
    else:
        ts = int.from_bytes(rec[off:off + 8], "little")
    return ts if cpu_in_ip else ts >> 8      # TS_CPU_SHIFT: CPU in the low 8 bits


def ftrace_combine(logs, recsize=24, cpu_in_ip=False):
    """pstore_ftrace_combine_log() applied zone after zone: drop each log's
    leading size % recsize bytes, then merge by timestamp (ties: the newer
    zone's record first, as the kernel's `<` does). logs: [(bytes, big)]."""
    dest = []
    for log, big in logs:
        off = len(log) % recsize
        src = [log[i:i + recsize] for i in range(off, len(log), recsize)]
        merged = []
        i = j = 0
        while i < len(dest) and j < len(src):
            if _ftrace_ts(dest[i][0], dest[i][1], cpu_in_ip, recsize) < \
                    _ftrace_ts(src[j], big, cpu_in_ip, recsize):
                merged.append(dest[i])
                i += 1
            else:
                merged.append((src[j], big))
                j += 1
        merged.extend(dest[i:])
        merged.extend((r, big) for r in src[j:])
        dest = merged
    return b"".join(r for r, _ in dest)


def _layout_for(data, p):
    """Zones for p; with order "auto", the order whose zones carry more valid
    signatures (ties: 6.2, as the Params default)."""
    if p.order != ORDER_AUTO:
        return layout(p), p.order
    best = None
    for order in (ORDER_6_2, ORDER_6_1):
        zones = layout(p.copy(order=order))
        score = 0
        for z in zones:
            if z.offset + z.size <= len(data):
                for big in (False, True):
                    if _sig_ok(z.kind, _u32(data, z.offset, big), p):
                        score += 1
                        break
        if best is None or score > best[0]:
            best = (score, zones, order)
    return best[1], best[2]


def scan(data, p, inflate=True, correct=True):
    """Read every zone of a region like ramoops does at probe + pstore read.

    data: bytes/bytearray/memoryview of the region (never modified).
    inflate: False reads like a kernel without a decompressor (.enc.z).
    correct: False skips RS decoding (no ECC notice then).
    Returns (zone states, records) with records in the kernel's read order.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise FormatError("region must be bytes, not %s" % type(data).__name__)
    if len(data) < PRZ_HEADER_SIZE:
        raise FormatError("region of %d bytes holds no zone header" % len(data))
    zones, order = _layout_for(data, p)
    if zones and zones[0].offset + zones[0].size > len(data):
        raise FormatError("region of 0x%x bytes is smaller than its first zone (0x%x)"
                          % (len(data), zones[0].size))
    states = [read_zone(data, z, p, correct) for z in zones]
    records = []
    dmesg = [s for s in states if s.zone.kind == "dmesg"]
    limit = 0
    if dmesg:
        b = dmesg[0].zone.data_size
        # big_oops_buf_sz of the crypto API (6.1..6.5); 6.6+ sizes it alike
        # for the records ramoops writes (> 10000 bytes: 100/60)
        limit = zbufsize_deflate(b)
    # The kernel inflates in one call into one buffer, so a distance is
    # checked against all output so far, not against the 2 KiB window of a
    # 6.1 deflate stream: a 15-bit window is the closer model.
    wbits = 15
    stopped = False
    for st in dmesg:
        if st.status != ST_VALID:
            continue
        sec, usec, compressed, hl = parse_header(st.logical)
        if hl == 0:
            st.status = ST_NO_HEADER
            st.note = "no ==== header: the kernel zaps this zone when it reads it"
            continue
        payload = memoryview(st.logical)[hl:]
        if not payload:
            # ramoops_pstore_read returns 0 for it: pstore stops reading here
            st.note = "header only: the kernel lists no record from here on"
            stopped = True
            break
        name = "dmesg-ramoops-%d" % st.zone.index
        notice = st.ecc.notice() if st.ecc else b""
        encoded = False
        text = payload
        if compressed:
            out = inflate_record(payload, limit, wbits) if inflate else None
            if out is None:
                encoded = True
                name += ".enc.z"
            else:
                text = out
        data = bytearray(text)
        data += notice
        st.logical = None               # the record holds its bytes now
        reason, count, part = (None, None, None) if encoded else \
            parse_reason(bytes(data[:80]))
        st.record = Record(name, data, "dmesg", st.zone, sec, usec, reason, count,
                           part, compressed, encoded, st.ecc)
        records.append(st.record)
    if stopped:
        for st in states:
            if st.record is None and st.status == ST_VALID and st.zone.kind != "dmesg":
                st.status = ST_UNREAD
        return states, records
    for kind in ("console", "pmsg"):
        for st in states:
            if st.zone.kind == kind and st.status == ST_VALID:
                notice = st.ecc.notice() if st.ecc else b""
                data = st.logical
                data += notice
                st.logical = None       # the record holds it now
                st.record = Record("%s-ramoops-0" % kind, data, kind, st.zone,
                                   ecc=st.ecc)
                records.append(st.record)
    ft = [s for s in states if s.zone.kind == "ftrace" and s.status == ST_VALID]
    if ft:
        ecc = None
        if ft[0].ecc:
            ecc = EccInfo(sum(s.ecc.corrected for s in ft), sum(s.ecc.bad_blocks for s in ft))
        if p.ftrace_per_cpu:
            body = ftrace_combine([(s.logical, s.endian == ">") for s in ft],
                                  p.ftrace_record_size, p.ftrace_cpu_in_ip)
        else:
            body = ft[0].logical
        notice = ecc.notice() if ecc else b""
        if body or notice:
            rec = Record("ftrace-ramoops-0", body + notice, "ftrace", ft[0].zone, ecc=ecc)
            ft[0].record = rec
            records.append(rec)
    return states, records


def read_region(data, p, inflate=True, correct=True):
    """The records /sys/fs/pstore would show for this region (see scan)."""
    return scan(data, p, inflate, correct)[1]
