"""phram keep-area record format: byte layout, CRCs, scan, boot-state slots."""
import struct
from binascii import crc32

from _util import raises

from crashkeep.formats import phramrec as pr
from crashkeep.errors import FormatError

BOOT_ID = "6d2c1f0e-8a4b-4c3d-9e2f-0123456789ab"


def make(name="messages", payload=b"hello\n", seq=7, **kw):
    hdr = pr.encode_header(name, seq, len(payload), crc32(payload) & 0xFFFFFFFF, **kw)
    return bytes(hdr) + payload


def test_header_bytes_follow_the_table():
    rec = make(flags=pr.FLAG_TRUNCATED, wall_time=1700000000, uptime_ms=12345,
               boot_id=BOOT_ID, firmware="OpenWrt 23.05", source="/var/log/messages",
               orig_size=99)
    assert rec[0:4] == b"CKPR"
    hdr_len = struct.unpack_from("<H", rec, 10)[0]
    assert hdr_len == pr.align_up(80 + 8 + 13 + 17, 8) == 120
    assert struct.unpack_from("<I", rec, 4)[0] == crc32(rec[8:hdr_len]) & 0xFFFFFFFF
    assert struct.unpack_from("<HHIIII", rec, 8) == (1, hdr_len, 7, 1, 6,
                                                     crc32(b"hello\n") & 0xFFFFFFFF)
    assert struct.unpack_from("<QQQ", rec, 32) == (99, 1700000000, 12345)
    assert rec[56:72] == bytes.fromhex(BOOT_ID.replace("-", ""))
    assert tuple(rec[72:75]) == (8, 13, 17)
    assert rec[80:88] == b"messages"
    assert rec[88:101] == b"OpenWrt 23.05"
    assert rec[101:118] == b"/var/log/messages"
    assert rec[118:120] == b"\0\0"
    assert rec[hdr_len:] == b"hello\n"


def test_parse_roundtrip():
    rec = make(wall_time=5, uptime_ms=1500, boot_id=BOOT_ID, firmware="fw", source="/x")
    info = pr.parse_header(rec, 0, len(rec))
    assert (info.name, info.seq, info.length, info.wall_time, info.uptime, info.boot_id,
            info.firmware, info.source, info.orig_size) == \
        ("messages", 7, 6, 5, 1.5, BOOT_ID, "fw", "/x", 6)
    assert pr.payload_ok(rec, info)


def test_every_header_byte_is_checked():
    rec = bytearray(make(source="/var/log/messages"))
    hdr_len = struct.unpack_from("<H", rec, 10)[0]
    for i in range(hdr_len):
        bad = bytearray(rec)
        bad[i] ^= 0x40
        raises(FormatError, pr.parse_header, bad, 0, len(bad))


def test_payload_crc_detects_change():
    rec = bytearray(make(payload=b"abcdefgh"))
    info = pr.parse_header(rec, 0, len(rec))
    rec[-1] ^= 1
    assert not pr.payload_ok(rec, info)


def test_payload_past_area_end_is_format_error():
    rec = make(payload=b"x" * 100)
    e = raises(FormatError, pr.parse_header, rec, 0, len(rec) - 1)
    assert "past the area" in str(e)


def test_names_are_checked():
    for bad in ("", "a/b", "x" * 65, "sp ace", ".hidden", "caf\u00e9"):
        raises(FormatError, pr.encode_header, bad, 1, 0, 0)
    pr.encode_header("core-sh-123", 1, 0, 0)
    pr.encode_header("x" * 64, 1, 0, 0)


def test_long_source_keeps_its_end():
    src = "/" + "d" * 300 + "/messages"
    rec = make(source=src)
    info = pr.parse_header(rec, 0, len(rec))
    assert len(info.source) == pr.SOURCE_MAX and src.endswith(info.source)


def test_scan_finds_records_between_stale_bytes():
    area = bytearray(4096)
    area[0:64] = b"\xa5" * 64                 # stale junk, no magic
    r1 = make("a", b"1" * 100, seq=1)
    r2 = make("b", b"2" * 10, seq=2)
    area[128:128 + len(r1)] = r1
    area[1024:1024 + len(r2)] = r2
    area[2048:2052] = b"CKPR"                   # a magic without a valid header
    area[3000:3004] = b"CKPR"                   # unaligned: ignored
    found = pr.scan(area, 0, len(area))
    assert [(r.name, r.offset, r.extent) for r in found] == [("a", 128, 192), ("b", 1024, 128)]


