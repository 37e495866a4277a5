"""`crashkeep save`: keep a file's tail in the phram keep area."""
from crashkeep.cmdspec import Command, Param
from crashkeep.errors import CrashkeepError


def not_yet(opts):
    raise CrashkeepError("this command is not built yet (see the open issue)")


COMMANDS = [
    Command("save", "Keep the tail of FILE (or - for stdin) in phram as a named record.", [Param("file", positional=True, required=True)], not_yet, fast=True),
]
