"""`crashkeep clear`: wipe phram records."""
from crashkeep.commands.spec import BOARD, DEVICE, Command, Param
from crashkeep.errors import CrashkeepError, ConfigError


def run_clear(opts):
    from crashkeep.system import keeparea
    if bool(opts.name) == bool(opts.all):
        raise ConfigError("clear: give a record NAME or --all")
    area, _board = keeparea.open_configured(opts.board, opts.device)
    try:
        if opts.all:
            area.clear_all()
        elif not area.remove(opts.name):
            raise CrashkeepError("no record '%s' in %s" % (opts.name, area.path))
    finally:
        area.close()
    return 0


COMMANDS = [
    Command("clear", "Wipe a phram record, or all of them.", [
        Param("name", positional=True),
        Param("all", "flag", False, help="zero every record (the boot state stays)"),
        BOARD, DEVICE,
    ], run_clear, fast=True),
]
