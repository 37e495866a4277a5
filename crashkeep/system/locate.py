"""Which board config and which keep-area device a command works on: one rule
for every command, so an init script, a log hook and a shell user agree.

    board:  --board, else $CRASHKEEP_BOARD, else /etc/crashkeep/board.conf
    device: --device (--keep on boot/shutdown/selftest), else $CRASHKEEP_DEVICE,
            else the board's phram (mtd:<phram.name>)

The environment is read here (compat.getenv), not through option envvars:
those would import `os`, a millisecond on the save path.
"""
from crashkeep.compat import exists, getenv
from crashkeep.errors import ConfigError

DEFAULT_BOARD = "/etc/crashkeep/board.conf"
BOARD_ENV = "CRASHKEEP_BOARD"
DEVICE_ENV = "CRASHKEEP_DEVICE"


def named_board(given=None):
    """--board, else $CRASHKEEP_BOARD, else None."""
    return given or getenv(BOARD_ENV) or None


def find_board(given=None, required=True):
    """The board config. Not required: None when nothing names one and the
    default file does not exist (the core handler and `list` work without)."""
    from crashkeep.formats import boardconf
    path = named_board(given)
    if path is None:
        if not required and not exists(DEFAULT_BOARD):
            return None
        path = DEFAULT_BOARD
    return boardconf.load(path)


def named_device(given=None):
    """--device, else $CRASHKEEP_DEVICE, else None."""
    return given or getenv(DEVICE_ENV) or None


def device(board, given=None):
    """The keep-area device: /dev/mtdN, mtd:NAME or a file."""
    dev = named_device(given)
    if dev:
        return dev
    if board is not None and board.get("phram.name"):
        return "mtd:" + board.get("phram.name")
    raise ConfigError("no keep-area device: the board config has no phram.name (use --device)")


def board_and_device(board_given=None, device_given=None):
    """(board or None, device). The board config is read when it is named or
    when it must name the device; when read, its board.firmware goes into records."""
    board = None
    if named_board(board_given) or not named_device(device_given):
        board = find_board(board_given)
    return board, device(board, device_given)
