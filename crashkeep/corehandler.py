"""`crashkeep core`: the core_pattern pipe handler."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("core", "Core-dump pipe handler: crashkeep core %P %i %s %t %e.", [Param("args", positional=True, multiple=True)], not_yet, fast=True),
    Command("core install", "Install crashkeep as the kernel core_pattern handler.", [], not_yet, fast=True),
    Command("core uninstall", "Restore the previous core_pattern.", [], not_yet, fast=True),
    Command("core analyze", "Print the crash report of a core file.", [Param("core", positional=True, required=True)], not_yet, fast=True),
]
