"""phram keep-area format: named, checked records that survive a warm reboot.

Layout source: crashkeep's own format (this module is its authority), version 1.
All integers little-endian. The area is a RAM-backed MTD device (phram), so it
is written in place; every record and slot lies on a UNIT boundary (64 bytes,
or the erase size on devices that need erasing) and every write covers whole
8-byte words (arm64 maps phram as Device memory, see ramoops-format.md §6.2).

Area:

| off          | size       | what                                              |
|--------------|------------|---------------------------------------------------|
| 0            | unit       | boot-state slot A                                 |
| unit         | unit       | boot-state slot B                                 |
| 2*unit       | rest       | record heap: records at unit-aligned offsets,     |
|              |            | zeros / stale bytes in between                    |

Record (header + payload, zero-padded to a multiple of unit = its extent):

| off | size | field                                                         |
|-----|------|---------------------------------------------------------------|
| 0   | 4    | magic b"CKPR"                                                 |
| 4   | 4    | hdr_crc: CRC32 of bytes 8..hdr_len (binascii.crc32)           |
| 8   | 2    | version (1)                                                   |
| 10  | 2    | hdr_len: 80 + strings, rounded up to 8                        |
| 12  | 4    | seq: area-wide sequence number, newest wins                   |
| 16  | 4    | flags (FLAG_*)                                                |
| 20  | 4    | length: payload bytes                                         |
| 24  | 4    | payload_crc: CRC32 of the payload                             |
| 28  | 4    | reserved, 0                                                   |
| 32  | 8    | orig_size: size of the source when saved                      |
| 40  | 8    | wall_time: seconds since the epoch                            |
| 48  | 8    | uptime_ms: milliseconds since boot                            |
| 56  | 16   | boot_id: /proc/sys/kernel/random/boot_id as 16 raw bytes      |
| 72  | 1    | name_len (1..NAME_MAX)                                        |
| 73  | 1    | firmware_len (0..FIRMWARE_MAX)                                |
| 74  | 2    | source_len (0..SOURCE_MAX)                                    |
| 76  | 4    | reserved, 0                                                   |
| 80  | n    | name, firmware, source (UTF-8, no terminators), zero pad      |
| hdr_len | length | payload                                               |

Torn-write safety (a record's commit marker is its header, written last):
a save writes the payload part of the new record into space that holds no
live record, then its header; only then is the older version of the name
zapped (its 8 magic+crc bytes zeroed). A record counts only if its header
CRC and its payload CRC both match, so a save stopped at any byte leaves
either the old version (newest valid seq) or the complete new one.

Boot-state slot (two of them; the valid one with the higher gen wins, and a
write goes to the other one, so a torn write keeps the previous state):

| off | size | field                                            |
|-----|------|--------------------------------------------------|
| 0   | 4    | magic b"CKBS"                                    |
| 4   | 4    | crc: CRC32 of bytes 8..64                        |
| 8   | 2    | version (1)                                      |
| 10  | 2    | reserved, 0                                      |
| 12  | 4    | gen: bumped by every write                       |
| 16  | 4    | boot_count                                       |
| 20  | 4    | panic_count: consecutive panics                  |
| 24  | 4    | clean_shutdown: 1 if the last boot shut down cleanly |
| 28  | 4    | canary: any u32 the boot code chooses            |
| 32  | 16   | last_boot_id (raw 16 bytes)                      |
| 48  | 8    | last_boot_time: seconds since the epoch          |
| 56  | 8    | reserved, 0                                      |
"""
import struct
from binascii import crc32

from crashkeep.compat import const
from crashkeep.errors import FormatError
from crashkeep.limits import (KEEP_NAME_MAX, KEEP_FIRMWARE_MAX, KEEP_SOURCE_MAX,
                              KEEP_RECORDS_MAX, KEEP_SCAN_MAX, KEEP_HDR_MAX)

MAGIC = b"CKPR"
BOOT_MAGIC = b"CKBS"
VERSION = const(1)
UNIT = const(64)               # record alignment on RAM devices
FIXED_LEN = const(80)          # header bytes before the strings
BOOT_LEN = const(64)           # bytes of one boot-state slot
BOOT_SLOTS = const(2)

