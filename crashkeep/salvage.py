"""`crashkeep boot`: salvage the previous boot's evidence to flash."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("boot", "Salvage the previous boot's crash records to flash (run from the initramfs).", [], not_yet, fast=True),
    Command("show", "Show one salvaged bundle.", [Param("id", positional=True, required=True)], not_yet),
]
