"""Board config parsing and every validation rule (runs under MicroPython too)."""
from _util import raises, ROOT

from crashkeep.formats import boardconf
from crashkeep.formats.boardconf import parse, parse_number
from crashkeep.errors import ConfigError

BASE = """board.name = t
ramoops.mem_address = 0x1f000000
ramoops.mem_size = 512K
ramoops.ftrace_size = 0
phram.name = keep
phram.start = 0x1f080000
phram.len = 512K
"""

SHIPPED = ("qemu-x86_64.conf", "beaglebone-black.conf", "tplink-archer-c7-v2.conf")


def bad(text, *fragments):
    e = raises(ConfigError, parse, text, "b.conf")
    msg = str(e)
    for f in fragments:
        assert f in msg, (f, msg)
    return msg


def test_numbers():
    assert parse_number("0x1f000000") == 0x1f000000
    assert parse_number("4096") == 4096
    assert parse_number("64K") == 65536
    assert parse_number("64k") == 65536
    assert parse_number("1M") == 1 << 20
    assert parse_number("1MiB") == 1 << 20
    assert parse_number("2G") == 2 << 30
    assert parse_number("0x10K") == 16 << 10
    for s in ("", "x", "0x", "12Q", "-4", "0xg", "1.5M", "K"):
        raises(ValueError, parse_number, s)


def test_shipped_configs_pass():
    for name in SHIPPED:
        b = boardconf.load(ROOT + "/board-configs/" + name)
        assert b.name
        assert b.warnings == [], b.warnings
        assert b.zones()


def test_qemu_reference_layout():
    b = boardconf.load(ROOT + "/board-configs/qemu-x86_64.conf")
    zones = b.zones()
    assert [z.kind for z in zones] == ["dmesg"] * 6 + ["console", "pmsg"]
    assert [z.offset for z in zones] == [i * 0x10000 for i in range(8)]
    assert b.get("phram.start") == 0x1f080000


def test_comments_blank_lines_quotes_defaults():
    b = parse("# c\n\n" + BASE + "board.firmware = 'v1 # x'  \n", "x")
    # '#' starts a comment even inside quotes: the value is what precedes it
    assert b.get("board.firmware") == "'v1"
    b = parse(BASE + 'board.firmware = "v1.2"\n')
    assert b.get("board.firmware") == "v1.2"
    assert b.get("ramoops.record_size") == 4096      # the module's default
    assert b.get("ramoops.console_size") == 4096
    assert b.get("ramoops.pmsg_size") == 4096
    assert b.get("ramoops.max_reason") == 2


def test_unknown_key_names_file_and_line():
    bad(BASE + "ramoops.mem_adress = 0\n", "b.conf:8:", "unknown key 'ramoops.mem_adress'")


def test_not_key_value():
    bad("board.name t\n", "b.conf:1:", "key = value")


def test_duplicate_key():
    bad(BASE + "board.name = u\n", "b.conf:8:", "already set on line 1")


def test_bad_number():
    bad(BASE.replace("512K", "512Q", 1), "b.conf:3:", "bad number", "ramoops.mem_size")


def test_bad_bool():
    bad(BASE + "board.even_round = maybe\n", "b.conf:8:", "bad bool")


def test_missing_required():
    bad(BASE.replace("board.name = t\n", ""), "missing required key 'board.name'")
    bad(BASE.replace("ramoops.mem_size = 512K\n", ""), "missing required key 'ramoops.mem_size'")
    bad(BASE.replace("phram.name = keep\n", ""), "missing required key 'phram.name'")
    bad("board.name = t\n", "neither ramoops")


def test_overlap():
    bad(BASE.replace("phram.start = 0x1f080000", "phram.start = 0x1f07f000"),
        "b.conf:6:", "overlaps ramoops")


def test_not_page_aligned():
    bad(BASE.replace("0x1f000000", "0x1f000800"), "b.conf:2:", "not page aligned")
    bad(BASE.replace("ramoops.mem_size = 512K", "ramoops.mem_size = 0x80800"), "b.conf:3:",
        "not page aligned")
    bad(BASE.replace("phram.start = 0x1f080000", "phram.start = 0x1f080200"), "b.conf:6:",
        "not page aligned")


def test_phram_erase_size():
    bad(BASE + "phram.erasesize = 0x30000\n", "b.conf:8:", "not a multiple of its erase size")
    parse(BASE + "phram.erasesize = 0x10000\n")


def test_zones_do_not_fit():
    bad(BASE + "ramoops.console_size = 512K\nramoops.pmsg_size = 64K\n", "exceed mem_size")
    bad(BASE + "ramoops.record_size = 1M\n", "does not fit")
    bad(BASE + "ramoops.ecc = 200\n", "ecc must be")
    bad(BASE.replace("ramoops.mem_size = 512K", "ramoops.mem_size = 2G")
        .replace("phram.start = 0x1f080000", "phram.start = 0xa0000000"),
        "b.conf:3:", "larger than crashkeep reads")


def test_record_size_rounding_warns():
    b = parse(BASE + "ramoops.record_size = 0x3000\n")
    assert len(b.warnings) == 1
    # the warning names the config and the line, like an error does
    assert b.warnings[0].startswith("<config>:8: ramoops.record_size 0x3000"), b.warnings
    assert "rounds it down to 0x2000" in b.warnings[0], b.warnings


def test_other_rules():
    bad(BASE + "board.kernel = 5.4\n", "board.kernel")
    bad(BASE + "board.reserve = mem\n", "missing required key 'board.ram_start'")
    bad(BASE + "ramoops.mem_type = 3\n", "mem_type")
    bad(BASE + "flash.device = /dev/sda1\n", "flash.fstype")
    bad(BASE + "board.arch = vax\n", "board.arch")
    bad(BASE.replace("phram.name = keep", "phram.name = a,b"), "phram.name")


def test_load_errors():
    raises(ConfigError, boardconf.load, "/nonexistent/board.conf")