NAME_MAX = KEEP_NAME_MAX
FIRMWARE_MAX = KEEP_FIRMWARE_MAX
SOURCE_MAX = KEEP_SOURCE_MAX
RECORDS_MAX = KEEP_RECORDS_MAX
SCAN_MAX = KEEP_SCAN_MAX
HDR_MAX = KEEP_HDR_MAX

# flags
FLAG_TRUNCATED = const(1)      # payload is the tail of a larger source (orig_size > length)
FLAG_CORE = const(2)           # written by the core handler
FLAG_FOLLOW = const(4)         # written by `save --follow` (mirrors a growing log)
FLAG_ZONE = const(8)           # a ramoops console/pmsg/ftrace zone boot keeps until it is on flash

_FIXED = "<4sIHHIIIIIQQQ16sBBHI"   # 80 bytes, see the table above
_BOOT = "<4sIHHIIIII16sQQ"         # 64 bytes

BOOT_KEYS = ("boot_count", "panic_count", "clean_shutdown", "canary",
             "last_boot_id", "last_boot_time")


def align_up(n, unit):
    return (n + unit - 1) // unit * unit


def _text(b):
    try:
        return bytes(b).decode("utf-8")
    except UnicodeError:
        # MicroPython has no errors="replace"; strings here come from our own writer
        return "".join(chr(c) if c < 128 else "?" for c in bytes(b))


def boot_id_bytes(text):
    """'6d2c...-...' (boot_id as the kernel prints it) -> 16 bytes; b"" -> zeros."""
    if not text:
        return bytes(16)
    h = text.strip().replace("-", "")
    try:
        b = bytes.fromhex(h)
    except ValueError:
        raise FormatError("bad boot id %r" % (text,))
    if len(b) != 16:
        raise FormatError("bad boot id %r" % (text,))
    return b


def boot_id_text(b):
    if b == bytes(16):
        return ""
    h = bytes(b).hex()
    return "%s-%s-%s-%s-%s" % (h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])


class RecordInfo:
    """What a record header says; `offset`/`extent` say where it lies in the area."""

    def __init__(self, name, seq, length, flags=0, wall_time=0, uptime=0.0, boot_id="",
                 firmware="", source="", orig_size=0, payload_crc=0, hdr_len=0,
                 offset=0, extent=0, bad_name=None):
        self.name = name
        self.bad_name = bad_name      # the raw name bytes when `name` is their safe form
        self.seq = seq
        self.length = length
        self.flags = flags
        self.wall_time = wall_time
        self.uptime = uptime
        self.boot_id = boot_id
        self.firmware = firmware
        self.source = source
        self.orig_size = orig_size
        self.payload_crc = payload_crc
        self.hdr_len = hdr_len
        self.offset = offset
        self.extent = extent

    def as_dict(self):
        d = {"name": self.name, "seq": self.seq, "length": self.length,
             "flags": self.flags, "wall_time": self.wall_time, "uptime": self.uptime,
             "boot_id": self.boot_id, "firmware": self.firmware, "source": self.source,
             "orig_size": self.orig_size, "offset": self.offset}
        if self.bad_name is not None:
            d["bad_name"] = True
        return d

    def bad_name_note(self):
        """One phrase for a record whose stored name `save` would refuse, or ""."""
        if self.bad_name is None:
            return ""
        return "record at 0x%x has a bad name %s, read as '%s'" % (self.offset,
                                                                  _show(self.bad_name), self.name)

    def __repr__(self):
        return "RecordInfo(%r, seq=%d, length=%d @0x%x)" % (self.name, self.seq, self.length,
                                                            self.offset)


def check_name(name):
    """Names are shell-friendly words: they become file names in salvage bundles."""
    if not name or len(name) > NAME_MAX:
        raise FormatError("record name must be 1..%d characters: %r" % (NAME_MAX, name))
    for ch in name:
        if not (ch.isalpha() or ch.isdigit() or ch in "-_.+@:") or ord(ch) > 127:
            raise FormatError("record name may hold only letters, digits and -_.+@: : %r"
                              % (name,))
    if name[0] == ".":
        raise FormatError("record name may not start with '.': %r" % (name,))


_SAFE = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_+@:"


