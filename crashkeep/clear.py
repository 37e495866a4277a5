"""`crashkeep clear`: wipe phram records."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("clear", "Wipe a phram record, or all of them.", [Param("name", positional=True)], not_yet, fast=True),
]
