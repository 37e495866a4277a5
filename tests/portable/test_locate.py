"""The one rule for the board and the device (crashkeep.system.locate), without
the environment; tests/test_board_device.py checks $CRASHKEEP_BOARD/_DEVICE."""
from _util import raises, tmpdir, write

from crashkeep.errors import ConfigError
from crashkeep.system import locate


class B:
    def __init__(self, v):
        self.v = v

    def get(self, k):
        return self.v.get(k)


def test_device_given_else_board_phram_else_error():
    assert locate.device(B({"phram.name": "crashkeep"})) == "mtd:crashkeep"
    assert locate.device(B({"phram.name": "crashkeep"}), "/dev/mtd3") == "/dev/mtd3"
    assert locate.device(None, "keep.img") == "keep.img"
    e = raises(ConfigError, locate.device, B({}))
    assert "use --device" in str(e)
    raises(ConfigError, locate.device, None)


def test_find_board_given_path_is_loaded():
    d = tmpdir()
    write(d + "/b.conf", "board.name = here\nphram.name = pk\nphram.start = 0x1000000\n"
          "phram.len = 0x10000\n")
    b = locate.find_board(d + "/b.conf")
    assert b.name == "here"
    board, dev = locate.board_and_device(d + "/b.conf")
    assert board.name == "here" and dev == "mtd:pk"


def test_board_read_only_when_named_or_needed():
    # a device given and no board named: the default board config is not read
    # (on a host without /etc/crashkeep/board.conf this would fail if it were)
    board, dev = locate.board_and_device(None, "keep.img")
    assert board is None and dev == "keep.img"
    d = tmpdir()
    raises(ConfigError, locate.board_and_device, d + "/missing.conf", "keep.img")


def test_default_board_used_when_nothing_named():
    if locate.named_board() is not None:
        return      # $CRASHKEEP_BOARD set around the test run: tests/test_board_device.py covers it
    real = locate.DEFAULT_BOARD
    d = tmpdir()
    try:
        locate.DEFAULT_BOARD = d + "/absent.conf"
        assert locate.find_board(None, required=False) is None
        raises(ConfigError, locate.find_board, None)
        write(d + "/board.conf", "board.name = fallback\nphram.name = pk\nphram.start = 0x1000000\n"
              "phram.len = 0x10000\n")
        locate.DEFAULT_BOARD = d + "/board.conf"
        assert locate.find_board(None, required=False).name == "fallback"
        assert locate.find_board(None).name == "fallback"
    finally:
        locate.DEFAULT_BOARD = real
    raises(ConfigError, locate.find_board, d + "/nope.conf", False)