def safe_name(raw):
    """The name a record is read back under when its stored name fails check_name
    (valid CRCs do not make a name valid: a crafted or corrupted header can say
    '..', 'a/b' or hold a NUL). Every byte but letters, digits and -_+@: becomes
    %XX: the result has no '.', '/' or NUL, so it is a safe file name, and it
    holds a '%', which no valid name does, so it never collides with one."""
    out = []
    for c in bytes(raw):
        out.append(chr(c) if c in _SAFE else "%%%02X" % c)
    return "".join(out)


def _show(raw):
    """Raw name bytes for a message: printable ASCII kept, the rest as \\xNN."""
    return "'" + "".join(chr(c) if 32 <= c < 127 and c != 92 else "\\x%02x" % c
                         for c in bytes(raw)) + "'"


def _read_name(raw):
    """(name, None) for a valid stored name, (safe name, raw bytes) for a bad one."""
    name = _text(raw)
    try:
        check_name(name)
    except FormatError:
        return safe_name(raw), bytes(raw)
    return name, None


def _clip(s, limit):
    b = s.encode("utf-8") if isinstance(s, str) else bytes(s)
    if len(b) > limit:
        b = b[len(b) - limit:]      # keep the end: for paths the file name matters most
    return b


def header_len(name, firmware="", source=""):
    n = len(name.encode("utf-8")) + len(_clip(firmware, FIRMWARE_MAX)) + \
        len(_clip(source, SOURCE_MAX))
    return align_up(FIXED_LEN + n, 8)


def encode_header(name, seq, payload_len, payload_crc, flags=0, wall_time=0, uptime_ms=0,
                  boot_id="", firmware="", source="", orig_size=None):
    """The header bytes (hdr_len long) of a record."""
    check_name(name)
    nb = name.encode("utf-8")
    fb = _clip(firmware, FIRMWARE_MAX)
    sb = _clip(source, SOURCE_MAX)
    hdr_len = align_up(FIXED_LEN + len(nb) + len(fb) + len(sb), 8)
    if orig_size is None:
        orig_size = payload_len
    buf = bytearray(hdr_len)
    struct.pack_into(_FIXED, buf, 0, MAGIC, 0, VERSION, hdr_len, seq & 0xFFFFFFFF, flags,
                     payload_len, payload_crc & 0xFFFFFFFF, 0, orig_size, int(wall_time),
                     int(uptime_ms), boot_id_bytes(boot_id), len(nb), len(fb), len(sb), 0)
    p = FIXED_LEN
    for b in (nb, fb, sb):
        buf[p:p + len(b)] = b
        p += len(b)
    struct.pack_into("<I", buf, 4, crc32(memoryview(buf)[8:]) & 0xFFFFFFFF)
    return buf


def parse_header(buf, off, end):
    """Parse the header at buf[off:]; FormatError if it is not a whole, valid header.

    end: the first byte past the area (a header and its payload must fit before it).
    """
    if off + FIXED_LEN > end:
        raise FormatError("record header at 0x%x runs past the area" % off)
    (magic, hdr_crc, version, hdr_len, seq, flags, length, payload_crc, _r, orig_size,
     wall_time, uptime_ms, boot_id, name_len, fw_len, src_len, _r2) = \
        struct.unpack_from(_FIXED, buf, off)
    if magic != MAGIC:
        raise FormatError("no record magic at 0x%x" % off)
    if hdr_len < FIXED_LEN or hdr_len > HDR_MAX or hdr_len % 8 or off + hdr_len > end:
        raise FormatError("record at 0x%x: bad hdr_len %d" % (off, hdr_len))
    if crc32(memoryview(buf)[off + 8:off + hdr_len]) & 0xFFFFFFFF != hdr_crc:
        raise FormatError("record at 0x%x: header CRC mismatch" % off)
    # Only now are the fields trustworthy; still check them against the limits.
    if version != VERSION:
        raise FormatError("record at 0x%x: unknown version %d" % (off, version))
    if not 0 < name_len <= NAME_MAX or fw_len > FIRMWARE_MAX or src_len > SOURCE_MAX or \
            FIXED_LEN + name_len + fw_len + src_len > hdr_len:
        raise FormatError("record at 0x%x: bad string lengths" % off)
    if length > end - off - hdr_len:
        raise FormatError("record at 0x%x: payload of %d bytes runs past the area"
                          % (off, length))
    p = off + FIXED_LEN
    name, bad = _read_name(buf[p:p + name_len])
    p += name_len
    firmware = _text(buf[p:p + fw_len])
    p += fw_len
    source = _text(buf[p:p + src_len])
    return RecordInfo(name, seq, length, flags, wall_time, uptime_ms / 1000.0,
                      boot_id_text(boot_id), firmware, source, orig_size, payload_crc,
                      hdr_len, off, bad_name=bad)