def test_scan_skips_record_images_inside_a_payload():
    inner = make("inner", b"i" * 10, seq=1)
    outer = make("outer", inner + bytes(64 - len(inner) % 64) + inner, seq=2)
    area = bytearray(2048)
    area[0:len(outer)] = outer
    assert [r.name for r in pr.scan(area, 0, len(area))] == ["outer"]


def test_scan_limits_record_count():
    one = make("r", b"", seq=1)
    assert len(one) <= 128
    area = bytearray(128 * (pr.SCAN_MAX + 2))
    for i in range(pr.SCAN_MAX + 2):
        area[i * 128:i * 128 + len(one)] = one
    raises(FormatError, pr.scan, area, 0, len(area))


def test_latest_prefers_highest_seq():
    a1 = pr.RecordInfo("a", 1, 0)
    a3 = pr.RecordInfo("a", 3, 0)
    b2 = pr.RecordInfo("b", 2, 0)
    d = pr.latest([a3, b2, a1])
    assert d["a"] is a3 and d["b"] is b2


def test_boot_state_slots():
    st = {"boot_count": 5, "panic_count": 2, "clean_shutdown": True, "canary": 0xC0FFEE,
          "last_boot_id": BOOT_ID, "last_boot_time": 1700000000}
    area = bytearray(256)
    assert pr.newest_boot_state(area) == (None, None, None)
    area[0:64] = pr.encode_boot_state(st, 1)
    assert area[0:4] == b"CKBS"
    assert struct.unpack_from("<IIIII", area, 12) == (1, 5, 2, 1, 0xC0FFEE)
    st2 = dict(st, boot_count=6)
    area[64:128] = pr.encode_boot_state(st2, 2)
    assert pr.newest_boot_state(area) == (1, 2, st2)
    area[70] ^= 1                              # torn slot B: A still reads
    assert pr.newest_boot_state(area) == (0, 1, st)
    # gen wrap-around: 0 is newer than 0xFFFFFFFF
    area[0:64] = pr.encode_boot_state(st, 0xFFFFFFFF)
    area[64:128] = pr.encode_boot_state(st2, 0)
    assert pr.newest_boot_state(area)[0] == 1
    raises(FormatError, pr.encode_boot_state, {"bogus": 1}, 1)


def test_bad_boot_id():
    raises(FormatError, pr.boot_id_bytes, "xyz")
    raises(FormatError, pr.boot_id_bytes, "abcd")
    assert pr.boot_id_text(pr.boot_id_bytes(BOOT_ID)) == BOOT_ID


def test_names_are_checked_on_read_too():
    """Issue 11 item 4: a header with valid CRCs under a name encode_header refuses
    ('..', '/', NUL, non-ASCII) reads back under a safe, distinct name."""
    real = pr.check_name
    pr.check_name = lambda n: None
    try:
        recs = [make(n, b"x", i + 1) for i, n in enumerate(
            ["..", ".", "../../escaped", "a\x00b", "a/b", "caf\u00e9", ".hidden", "ok"])]
    finally:
        pr.check_name = real
    got = [pr.parse_header(r, 0, len(r)) for r in recs]
    names = [i.name for i in got]
    assert names[:5] == ["%2E%2E", "%2E", "%2E%2E%2F%2E%2E%2Fescaped", "a%00b", "a%2Fb"], names
    assert names[5] == "caf%C3%A9" and names[6] == "%2Ehidden" and names[7] == "ok", names
    assert len(set(names)) == len(names)
    for i in got[:7]:
        assert i.bad_name is not None and "bad name" in i.bad_name_note()
        assert i.as_dict()["bad_name"] is True
        raises(FormatError, pr.check_name, i.name)     # never the name of a valid record
    assert got[7].bad_name is None and "bad_name" not in got[7].as_dict()
    assert got[0].bad_name == b".." and "'..'" in got[0].bad_name_note()
    assert "\\x00" in got[3].bad_name_note()