def payload_ok(buf, info):
    start = info.offset + info.hdr_len
    return crc32(memoryview(buf)[start:start + info.length]) & 0xFFFFFFFF == info.payload_crc


def scan(buf, start, end, unit=UNIT):
    """Every valid record in buf[start:end] (both CRCs match), in offset order.

    Stale bytes between records are skipped by searching for the magic at unit
    boundaries; a valid record's extent is skipped whole, so a payload that
    itself holds a keep-area image does not show up as records.
    """
    out = []
    off = start
    mv = buf
    while off < end:
        pos = mv.find(MAGIC, off, end)
        if pos < 0:
            break
        if (pos - start) % unit:
            off = align_up(pos - start, unit) + start
            continue
        try:
            info = parse_header(buf, pos, end)
        except FormatError:
            off = pos + unit
            continue
        if not payload_ok(buf, info):
            off = pos + unit
            continue
        info.extent = align_up(info.hdr_len + info.length, unit)
        out.append(info)
        if len(out) > SCAN_MAX:
            raise FormatError("more than %d records in the keep area" % SCAN_MAX)
        off = pos + info.extent
    return out


def latest(records):
    """name -> newest RecordInfo (highest seq), ignoring superseded versions."""
    by_name = {}
    for r in records:
        old = by_name.get(r.name)
        if old is None or r.seq > old.seq:
            by_name[r.name] = r
    return by_name


def encode_boot_state(state, gen):
    """64 bytes of one boot-state slot from a dict with BOOT_KEYS (missing keys: 0/"")."""
    for k in state:
        if k not in BOOT_KEYS:
            raise FormatError("unknown boot-state key %r" % (k,))
    buf = bytearray(BOOT_LEN)
    struct.pack_into(_BOOT, buf, 0, BOOT_MAGIC, 0, VERSION, 0, gen & 0xFFFFFFFF,
                     int(state.get("boot_count", 0)) & 0xFFFFFFFF,
                     int(state.get("panic_count", 0)) & 0xFFFFFFFF,
                     1 if state.get("clean_shutdown") else 0,
                     int(state.get("canary", 0)) & 0xFFFFFFFF,
                     boot_id_bytes(state.get("last_boot_id", "")),
                     int(state.get("last_boot_time", 0)), 0)
    struct.pack_into("<I", buf, 4, crc32(memoryview(buf)[8:]) & 0xFFFFFFFF)
    return buf


def decode_boot_state(buf, off=0):
    """(gen, dict) of the slot at buf[off:]; FormatError if it is not valid."""
    if off + BOOT_LEN > len(buf):
        raise FormatError("boot-state slot at 0x%x runs past the area" % off)
    (magic, crc, version, _r, gen, boot_count, panic_count, clean, canary, boot_id,
     boot_time, _r2) = struct.unpack_from(_BOOT, buf, off)
    if magic != BOOT_MAGIC:
        raise FormatError("no boot-state magic at 0x%x" % off)
    if crc32(memoryview(buf)[off + 8:off + BOOT_LEN]) & 0xFFFFFFFF != crc:
        raise FormatError("boot-state slot at 0x%x: CRC mismatch" % off)
    if version != VERSION:
        raise FormatError("boot-state slot at 0x%x: unknown version %d" % (off, version))
    return gen, {"boot_count": boot_count, "panic_count": panic_count,
                 "clean_shutdown": clean == 1, "canary": canary,
                 "last_boot_id": boot_id_text(boot_id), "last_boot_time": boot_time}


def newest_boot_state(buf, unit=UNIT):
    """(slot index, gen, dict) of the newest valid slot, or (None, None, None)."""
    best = (None, None, None)
    for i in range(BOOT_SLOTS):
        try:
            gen, st = decode_boot_state(buf, i * unit)
        except FormatError:
            continue
        # gen is u32: compare by distance so a wrap-around still picks the newer one
        if best[0] is None or ((gen - best[1]) & 0xFFFFFFFF) < 0x80000000:
            best = (i, gen, st)
    return best
